"""Fixed-length rollouts over a vector env, and the flat batch of valid transitions (plumbing, no loss).

Shared by the on-policy algorithms that learn from T steps of N envs (A2C,
PPO, TRPO). The buffers are allocated once and overwritten every rollout, as
numpy arrays: per step there is one policy call on N rows
(``Actor.sampler``, numpy in and out) and one copy of the new observations.
Observations and actions are also exposed as torch tensors that share the
arrays' memory, which the networks read for the update without a copy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gymnasium.wrappers import vector as vector_wrappers

from rlsuite.envs import AutoresetTracker, env_action, find_wrapper
from rlsuite.returns import gae


@dataclass
class Batch:
    """The valid transitions of one rollout, flat, with GAE advantages and critic targets.

    ``values`` are V(s_t) from the critic before the update, the numbers the
    advantages were computed from; ``returns`` = advantages + values are the
    critic's regression targets R_t.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    values: torch.Tensor

    def __len__(self) -> int:
        return len(self.actions)


class Rollout:
    """T steps of N envs: ``obs[t]`` is what the agent acted on at step t, ``obs[T]`` the last returned.

    After ``collect``, for t < T: ``actions[t]``, ``rewards[t]``,
    ``terminated[t]``, ``truncated[t]`` are the step's action and what
    ``env.step`` returned, and ``valid[t]`` is False at autoreset steps
    (see ``AutoresetTracker``). ``obs`` has T + 1 rows so that
    ``critic(obs)`` gives the T + 1 values ``rlsuite.returns.gae`` expects.
    The next rollout starts from ``obs[T]``.

    Discrete actions are stored as integers, Box actions as float vectors
    (T, N, action_dim) exactly as sampled: the loss sees the unclipped action,
    ``env.step`` a copy clipped to the bounds (``rlsuite.envs.env_action``).
    With reward scaling (``rlsuite.envs.normalize_vec_env``) ``rewards`` are
    the scaled rewards the algorithm learns from, while each logged episode
    return is the environment's own, from RecordEpisodeStatistics.
    """

    def __init__(self, envs, num_steps: int, num_envs: int, obs_dim: int, seed: int):
        self.envs = envs
        self.tracker = AutoresetTracker(num_envs)
        # normalize_vec_env puts RecordEpisodeStatistics under the reward scaling
        self.raw_returns_from_info = find_wrapper(envs, vector_wrappers.RecordEpisodeStatistics) is not None
        self.action_space = envs.single_action_space
        T, N = num_steps, num_envs
        # numpy buffers written step by step; the torch tensors are views of the same memory
        self.obs_np = np.zeros((T + 1, N, obs_dim), dtype=np.float32)
        self.obs_np[T] = envs.reset(seed=seed)[0]
        box = self.action_space.shape if len(self.action_space.shape) else None
        self.actions_np = np.zeros((T, N, *box), dtype=np.float32) if box else np.zeros((T, N), dtype=np.int64)
        self.obs, self.actions = torch.from_numpy(self.obs_np), torch.from_numpy(self.actions_np)
        self.rewards = np.zeros((T, N))
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.valid = np.zeros((T, N), dtype=bool)

    def collect(self, actor: torch.nn.Module, run, global_step: int) -> int:
        """Run T steps of the current stochastic policy; log finished episodes; return global_step.

        global_step counts valid steps only (docs/protocol.md, measurement rules).
        """
        obs, actions = self.obs_np, self.actions_np
        obs[0] = obs[-1]
        sample = actor.sampler()  # pi_theta_old, fixed for the whole rollout
        for t in range(len(actions)):
            actions[t] = action = sample(obs[t])
            next_obs, reward, term, trunc, info = self.envs.step(env_action(action, self.action_space))
            obs[t + 1] = next_obs
            self.rewards[t], self.terminated[t], self.truncated[t] = reward, term, trunc
            self.valid[t], finished = self.tracker.step(reward, term, trunc)
            global_step += int(self.valid[t].sum())
            for ret, length, i in finished:
                if self.raw_returns_from_info:  # the tracker summed the scaled rewards
                    ret = float(info["episode"]["r"][i])
                run.log_episode(global_step, ret, length)
        return global_step

    def batch(self, critic: torch.nn.Module, gamma: float, gae_lambda: float) -> Batch | None:
        """GAE(gamma, lambda) over the rollout, then its valid steps only, flattened.

        The critic runs once on all T + 1 rows of ``obs`` (no gradient); row
        t + 1 after a truncated step is V(final observation), the bootstrap.
        Autoreset steps are not transitions: they enter no loss, no advantage
        statistics and no step count. None when no step is valid (possible
        only with N * T == 1).
        """
        with torch.no_grad():
            values = critic(self.obs).squeeze(-1).numpy().astype(np.float64)
        advantages = gae(self.rewards, values, self.terminated, self.truncated, self.valid,
                         gamma, gae_lambda)
        returns = advantages + values[:-1]
        valid = np.flatnonzero(self.valid)
        if len(valid) == 0:
            return None
        index = torch.from_numpy(valid)
        advantages, returns, values = (torch.as_tensor(x.reshape(-1)[valid], dtype=torch.float32)
                                       for x in (advantages, returns, values[:-1]))
        T, N = self.actions.shape[:2]
        return Batch(obs=self.obs[:-1].reshape(-1, self.obs.shape[-1])[index],
                     actions=self.actions.reshape(T * N, *self.actions.shape[2:])[index],
                     advantages=advantages, returns=returns, values=values)
