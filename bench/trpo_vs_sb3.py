"""Our TRPO against sb3-contrib 2.9.2 TRPO on CartPole-v1, same protocol, back to back.

    python bench/trpo_vs_sb3.py --seeds 1-5

For each seed, runs ``trpo_benchmark.py --stop-when-solved`` (our defaults)
and then sb3-contrib's TRPO with the rl-zoo CartPole-v1 hyperparameters
(hyperparams/trpo.yml: n_envs 2, n_steps 512, batch_size 512, cg_damping 1e-3,
gae_lambda 0.98, gamma 0.99, learning_rate 1e-3, n_critic_updates 20; the rest
sb3-contrib defaults), each with one torch thread, one after the other. Both
are measured the protocol's way: a 20-episode greedy evaluation with seeds
10_000 + seed * 1_000 + i at the first update boundary after every 5000
steps (rlsuite.evaluation.evaluate_policy does both), evaluation time excluded from the
clock, which starts before the model and envs are built; solved = first
evaluation with mean >= 475. Prints steps_to_solve and time_to_solve_s per
seed and their medians.

sb3-contrib runs in its own virtualenv, bench/.venv-sb3 (gitignored), created
on first use: torch==2.13.0 first (the CPU wheel this machine provides), then
sb3-contrib, stable-baselines3 and gymnasium at pinned versions. An existing
venv that already imports them is reused as is.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlsuite.cli import OneLineParser, UsageError, parse_seeds  # noqa: E402  (stdlib only: importable in the SB3 venv too)
VENV = ROOT / "bench" / ".venv-sb3"
VENV_PYTHON = VENV / "bin" / "python"
PINS = [["torch==2.13.0"], ["sb3-contrib==2.9.2", "stable-baselines3==2.9.2", "gymnasium==1.4.0"]]
BUDGET = 100_000  # rl-zoo's n_timesteps for TRPO on CartPole-v1
EVAL_EVERY, EVAL_EPISODES, THRESHOLD = 5000, 20, 475.0


def ensure_venv() -> None:
    """Create bench/.venv-sb3 unless it already has the pinned packages (idempotent)."""
    probe = "import sb3_contrib, stable_baselines3, gymnasium, torch; print(sb3_contrib.__version__)"
    if VENV_PYTHON.exists():
        out = subprocess.run([str(VENV_PYTHON), "-c", probe], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == "2.9.2":
            return
    print(f"creating {VENV} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    for group in PINS:  # torch first, so nothing pulls a different (CUDA) build
        subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "-q", *group], check=True)


def run_ours(seed: int, results: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "trpo_benchmark.py"), "--seed", str(seed), "--stop-when-solved",
         "--total-steps", str(BUDGET), "--results-dir", str(results), "--overwrite", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"trpo_benchmark.py failed on seed {seed}: {proc.stderr.strip()[-500:]}")
    s = json.loads((results / "CartPole-v1" / "trpo" / f"seed_{seed}" / "summary.json").read_text())
    return {"steps_to_solve": s["steps_to_solve"], "time_to_solve_s": s["time_to_solve_s"]}


def run_sb3(seed: int) -> dict:
    proc = subprocess.run([str(VENV_PYTHON), __file__, "--sb3-seed", str(seed)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sb3-contrib TRPO failed on seed {seed}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sb3_child(seed: int) -> None:
    """Runs inside bench/.venv-sb3: sb3-contrib TRPO under the protocol; prints one JSON line."""
    import numpy as np
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    from rlsuite.evaluation import evaluate_policy, periodic_eval_seeds

    torch.set_num_threads(1)

    class ProtocolEval(BaseCallback):
        """Evaluates at the start of each rollout, i.e. right after an update (the protocol's boundary)."""

        def __init__(self, start: float):
            super().__init__()
            self.start, self.paused, self.next_eval = start, 0.0, EVAL_EVERY
            self.solved = None

        def _on_rollout_start(self) -> None:
            if self.num_timesteps < self.next_eval or self.solved is not None:
                return
            t0 = time.perf_counter()
            act = lambda obs: self.model.predict(obs, deterministic=True)[0]  # noqa: E731
            mean = float(np.mean(evaluate_policy("CartPole-v1", act, periodic_eval_seeds(seed, EVAL_EPISODES))))
            train_time = t0 - self.start - self.paused
            self.paused += time.perf_counter() - t0
            self.next_eval = (self.num_timesteps // EVAL_EVERY + 1) * EVAL_EVERY
            if mean >= THRESHOLD:
                self.solved = {"steps_to_solve": int(self.num_timesteps), "time_to_solve_s": round(train_time, 4)}

        def _on_step(self) -> bool:
            return self.solved is None

    start = time.perf_counter()
    env = make_vec_env("CartPole-v1", n_envs=2, seed=seed)
    model = TRPO("MlpPolicy", env, n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98,
                 gamma=0.99, learning_rate=1e-3, n_critic_updates=20, seed=seed, device="cpu", verbose=0)
    callback = ProtocolEval(start)
    model.learn(total_timesteps=BUDGET, callback=callback)
    print(json.dumps(callback.solved or {"steps_to_solve": None, "time_to_solve_s": None}))




def median_of(rows, key):
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def main() -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3,7")
    parser.add_argument("--sb3-seed", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sb3_seed is not None:
        sb3_child(args.sb3_seed)
        return 0
    try:
        seeds = parse_seeds(args.seeds)
    except UsageError as exc:
        parser.error(str(exc))
    ensure_venv()
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'seed':>4} | {'ours steps':>10} {'ours s':>7} | {'sb3 steps':>10} {'sb3 s':>7}", flush=True)
        for seed in seeds:
            a = run_ours(seed, Path(tmp))
            b = run_sb3(seed)
            ours.append(a)
            theirs.append(b)
            print(f"{seed:>4} | {a['steps_to_solve']!s:>10} {a['time_to_solve_s']!s:>7} | "
                  f"{b['steps_to_solve']!s:>10} {b['time_to_solve_s']!s:>7}", flush=True)
    for name, rows in (("ours (trpo.py)", ours), ("sb3-contrib 2.9.2", theirs)):
        solved = sum(r["steps_to_solve"] is not None for r in rows)
        print(f"{name:>18}: solved {solved}/{len(rows)}, median steps_to_solve {median_of(rows, 'steps_to_solve')}, "
              f"median time_to_solve_s {median_of(rows, 'time_to_solve_s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
