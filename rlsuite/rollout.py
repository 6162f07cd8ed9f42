"""Fixed-length rollouts over a vector env, stored in preallocated buffers (plumbing, no loss).

Shared by the on-policy algorithms that learn from T steps of N envs (A2C,
PPO, TRPO). The buffers are allocated once and overwritten every rollout:
observations as a torch tensor (the networks read them without conversion),
rewards and episode flags as numpy arrays (``rlsuite.returns.gae`` reads
them). Per step there is one policy call on N rows and one copy of the new
observations; nothing else crosses between numpy and torch.
"""
from __future__ import annotations

import numpy as np
import torch

from rlsuite.envs import AutoresetTracker


def sample_actions(logits: torch.Tensor) -> torch.Tensor:
    """a ~ Categorical(softmax(logits)) per row, without building a distribution object.

    Same draw as ``torch.distributions.Categorical(logits=...).sample()`` at
    a fraction of its per-call overhead (the rollout calls it T times).
    """
    return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)


class Rollout:
    """T steps of N envs: ``obs[t]`` is what the agent acted on at step t, ``obs[T]`` the last returned.

    After ``collect``, for t < T: ``actions[t]``, ``rewards[t]``,
    ``terminated[t]``, ``truncated[t]`` are the step's action and what
    ``env.step`` returned, and ``valid[t]`` is False at autoreset steps
    (see ``AutoresetTracker``). ``obs`` has T + 1 rows so that
    ``critic(obs)`` gives the T + 1 values ``rlsuite.returns.gae`` expects.
    The next rollout starts from ``obs[T]``.
    """

    def __init__(self, envs, num_steps: int, num_envs: int, obs_dim: int, seed: int):
        self.envs = envs
        self.tracker = AutoresetTracker(num_envs)
        T, N = num_steps, num_envs
        self.obs = torch.zeros(T + 1, N, obs_dim)
        self.obs[T] = torch.from_numpy(np.asarray(envs.reset(seed=seed)[0], dtype=np.float32))
        self.actions = torch.zeros(T, N, dtype=torch.long)
        self.rewards = np.zeros((T, N))
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.valid = np.zeros((T, N), dtype=bool)

    def collect(self, actor: torch.nn.Module, run, global_step: int) -> int:
        """Run T steps of the current stochastic policy; log finished episodes; return global_step.

        global_step counts valid steps only (BENCHMARK_PROTOCOL.md).
        """
        obs = self.obs
        obs[0] = obs[-1]
        with torch.inference_mode():
            for t in range(len(self.actions)):
                action = sample_actions(actor(obs[t]))
                self.actions[t] = action
                next_obs, reward, term, trunc, _ = self.envs.step(action.numpy())
                obs[t + 1] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
                self.rewards[t], self.terminated[t], self.truncated[t] = reward, term, trunc
                self.valid[t], finished = self.tracker.step(reward, term, trunc)
                global_step += int(self.valid[t].sum())
                for ret, length, _ in finished:
                    run.log_episode(global_step, ret, length)
        return global_step

    def valid_indices(self) -> torch.Tensor:
        """Flat (t * N + i) indices of the valid steps: the transitions a loss may use."""
        return torch.from_numpy(np.flatnonzero(self.valid))
