"""Categorical-policy helpers and the diagnostics every updates.csv logs (no losses here).

``log_prob`` and ``entropy`` work on logits directly, without building a
``torch.distributions.Categorical`` per call: the update loops call them once
per minibatch step, where the object's construction and validation cost more
than the arithmetic.
"""
from __future__ import annotations

import numpy as np
import torch


def log_prob(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a|s) of the taken actions, and log pi(.|s) of every action (rows of logits)."""
    logp_all = logits.log_softmax(dim=-1)
    return logp_all.gather(1, actions.unsqueeze(1)).squeeze(1), logp_all


def entropy(logp_all: torch.Tensor) -> torch.Tensor:
    """Mean entropy H(pi(.|s)) = -sum_a pi(a|s) log pi(a|s) over the rows."""
    return -(logp_all.exp() * logp_all).sum(dim=-1).mean()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """k3 estimate of KL(pi_old || pi_new) from log r = log pi_new(a|s) - log pi_old(a|s)
    on actions sampled from pi_old: E[(r - 1) - log r], unbiased and never negative
    (Schulman 2020, "Approximating KL divergence")."""
    return ((log_ratio.exp() - 1) - log_ratio).mean()


def explained_variance(predictions, targets) -> float | None:
    """1 - Var[target - prediction] / Var[target]: 1 for a perfect critic, 0 for one no better
    than a constant, negative for worse. None when the targets have no variance."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    var = targets.var()
    if len(targets) < 2 or var == 0:
        return None
    return float(1.0 - (targets - predictions).var() / var)
