"""Closed-form return and advantage estimators (numpy, no autograd).

Conventions for vector-env rollouts of length T over N envs (Gymnasium 1.x,
next-step autoreset):

- ``rewards[t]``, ``terminated[t]``, ``truncated[t]`` are what ``env.step``
  returned at step t.
- ``valid[t]`` is False for the reset step that follows a finished episode:
  the env ignored the action and returned reward 0. Such a step is not a
  transition; it gets advantage 0 and must be masked out of every loss.
- ``values`` has T + 1 rows: ``values[t] = V(obs[t])`` where ``obs[t]`` is the
  observation the agent acted on at step t, and ``values[T]`` is the value of
  the observation returned by the last step. Because next-step autoreset
  returns the *final* observation of an episode at the step that ends it,
  ``values[t + 1]`` after a truncated step is V(final observation): exactly
  the bootstrap a time limit needs (Pardo et al. 2018, "Time Limits in
  Reinforcement Learning").
"""
from __future__ import annotations

import numpy as np
import torch


def discounted_return(rewards: np.ndarray, gamma: float) -> float:
    """R(tau) = sum_t gamma^t r_t for one episode."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return float(np.sum(rewards * gamma ** np.arange(len(rewards))))


def reward_to_go(rewards: np.ndarray, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G_t = sum_{k>=t} gamma^(k-t) r_k (+ gamma^(T-t) * bootstrap) for one episode.

    ``bootstrap`` is V(s_T) for an episode cut by a time limit, 0 for one that
    terminated.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(rewards)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    valid: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """Generalized advantage estimation, GAE(gamma, lambda) (Schulman et al. 2016, eq. 16).

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    The value of the next state is dropped only on termination; on truncation
    it is kept (bootstrapped). The lambda-chain is cut at every episode end.
    Shapes: rewards/terminated/truncated/valid (T, N) or (T,); values (T + 1, ...).
    Returns advantages with the shape of ``rewards`` (0 where not valid).
    The critic's regression target is ``advantages + values[:-1]``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    not_terminated = 1.0 - np.asarray(terminated, dtype=np.float64)
    not_done = 1.0 - np.logical_or(terminated, truncated).astype(np.float64)
    valid = np.asarray(valid, dtype=bool)
    advantages = np.zeros_like(rewards)
    last = np.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * not_terminated[t] * values[t + 1] - values[t]
        last = delta + gamma * gae_lambda * not_done[t] * last
        last = np.where(valid[t], last, 0.0)
        advantages[t] = last
    return advantages


def normalize(x, eps: float = 1e-8):
    """(x - mean) / (std + eps), std with n - 1; a single element is returned centred.

    Takes a numpy array or a torch tensor and returns the same kind: every
    algorithm that standardizes its advantages calls this one function.
    """
    if len(x) < 2:
        return x - x.mean()
    std = x.std() if isinstance(x, torch.Tensor) else np.asarray(x).std(ddof=1)
    return (x - x.mean()) / (std + eps)
