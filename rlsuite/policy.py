"""Diagnostics every updates.csv logs, written once (no losses here).

log pi(a|s), the entropy and the closed-form KL live with the action
distributions (``rlsuite.distributions``).
"""
from __future__ import annotations

import numpy as np
import torch


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
