"""Our PPO against CleanRL's ppo_continuous_action.py on HalfCheetah, same settings, back to back.

    python bench/ppo_vs_cleanrl.py --cleanrl-script ~/cleanrl/cleanrl/ppo_continuous_action.py
    python bench/ppo_vs_cleanrl.py --cleanrl-script PATH --seeds 1-3 --total-steps 1000000

CleanRL's script is not part of this repository and this bench does not fetch
it (PyPI's ``cleanrl`` package is an obsolete 2021 version). Get it with

    git clone https://github.com/vwxyzjn/cleanrl

and pass ``cleanrl/ppo_continuous_action.py`` of the clone. Measured here with
the file as of commit 016ca33aa70f188ef385082524373ccb6dd14e03, which targets
Gymnasium 1.x (``AutoresetMode.SAME_STEP``) but calls Gymnasium's
``TransformObservation`` without the ``observation_space`` argument every 1.x
release requires; it ran with that one argument added
(``TransformObservation(env, lambda obs: ..., env.observation_space)``), nothing
else changed. Earlier revisions (before the Gymnasium 1.x migration) run as they are.

Settings, CleanRL's defaults, passed explicitly to both sides: 1 env x 2,048
steps, 10 epochs of 32 minibatches of 64, Adam lr 3e-4 annealed linearly to 0,
clip 0.2 with the value loss clipped too, gamma 0.99, lambda 0.95, no entropy
bonus, vf_coef 0.5, max_grad_norm 0.5, observation normalization and reward
scaling (clips 10), 64-64 tanh actor and critic, one torch thread
(OMP_NUM_THREADS=1 for CleanRL, as its own benchmarks run); our presets.toml
entry for HalfCheetah-v5 is the same. The budget is rounded down to whole
rollouts of 2,048 steps, as CleanRL does; our step count leaves out the masked
autoreset steps (about one per 1,000-step episode), so we may run one rollout
more than CleanRL to reach it. What still differs, by design: CleanRL
runs HalfCheetah-v4, we run HalfCheetah-v5 (same observation, action and reward
definitions; v5 needs MuJoCo >= 2.3.3 and fixes details of v4's model and
reset, so scores are close, not identical); CleanRL standardizes advantages per
minibatch, we per rollout; CleanRL autoresets in the step that ends an episode,
we in the next one and mask it (docs/protocol.md).

Steps per second: CleanRL's own, the last ``SPS:`` it prints (global steps over
the time since its envs were reset); ours, total steps over ``train_time_s``
(the clock starts before the networks and envs are built and pauses for
evaluations). Periodic evaluation is off on our side (CleanRL has none); our
final 100-episode evaluation still runs, after the clock. Score: the mean
return of the last 10 training episodes on each side (the environment's own
returns, before reward scaling, on both). Process CPU seconds (the whole
process: imports, set-up and, for us, the final evaluation) are printed too;
load from other processes disturbs them less than wall time.

The floor (printed after the pairs, measured in this process, one torch thread):
what the env stack and the update cost on their own, with nothing else. (1) The
env: HalfCheetah-v5 in a one-env SyncVectorEnv under Gymnasium's
RecordEpisodeStatistics, NormalizeObservation, observation clip, NormalizeReward
and reward clip (the stack our runner builds; CleanRL's has the same wrappers per
env), stepped with pre-drawn random actions. (2) One minibatch step of the
update and nothing more: our actor's Gaussian log-prob, the clipped surrogate,
the clipped value loss, backward, the global gradient clip and a fused Adam step
on 64 random transitions (no diagnostics, no indexing), times the 320 such
steps per 2,048-step rollout. Their sum leaves out the policy's forward pass and
sampling, so 1 / (env + update) per step is an upper bound on the steps/s of
any eager-PyTorch PPO with these settings on this env stack, here; the line
sets it beside CleanRL's median.

CleanRL runs in its own virtualenv (bench/.venv-cleanrl-gym1 or
bench/.venv-cleanrl-gym029, created on first use: torch==2.13.0 first, so
nothing pulls a CUDA build, then the packages below at exact pins), chosen by
whether the script uses Gymnasium 1.x's ``AutoresetMode``; CleanRL is never a
requirement of the suite. For each seed CleanRL runs first, then ours, so both
see the same machine load: compare the ratio, not the absolute figures.
"""
from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from rlsuite.cli import OneLineParser, UsageError, parse_seeds  # noqa: E402  (needs ROOT on sys.path)
from ppo_vs_sb3 import child_cpu, ensure_venv  # noqa: E402  (bench/, the script's own folder)

# The packages CleanRL's script imports (gymnasium with MuJoCo, which imports imageio; tyro;
# tensorboard), at versions that install on Python 3.11 next to torch 2.13.
PACKAGES = {
    "gym1": ["gymnasium==1.2.2", "mujoco==3.3.7", "numpy==2.4.6", "imageio==2.37.0", "tyro==0.9.35",
             "tensorboard==2.20.0"],
    "gym029": ["gymnasium==0.29.1", "mujoco==2.3.7", "numpy==1.26.4", "imageio==2.37.0", "tyro==0.9.35",
               "tensorboard==2.20.0"],
}
ROLLOUT = 2048
SETTINGS = dict(num_envs=1, num_steps=ROLLOUT, num_minibatches=32, update_epochs=10, learning_rate=3e-4,
                gamma=0.99, gae_lambda=0.95, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5)
LAST_EPISODES = 10
# CleanRL leaves torch's thread count alone; its own benchmarks run with OMP_NUM_THREADS=1, and
# our runner uses one thread (--threads 1). Without this, CleanRL ran at 22 steps/s on the busy
# 2-core machine (two OpenMP threads spinning against the other load).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cleanrl_flags(s: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in s.items()]


def our_flags(s: dict) -> list[str]:
    return ["--num-envs", s["num_envs"], "--num-steps", s["num_steps"],
            "--minibatch-size", s["num_envs"] * s["num_steps"] // s["num_minibatches"],
            "--update-epochs", s["update_epochs"], "--learning-rate", s["learning_rate"], "--anneal-lr",
            "--gamma", s["gamma"], "--gae-lambda", s["gae_lambda"], "--clip-coef", s["clip_coef"], "--clip-vloss",
            "--ent-coef", s["ent_coef"], "--vf-coef", s["vf_coef"], "--max-grad-norm", s["max_grad_norm"],
            "--norm-obs", "--norm-reward", "--obs-clip", 10, "--reward-clip", 10]


def flavour(script: Path) -> str:
    """Which Gymnasium the script is written for: 1.x if it uses AutoresetMode, else 0.29."""
    return "gym1" if "AutoresetMode" in script.read_text() else "gym029"


def run_cleanrl(python: Path, script: Path, seed: int, total_steps: int) -> dict:
    cpu0, t0 = child_cpu(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cleanrl-") as work:  # it writes runs/ (TensorBoard) to its cwd
        proc = subprocess.run([str(python), str(script), f"--seed={seed}", f"--total-timesteps={total_steps}",
                               "--no-cuda", *cleanrl_flags(SETTINGS)],
                              cwd=work, capture_output=True, text=True,
                              env={**os.environ, "MUJOCO_GL": "egl", **ONE_THREAD})
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"CleanRL's script failed (seed {seed}):\n{tail}")
    sps = [int(m) for m in re.findall(r"^SPS: (\d+)", proc.stdout, re.M)]
    # "episodic_return=123.4" (Gymnasium 1.x revision) or "episodic_return=[123.4]" (earlier ones)
    returns = [float(m) for m in re.findall(r"episodic_return=\[?(-?[\d.eE+-]+)", proc.stdout)]
    if not sps:
        raise SystemExit(f"CleanRL's script printed no 'SPS:' line (seed {seed}); is it ppo_continuous_action.py?")
    return {"steps_per_s": sps[-1], "score": statistics.mean(returns[-LAST_EPISODES:]) if returns else None,
            "episodes": len(returns), "process_cpu_s": child_cpu() - cpu0, "wall_s": time.perf_counter() - t0}


def run_ours(seed: int, total_steps: int, results: Path) -> dict:
    cpu0, t0 = child_cpu(), time.perf_counter()
    cmd = [sys.executable, str(ROOT / "ppo_benchmark.py"), "--env", "HalfCheetah-v5", "--seed", str(seed),
           "--total-steps", str(total_steps), "--eval-every", str(10 * total_steps), "--results-dir", str(results),
           "--overwrite", "--no-progress", *map(str, our_flags(SETTINGS))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ppo_benchmark.py failed (seed {seed}):\n{proc.stderr}")
    run = results / "HalfCheetah-v5" / "ppo" / f"seed_{seed}"
    summary = json.loads((run / "summary.json").read_text())
    with open(run / "episodes.csv", newline="") as f:
        returns = [float(row["return"]) for row in csv.DictReader(f)]
    return {"steps_per_s": summary["total_steps"] / summary["train_time_s"],
            "score": statistics.mean(returns[-LAST_EPISODES:]) if returns else None, "episodes": len(returns),
            "process_cpu_s": child_cpu() - cpu0, "wall_s": time.perf_counter() - t0}


def speed_floor(seed: int, env_steps: int = 10_000, minibatch_steps: int = 1_000) -> dict:
    """Wall seconds per env step of the env stack alone and of the update alone (module docstring)."""
    import numpy as np
    import torch

    import ppo
    from rlsuite.envs import Normalization, describe_env, make_vec_env

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    info = describe_env("HalfCheetah-v5")
    envs = make_vec_env("HalfCheetah-v5", 1, seed, Normalization(obs=True, reward=True, gamma=SETTINGS["gamma"]))
    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, (env_steps, 1, info.action_dim)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        envs.step(a)
    env_s = (time.perf_counter() - t0) / env_steps
    envs.close()

    cfg = ppo.PPOConfig()
    actor = ppo.build_actor(info.obs_dim, None, cfg, action_dim=info.action_dim)
    critic = ppo.build_critic(info.obs_dim, cfg)
    params = [*actor.parameters(), *critic.parameters()]
    optimizer = torch.optim.Adam(params, lr=SETTINGS["learning_rate"], eps=1e-5, fused=True)
    mb = ROLLOUT // SETTINGS["num_minibatches"]
    obs, acts = torch.randn(mb, info.obs_dim), torch.randn(mb, info.action_dim)
    old_logp, adv, ret, old_v = (torch.randn(mb) for _ in range(4))

    def minibatch_step():
        policy_loss, _ = ppo.clipped_surrogate_loss(actor.dist(obs).log_prob(acts), old_logp, adv,
                                                    SETTINGS["clip_coef"])
        value_loss = ppo.value_loss_fn(critic(obs).squeeze(-1), ret, old_v, SETTINGS["clip_coef"])
        optimizer.zero_grad()
        (policy_loss + SETTINGS["vf_coef"] * value_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, SETTINGS["max_grad_norm"], foreach=True)
        optimizer.step()

    for _ in range(20):  # warm-up: first calls allocate
        minibatch_step()
    t0 = time.perf_counter()
    for _ in range(minibatch_steps):
        minibatch_step()
    minibatch_s = (time.perf_counter() - t0) / minibatch_steps
    per_rollout = SETTINGS["update_epochs"] * SETTINGS["num_minibatches"]
    return {"env_s": env_s, "minibatch_s": minibatch_s, "update_s": minibatch_s * per_rollout / ROLLOUT}


def checked_script(path: Path | None) -> Path:
    if path is None:
        raise UsageError("argument --cleanrl-script: required (a copy of CleanRL's cleanrl/ppo_continuous_action.py), "
                         "or pass --skip-cleanrl")
    script = path.expanduser().resolve()
    if not script.is_file():
        raise UsageError(f"argument --cleanrl-script: {script} is not a file")
    if "get_action_and_value" not in script.read_text(errors="replace"):
        raise UsageError(f"argument --cleanrl-script: {script} does not look like CleanRL's ppo_continuous_action.py")
    return script


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main() -> int:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--cleanrl-script", type=Path, help="CleanRL's cleanrl/ppo_continuous_action.py (see --help)")
    p.add_argument("--seeds", default="1", help="e.g. 1-3 or 1,2,5")
    p.add_argument("--total-steps", type=int, default=100_000, help=f"rounded down to a multiple of {ROLLOUT}")
    p.add_argument("--results-dir", default=str(BENCH / "results-vs-cleanrl"), help="where our runs go")
    p.add_argument("--skip-cleanrl", action="store_true", help="only run ours")
    args = p.parse_args()
    total_steps = args.total_steps // ROLLOUT * ROLLOUT
    try:
        if total_steps < ROLLOUT:
            raise UsageError(f"argument --total-steps: must be >= {ROLLOUT} (one rollout), got {args.total_steps}")
        seeds = parse_seeds(args.seeds)
        script = None if args.skip_cleanrl else checked_script(args.cleanrl_script)
    except UsageError as exc:
        p.error(str(exc))

    python = None if script is None else ensure_venv(BENCH / f".venv-cleanrl-{flavour(script)}",
                                                    PACKAGES[flavour(script)])
    print(f"{total_steps} steps per run; CleanRL HalfCheetah-v4, ours HalfCheetah-v5", flush=True)
    print(f"{'seed':>4} {'impl':<7} {'steps/s':>8} {'score':>8} {'episodes':>8} {'proc_cpu_s':>10} {'wall_s':>7}",
          flush=True)
    rows = []
    for seed in seeds:
        pair = {}
        if python is not None:
            pair["cleanrl"] = run_cleanrl(python, script, seed, total_steps)
        pair["ours"] = run_ours(seed, total_steps, Path(args.results_dir))
        for impl, r in pair.items():
            print(f"{seed:>4} {impl:<7} {r['steps_per_s']:>8.0f} {fmt(r['score']):>8} {r['episodes']:>8} "
                  f"{r['process_cpu_s']:>10.1f} {r['wall_s']:>7.1f}", flush=True)
        rows.append(pair)

    print()
    med = {impl: {k: statistics.median(pair[impl][k] for pair in rows) for k in ("steps_per_s", "process_cpu_s")}
           for impl in rows[0]}
    for impl in rows[0]:
        scores = [pair[impl]["score"] for pair in rows if pair[impl]["score"] is not None]
        score = fmt(statistics.median(scores) if scores else None)
        print(f"{impl:<7} median over {len(rows)} seeds: {med[impl]['steps_per_s']:.0f} steps/s, "
              f"score (last {LAST_EPISODES} training episodes) median {score}, "
              f"process CPU {med[impl]['process_cpu_s']:.1f} s")
    floor = speed_floor(seeds[0])
    ceiling = 1.0 / (floor["env_s"] + floor["update_s"])
    line = (f"floor: env stack alone {floor['env_s'] * 1e6:.0f} us/step; one minibatch step "
            f"{floor['minibatch_s'] * 1e3:.3f} ms, {floor['update_s'] * 1e6:.0f} us per env step; "
            f"so at most {ceiling:.0f} steps/s with the policy's own cost left out")
    if "cleanrl" in med:
        line += f", {ceiling / med['cleanrl']['steps_per_s']:.2f}x CleanRL's median"
    print(line)
    if "cleanrl" in med:
        ratios = [pair["ours"]["steps_per_s"] / pair["cleanrl"]["steps_per_s"] for pair in rows]
        ratio = med["ours"]["steps_per_s"] / med["cleanrl"]["steps_per_s"]
        print(f"ours / CleanRL steps/s: ratio of medians {ratio:.2f}, per seed {', '.join(f'{r:.2f}' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
