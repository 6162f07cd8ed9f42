"""Loaded at start-up by every Python process of a test that puts this folder on PYTHONPATH.

Registers ``FaultyCartPole-v1``: CartPole-v1 whose env raises after
``FAULTY_ENV_RAISE_AFTER`` of its own steps, but only inside an A3C worker
process, so the runner's own envs (validation, evaluation) keep working.
The spawned workers run this file too, which is how the fault reaches them
without any test hook in a3c.py.
"""
import multiprocessing
import os

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class FaultyCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0
        self.raise_after = int(os.environ.get("FAULTY_ENV_RAISE_AFTER", "1000"))
        self.armed = multiprocessing.current_process().name.startswith("a3c-worker")

    def step(self, action):
        self.steps += 1
        if self.armed and self.steps >= self.raise_after:
            raise RuntimeError(f"faulty env raised after {self.steps} steps")
        return super().step(action)


gym.register("FaultyCartPole-v1", entry_point=FaultyCartPole, max_episode_steps=500, reward_threshold=475.0)
