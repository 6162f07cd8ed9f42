"""Action distributions behind one small interface, and the actor that produces them.

Every algorithm asks its actor for ``actor.dist(obs)`` and then calls only

    log_prob(a)   log pi(a|s) per row
    entropy()     H(pi(.|s)) per row
    sample()      a ~ pi(.|s)
    mode()        the greedy action (argmax, or the mean)
    kl(other)     KL(self || other) per row, in closed form

so no update branches on the action type. Two distributions implement it:
``Categorical`` for Discrete actions (the network outputs logits) and
``DiagGaussian`` for Box actions (the network outputs the mean; log sigma is a
state-independent learnable vector, as in Schulman et al. 2015 and
Schulman et al. 2017's MuJoCo experiments).

They are plain classes, not ``torch.distributions``: the update loops build
one per minibatch, where the library objects' argument validation and
broadcasting cost more than the arithmetic (about 10 microseconds per op on
the benchmark machine). ``tests/test_distributions.py`` checks both against
``torch.distributions`` and ``kl_divergence``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rlsuite.nets import numpy_forward

LOG_2PI = math.log(2 * math.pi)


class Categorical:
    """pi(a|s) = softmax(logits)_a."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.log_probs_all = logits.log_softmax(dim=-1)  # log pi(.|s), one row per state

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """H = -sum_a pi(a|s) log pi(a|s)."""
        return -(self.log_probs_all.exp() * self.log_probs_all).sum(dim=-1)

    def sample(self) -> torch.Tensor:
        probs = self.logits.softmax(dim=-1).reshape(-1, self.logits.shape[-1])
        return torch.multinomial(probs, 1).reshape(self.logits.shape[:-1])

    def mode(self) -> torch.Tensor:
        return self.logits.argmax(dim=-1)

    def kl(self, other: "Categorical") -> torch.Tensor:
        """KL(self || other) = sum_a p(a) (log p(a) - log q(a))."""
        return (self.log_probs_all.exp() * (self.log_probs_all - other.log_probs_all)).sum(dim=-1)

    def detach(self) -> "Categorical":
        return Categorical(self.logits.detach())


class DiagGaussian:
    """pi(a|s) = N(a; mu(s), diag(sigma^2)), the action dimensions independent.

    log pi(a|s) = -sum_i [ (a_i - mu_i)^2 / (2 sigma_i^2) + log sigma_i + log(2 pi) / 2 ]
    H           =  sum_i [ log sigma_i + (1 + log(2 pi)) / 2 ]
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) * torch.exp(-self.log_std)
        return -(0.5 * z.square() + self.log_std + 0.5 * LOG_2PI).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * (1.0 + LOG_2PI)).sum(dim=-1)

    def sample(self) -> torch.Tensor:
        return self.mean + torch.exp(self.log_std) * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self, other: "DiagGaussian") -> torch.Tensor:
        """KL(self || other) = sum_i [ log(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2 ]."""
        var_ratio = torch.exp(2 * (self.log_std - other.log_std))
        mean_term = (self.mean - other.mean).square() * torch.exp(-2 * other.log_std)
        return (other.log_std - self.log_std + 0.5 * (var_ratio + mean_term) - 0.5).sum(dim=-1)

    def detach(self) -> "DiagGaussian":
        return DiagGaussian(self.mean.detach(), self.log_std.detach())


class Actor(nn.Module):
    """pi_theta(.|s): a network from observations to the parameters of the action distribution.

    ``forward`` returns those parameters (logits, or the Gaussian's mean);
    ``dist`` wraps them in the distribution. With ``action_dim`` given the
    policy is a diagonal Gaussian with a learnable log sigma, initialized to
    ``log_std_init`` in every dimension (0: sigma = 1) and shared by all states.
    """

    def __init__(self, net: nn.Module, action_dim: int | None = None, log_std_init: float = 0.0):
        super().__init__()
        self.net = net
        self.log_std = (None if action_dim is None
                        else nn.Parameter(torch.full((action_dim,), float(log_std_init))))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def dist(self, obs: torch.Tensor):
        out = self.net(obs)
        if self.log_std is None:
            return Categorical(out)
        return DiagGaussian(out, self.log_std)

    def sampler(self):
        """a ~ pi(.|s) for an array of observations (cast to float32), returning numpy: the rollout's
        policy call.

        The Gaussian runs its mean network in numpy (``rlsuite.nets.numpy_forward``)
        on views of the parameters, so it follows in-place updates (every
        optimizer here, ``load_state_dict``) but not a replaced parameter; its
        noise comes from ``torch.randn``, the same draw as
        ``DiagGaussian.sample``, so a seed fixes the same noise either way.
        The categorical policy, and any network numpy cannot run, go through
        ``dist(obs).sample()`` unchanged.
        """
        mean_fn = None if self.log_std is None else numpy_forward(self.net)
        if mean_fn is None:
            def sample(obs) -> np.ndarray:
                with torch.inference_mode():
                    return self.dist(torch.from_numpy(np.asarray(obs, dtype=np.float32))).sample().numpy()
            return sample
        log_std = self.log_std.detach().numpy()  # a view, like the mean network's weights

        def sample_gaussian(obs) -> np.ndarray:
            mean = mean_fn(np.asarray(obs, dtype=np.float32))
            return mean + np.exp(log_std) * torch.randn(mean.shape).numpy()
        return sample_gaussian
