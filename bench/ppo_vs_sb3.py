"""Our PPO against Stable-Baselines3 2.9.2 PPO, same settings, same protocol, back to back.

    python bench/ppo_vs_sb3.py                  # seeds 1-3, 100k steps each
    python bench/ppo_vs_sb3.py --seeds 1-5

Settings: the rl-baselines3-zoo tuned PPO for CartPole-v1 (hyperparams/ppo.yml):
8 envs x 32 steps, minibatch 256, 20 epochs, gamma 0.98, lambda 0.8, learning
rate 1e-3 linearly annealed to 0, clip 0.2, no entropy bonus, 100k steps; both
sides keep their defaults for the rest (vf_coef 0.5, max_grad_norm 0.5,
separate 64-64 tanh actor and critic, orthogonal init). rl-zoo also anneals the
clip range (lin_0.2); the issue fixes it at 0.2, and so do both sides here.

Protocol on both sides: periodic 20-episode greedy evaluations at the first
update boundary after every 5000 steps with the clock paused, final
100-episode evaluation, one torch thread, library imports outside the clock.
SB3 runs in its own virtualenv (bench/.venv-sb3, created on first use:
torch==2.13.0 first, so SB3 does not pull a CUDA build, then
stable-baselines3==2.9.2 gymnasium==1.4.0 numpy==2.4.6); SB3 is never a
requirement of the suite. For each seed SB3 runs first, then ours, so both
see the same machine load; the machine is shared, so compare the ratio, and
the process CPU seconds (whole process: imports and evaluations included),
which load from other processes disturbs less than wall time.
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from rlsuite.cli import OneLineParser, UsageError, parse_seeds  # noqa: E402  (needs ROOT on sys.path)
VENV = BENCH / ".venv-sb3"
SB3_PACKAGES = ["stable-baselines3==2.9.2", "gymnasium==1.4.0", "numpy==2.4.6"]

ZOO = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
           learning_rate=1e-3, anneal_lr=True, clip_range=0.2, ent_coef=0.0)


def our_flags(s: dict) -> list[str]:
    return ["--num-envs", s["n_envs"], "--num-steps", s["n_steps"], "--minibatch-size", s["batch_size"],
            "--update-epochs", s["n_epochs"], "--gamma", s["gamma"], "--gae-lambda", s["gae_lambda"],
            "--learning-rate", s["learning_rate"], "--anneal-lr" if s["anneal_lr"] else "--no-anneal-lr",
            "--clip-coef", s["clip_range"], "--ent-coef", s["ent_coef"]]


def ensure_venv(venv: Path = VENV, packages: list[str] = SB3_PACKAGES) -> Path:
    """A virtualenv for a peer library (bench/ppo_vs_cleanrl.py uses it too), created on first use."""
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {venv} (torch==2.13.0, {' '.join(packages)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)  # first: keeps the peer from pulling CUDA torch
    subprocess.run(pip + packages, check=True)
    return python


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_sb3(python: Path, seed: int, total_steps: int) -> dict:
    cpu0 = child_cpu()
    proc = subprocess.run([str(python), str(BENCH / "sb3_ppo_worker.py"), "--seed", str(seed),
                           "--total-steps", str(total_steps), "--settings", json.dumps(ZOO)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"SB3 worker failed (seed {seed}):\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_cpu_s"] = child_cpu() - cpu0
    return out


def run_ours(seed: int, total_steps: int, results: Path) -> dict:
    cpu0 = child_cpu()
    cmd = [sys.executable, str(ROOT / "ppo_benchmark.py"), "--seed", str(seed), "--total-steps",
           str(total_steps), "--results-dir", str(results), "--overwrite", "--no-progress",
           *map(str, our_flags(ZOO))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ppo_benchmark.py failed (seed {seed}):\n{proc.stderr}")
    out = json.loads((results / "CartPole-v1" / "ppo" / f"seed_{seed}" / "summary.json").read_text())
    out["process_cpu_s"] = child_cpu() - cpu0
    return out


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main() -> int:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1-3", help="e.g. 1-3 or 1,2,5")
    p.add_argument("--total-steps", type=int, default=100_000)
    p.add_argument("--results-dir", default=str(BENCH / "results-vs-sb3"), help="where our runs go")
    p.add_argument("--skip-sb3", action="store_true", help="only run ours")
    args = p.parse_args()
    try:
        seeds = parse_seeds(args.seeds)
    except UsageError as exc:
        p.error(str(exc))

    python = None if args.skip_sb3 else ensure_venv()
    rows = []
    header = (f"{'seed':>4} {'impl':<5} {'train_s':>8} {'steps/s':>8} {'solve_step':>10} "
              f"{'solve_s':>8} {'final':>6} {'proc_cpu_s':>10}")
    print(header, flush=True)
    for seed in seeds:
        pair = {}
        if python is not None:
            pair["sb3"] = run_sb3(python, seed, args.total_steps)
        pair["ours"] = run_ours(seed, args.total_steps, Path(args.results_dir))
        for impl, r in pair.items():
            print(f"{seed:>4} {impl:<5} {r['train_time_s']:>8.1f} {r['total_steps'] / r['train_time_s']:>8.0f} "
                  f"{fmt(r['steps_to_solve'], 'd'):>10} {fmt(r['time_to_solve_s']):>8} "
                  f"{r['final_eval_mean']:>6.1f} {r['process_cpu_s']:>10.1f}", flush=True)
        rows.append(pair)

    print()
    med = {}
    for impl in rows[0]:
        runs = [pair[impl] for pair in rows]
        med[impl] = {k: statistics.median([r[k] for r in runs]) for k in ("train_time_s", "process_cpu_s")}
        solve = [r["steps_to_solve"] for r in runs if r["steps_to_solve"] is not None]
        solve_s = [r["time_to_solve_s"] for r in runs if r["time_to_solve_s"] is not None]
        print(f"{impl:<5} median over {len(runs)} seeds: train {med[impl]['train_time_s']:.1f} s, "
              f"{statistics.median(r['total_steps'] / r['train_time_s'] for r in runs):.0f} steps/s, "
              f"solved {len(solve)}/{len(runs)} at {fmt(statistics.median(solve) if solve else None, '.0f')} steps "
              f"({fmt(statistics.median(solve_s) if solve_s else None)} s), "
              f"final eval min {min(r['final_eval_mean'] for r in runs):.1f}, "
              f"process CPU {med[impl]['process_cpu_s']:.1f} s")
    if "sb3" in med:
        ratios = [pair["sb3"]["train_time_s"] / pair["ours"]["train_time_s"] for pair in rows]
        print(f"SB3 / ours train time: ratio of medians {med['sb3']['train_time_s'] / med['ours']['train_time_s']:.2f}, "
              f"per seed {', '.join(f'{r:.2f}' for r in ratios)}; process CPU ratio "
              f"{med['sb3']['process_cpu_s'] / med['ours']['process_cpu_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
