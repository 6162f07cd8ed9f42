"""Where PPO's training time goes: phase split and the torch ops that dominate the update.

    python bench/profile_ppo.py                 # rl-zoo CartPole-v1 settings, 30k steps
    python bench/profile_ppo.py -- --num-envs 4 --num-steps 64 --minibatch-size 64 --update-epochs 10
    python bench/profile_ppo.py --steps 20480 -- --env HalfCheetah-v5   # its preset: CleanRL's settings

Runs ppo.train against a stub of the runner (no CSV, no evaluation; the
env's preset applies, normalization included), one torch thread. Prints
(1) CPU seconds in the rollout, split into env.step (the vector env with its
normalization wrappers; the bare envs underneath) and the rest of the
rollout (policy, sampling, conversions, book-keeping), in GAE and in the
rest (the update epochs), timed by wrapping those functions; (2) what one
periodic evaluation costs (--eval-episodes greedy episodes, as the runner
plays them); (3) a torch.profiler table of a shorter second run, by self CPU
time.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  torch.optim's lazy import, outside the measurement
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ppo  # noqa: E402
from rlsuite import rollout  # noqa: E402
from rlsuite.cli import OneLineParser, parse_args, positive_int  # noqa: E402
from rlsuite.envs import Normalization, ObsNormalization, describe_env, make_vec_env  # noqa: E402
from rlsuite.evaluation import action_bounds, evaluate_policy, greedy_policy, periodic_eval_seeds  # noqa: E402

ZOO = ["--num-envs", "8", "--num-steps", "32", "--minibatch-size", "256", "--update-epochs", "20",
       "--gamma", "0.98", "--gae-lambda", "0.8", "--learning-rate", "1e-3", "--ent-coef", "0"]


class StubRun:
    def __init__(self, env_id, seed, cfg, buckets):
        info = describe_env(env_id)
        self.env_id, self.seed, self.obs_dim = env_id, seed, info.obs_dim
        self.n_actions, self.action_dim = info.n_actions, info.action_dim
        self.action_bounds = action_bounds(info.__dict__)
        self.norm = Normalization.of(cfg)
        self.buckets = buckets
        self.envs = None

    def make_vec_env(self, n):
        self.envs = make_vec_env(self.env_id, n, self.seed, self.norm)
        self.envs.step = timed(self.envs.step, self.buckets, "env.step")
        bare = self.envs.unwrapped
        bare.step = timed(bare.step, self.buckets, "bare envs")
        return self.envs

    def log_episode(self, *args, **kwargs):
        pass

    def log_update(self, *args, **kwargs):
        pass

    def update_boundary(self, global_step, actor):
        return False


def timed(fn, bucket, key):
    bucket.setdefault(key, 0.0)

    def wrapper(*args, **kwargs):
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[key] += time.process_time() - t0
    return wrapper


def main() -> int:
    argv = sys.argv[1:]
    ours, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, ZOO)
    p = OneLineParser(prog="profile_ppo.py", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=positive_int, default=30_000, help="training steps of the timed run")
    p.add_argument("--profile-steps", type=positive_int, default=5_000, help="training steps of the profiled run")
    p.add_argument("--eval-episodes", type=int, default=20, help="episodes of the timed periodic evaluation")
    opts = p.parse_args(ours)
    steps = opts.steps
    args, cfg = parse_args(extra + ["--total-steps", str(steps)], "profile_ppo.py", "ppo", ppo.PPOConfig)
    torch.set_num_threads(1)

    buckets = {"rollout": 0.0, "gae": 0.0}
    collect, gae = rollout.Rollout.collect, rollout.gae
    rollout.Rollout.collect = timed(collect, buckets, "rollout")
    rollout.gae = timed(gae, buckets, "gae")
    torch.manual_seed(1)
    run = StubRun(args.env, args.seed, cfg, buckets)
    t0, c0 = time.perf_counter(), time.process_time()
    actor = ppo.train(cfg, run)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rollout.Rollout.collect, rollout.gae = collect, gae
    rest = cpu - buckets["rollout"] - buckets["gae"]
    n = cfg.num_envs * cfg.num_steps
    iterations = -(-steps // n)  # train() finishes the rollout that crosses the budget
    steps = iterations * n
    grad_steps = iterations * cfg.update_epochs * -(-n // cfg.minibatch_size)
    step_s, bare_s = buckets["env.step"], buckets["bare envs"]
    print(f"{args.env}, {steps} steps: {wall:.2f} s wall, {cpu:.2f} s CPU, {steps / wall:.0f} steps/s wall")
    print(f"  rollout {buckets['rollout']:.2f} s ({buckets['rollout'] / steps * 1e6:.0f} us/step): "
          f"env.step {step_s:.2f} (bare envs {bare_s:.2f}, wrappers {step_s - bare_s:.2f}), "
          f"policy + book-keeping {buckets['rollout'] - step_s:.2f}")
    print(f"  GAE {buckets['gae']:.2f} s; update epochs + rest {rest:.2f} s: "
          f"~{grad_steps} minibatch steps, {rest / grad_steps * 1e3:.3f} ms CPU each")

    if opts.eval_episodes > 0:
        act = greedy_policy(actor, ObsNormalization.of(run.envs, run.norm), run.action_bounds)
        t0, c0 = time.perf_counter(), time.process_time()
        returns = evaluate_policy(args.env, act, periodic_eval_seeds(args.seed, opts.eval_episodes))
        print(f"  one periodic evaluation ({opts.eval_episodes} episodes): {time.perf_counter() - t0:.2f} s wall, "
              f"{time.process_time() - c0:.2f} s CPU, mean return {returns.mean():.1f}")

    cfg.total_steps = opts.profile_steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ppo.train(cfg, StubRun(args.env, args.seed, cfg, {}))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
