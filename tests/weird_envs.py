"""Environments registered only for tests: spaces the suite must refuse up front.

Imported by test_envs.py, and by test_bad_input.py in front of a runner
(``python -c "import weird_envs; ..."``) so the runner's own process knows them.
"""
import gymnasium as gym
import numpy as np


class _Base(gym.Env):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, dtype=np.float32), 0.0, True, False, {}


class ActionsFromOne(_Base):
    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2, start=1)


class NoObservation(_Base):
    observation_space = gym.spaces.Box(-1.0, 1.0, (0,), np.float32)
    action_space = gym.spaces.Discrete(2)


class NeedsMissingLibrary(_Base):
    def __init__(self):
        raise ImportError("no module named 'physics_engine_we_do_not_have'")


for _name, _cls in (("ActionsFromOne-v0", ActionsFromOne), ("NoObservation-v0", NoObservation),
                    ("NeedsMissingLibrary-v0", NeedsMissingLibrary)):
    if _name not in gym.registry:
        gym.register(_name, entry_point=_cls, max_episode_steps=10)


class MatrixActions(_Base):
    """Box actions of shape (2, 2): no flat Gaussian head fits them."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)


gym.register("MatrixActions-v0", entry_point=MatrixActions)
