"""What the single-sample shortcut of rlsuite.envs.RunningMeanStd saves per environment step.

    python bench/normalize_step.py                       # MountainCar-v0, Pendulum-v1, Hopper-v5
    python bench/normalize_step.py --envs Hopper-v5 --steps 5000

Every env is wrapped twice with both normalizations (rlsuite.envs.normalize_env, as
A3C's workers and single-env runs have them): once with Gymnasium's RunningMeanStd
as it comes and once with the suite's subclass. Both see the same actions; the script
checks that they return identical observations and rewards, then times env.step on
each, interleaved so a busy machine slows both alike, and prints the median
microseconds per step and the unwrapped env's, for scale.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rlsuite.envs import Normalization, find_wrapper, make_env, normalize_env  # noqa: E402


def wrapped(env_id: str, fast: bool):
    env = normalize_env(make_env(env_id), Normalization(obs=True, reward=True))
    if not fast:  # back to Gymnasium's own class
        for kind, attr in ((gym.wrappers.NormalizeObservation, "obs_rms"), (gym.wrappers.NormalizeReward, "return_rms")):
            getattr(find_wrapper(env, kind), attr).__class__ = gym.wrappers.utils.RunningMeanStd
    return env


def play(env, actions) -> list:
    env.reset(seed=0)
    out = []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append((np.array(obs, copy=True), reward))
        if terminated or truncated:
            env.reset()
    return out


def per_step_us(env, actions) -> float:
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / len(actions) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default="MountainCar-v0,Pendulum-v1,Hopper-v5")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"env.step with observation and reward normalization, median of {args.rounds} interleaved rounds "
          f"of {args.steps} steps")
    for env_id in args.envs.split(","):
        plain, gym_env, ours = make_env(env_id), wrapped(env_id, False), wrapped(env_id, True)
        plain.reset(seed=0)
        plain.action_space.seed(0)
        actions = [plain.action_space.sample() for _ in range(args.steps)]
        a, b = play(gym_env, actions), play(ours, actions)
        same = all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))
        times = {"unwrapped": [], "Gymnasium": [], "suite": []}
        for _ in range(args.rounds):
            for name, env in (("unwrapped", plain), ("Gymnasium", gym_env), ("suite", ours)):
                times[name].append(per_step_us(env, actions))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{env_id:18s} unwrapped {med['unwrapped']:6.1f} us   normalized: Gymnasium's statistics "
              f"{med['Gymnasium']:6.1f} us, the suite's {med['suite']:6.1f} us (saves "
              f"{med['Gymnasium'] - med['suite']:5.1f} us a step)   identical observations and rewards: {same}")


if __name__ == "__main__":
    main()
