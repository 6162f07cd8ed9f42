"""Where PPO's training time goes: phase split and the torch ops that dominate the update.

    python bench/profile_ppo.py                 # rl-zoo CartPole-v1 settings, 30k steps
    python bench/profile_ppo.py -- --num-envs 4 --num-steps 64 --minibatch-size 64 --update-epochs 10

Runs ppo.train against a stub of the runner (no CSV, no evaluation), one
torch thread. Prints (1) CPU seconds in the rollout, in GAE and in the rest
(the update epochs), timed by wrapping those functions, and (2) a
torch.profiler table of a shorter second run, by self CPU time.
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
from rlsuite.cli import parse_args  # noqa: E402
from rlsuite.envs import describe_env, make_vec_env  # noqa: E402

ZOO = ["--num-envs", "8", "--num-steps", "32", "--minibatch-size", "256", "--update-epochs", "20",
       "--gamma", "0.98", "--gae-lambda", "0.8", "--learning-rate", "1e-3", "--ent-coef", "0"]


class StubRun:
    def __init__(self, env_id, seed):
        info = describe_env(env_id)
        self.env_id, self.seed, self.obs_dim, self.n_actions = env_id, seed, info.obs_dim, info.n_actions

    def make_vec_env(self, n):
        return make_vec_env(self.env_id, n, self.seed)

    def log_episode(self, *args, **kwargs):
        pass

    def log_update(self, *args, **kwargs):
        pass

    def update_boundary(self, global_step, actor):
        return False


def timed(fn, bucket, key):
    def wrapper(*args, **kwargs):
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[key] += time.process_time() - t0
    return wrapper


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    extra = argv[argv.index("--") + 1:] if "--" in argv else ZOO
    steps = 30_000
    args, cfg = parse_args(extra + ["--total-steps", str(steps)], "profile_ppo.py", "ppo", ppo.PPOConfig)
    torch.set_num_threads(1)

    buckets = {"rollout": 0.0, "gae": 0.0}
    collect, gae = ppo.Rollout.collect, ppo.gae
    ppo.Rollout.collect = timed(collect, buckets, "rollout")
    ppo.gae = timed(gae, buckets, "gae")
    torch.manual_seed(1)
    t0, c0 = time.perf_counter(), time.process_time()
    ppo.train(cfg, StubRun(args.env, args.seed))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ppo.Rollout.collect, ppo.gae = collect, gae
    rest = cpu - buckets["rollout"] - buckets["gae"]
    n = cfg.num_envs * cfg.num_steps
    grad_steps = steps // n * cfg.update_epochs * max(1, -(-n // cfg.minibatch_size))
    print(f"{steps} steps: {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"(rollout {buckets['rollout']:.2f}, GAE {buckets['gae']:.2f}, update epochs + rest {rest:.2f}); "
          f"~{grad_steps} minibatch steps, {rest / grad_steps * 1e3:.3f} ms CPU each")

    cfg.total_steps = 5_000
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ppo.train(cfg, StubRun(args.env, args.seed))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
