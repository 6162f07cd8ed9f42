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
Schulman et al. 2017's MuJoCo experiments). With gSDE (``SDEConfig``,
Raffin, Kober and Stulp 2021) the same ``DiagGaussian`` carries a state-dependent log
sigma, one row per state (``sde_log_std``).

They are plain classes, not ``torch.distributions``: the update loops build
one per minibatch, where the library objects' argument validation and
broadcasting cost more than the arithmetic (about 10 microseconds per op on
the benchmark machine). ``tests/test_distributions.py`` checks both against
``torch.distributions`` and ``kl_divergence``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


SDE_EPSILON = 1e-6  # added to the gSDE variance so that a zero latent still gives a proper Gaussian (SB3's)


@dataclass
class SDEConfig:
    """The gSDE fields of the configs with Gaussian policies to explore with: A2C, PPO and TRPO, whose
    rollouts use ``rlsuite.rollout.Rollout``, and A3C, whose worker's segment is its rollout; the same
    flags in all four, as in Stable-Baselines3, whose A2C and PPO have them."""

    use_sde: bool = False
    """generalized state-dependent exploration (Raffin, Kober and Stulp 2021, rl-zoo's use_sde; Box actions only):
    the noise is the last hidden layer's features times a random matrix, drawn anew per env at the start
    of each rollout, so it varies smoothly with the state instead of independently at every step"""
    sde_sample_freq: int = 0
    """with use_sde, draw new noise matrices every this many rollout steps as well (no effect at or above the
    rollout's length, num_steps); 0: only at the start of each rollout (rl-zoo's sde_sample_freq -1)"""


def sde_log_std(latent: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log sigma_j(s) of gSDE: sigma_j(s)^2 = sum_i z_i(s)^2 exp(2 log_std_ij) + SDE_EPSILON.

    ``latent`` holds the features z(s) (..., L), without gradient; ``log_std`` the
    learnable (L, action_dim) matrix. The noise z(s)^T W, with W_ij ~ N(0, exp(2 log_std_ij))
    independent, is Gaussian with this variance (less the epsilon), so the update scores
    the sampled actions with a DiagGaussian of these sigmas (Raffin, Kober and Stulp 2021).
    """
    return 0.5 * torch.log(latent.square() @ torch.exp(2 * log_std) + SDE_EPSILON)


class Actor(nn.Module):
    """pi_theta(.|s): a network from observations to the parameters of the action distribution.

    ``forward`` returns those parameters (logits, or the Gaussian's mean);
    ``dist`` wraps them in the distribution. With ``action_dim`` given the
    policy is a diagonal Gaussian with a learnable log sigma, initialized to
    ``log_std_init`` in every dimension (0: sigma = 1) and shared by all states.

    With ``use_sde`` (gSDE; ``net`` must be an ``mlp`` that ``numpy_forward`` runs, ending in a
    Linear layer) log sigma is instead an (L, action_dim) matrix, every entry starting at
    ``log_std_init``, over the L features z(s) that enter the last layer: sigma(s)
    depends on the state through z(s) (``sde_log_std``). The rollout's ``sampler``
    then draws a noise matrix W per env and acts mu(s) + z(s)^T W; ``dist(obs).sample()``
    draws independent noise of the same per-step distribution.
    """

    def __init__(self, net: nn.Module, action_dim: int | None = None, log_std_init: float = 0.0,
                 use_sde: bool = False, sde_sample_freq: int = 0):
        super().__init__()
        self.net = net
        self.use_sde = use_sde and action_dim is not None
        self.sde_sample_freq = sde_sample_freq
        if self.use_sde:
            if numpy_forward(net) is None or not isinstance(net[-1], nn.Linear):
                raise ValueError("gSDE needs an mlp actor: Linear layers and tanh or ReLU, a Linear one last")
            shape: tuple[int, ...] = (net[-1].in_features, action_dim)
        else:
            shape = (action_dim,)
        self.log_std = (None if action_dim is None
                        else nn.Parameter(torch.full(shape, float(log_std_init))))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def latent(self, obs: torch.Tensor) -> torch.Tensor:
        """z(s): the features the last layer maps to the action parameters."""
        for layer in list(self.net)[:-1]:
            obs = layer(obs)
        return obs

    def dist(self, obs: torch.Tensor):
        if self.use_sde:
            latent = self.latent(obs)
            # the features shape sigma(s) but learn only through the mean (SB3's learn_features=False)
            return DiagGaussian(self.net[-1](latent), sde_log_std(latent.detach(), self.log_std))
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

        With gSDE each call of ``sampler()`` starts new noise: one matrix W per
        row of the first batch of observations (per env), drawn again every
        ``sde_sample_freq`` calls when that is positive. The rollout takes a
        sampler per rollout, so W changes at least once per rollout.
        """
        if self.use_sde:
            return self._sde_sampler()
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

    def _sde_sampler(self):
        """gSDE's rollout policy: mu(s) + z(s)^T W, one W (L, action_dim) per env."""
        latent_fn, head_fn = numpy_forward(self.net[:-1]), numpy_forward(self.net[-1:])  # __init__ checked both
        log_std = self.log_std.detach().numpy()
        every = self.sde_sample_freq
        state = {"noise": None, "calls": 0}

        def sample_sde(obs) -> np.ndarray:
            x = np.asarray(obs, dtype=np.float32)
            latent = latent_fn(x.reshape(-1, x.shape[-1]))
            noise = state["noise"]
            if noise is None or len(noise) != len(latent) or (every > 0 and state["calls"] % every == 0):
                noise = state["noise"] = torch.randn(len(latent), *log_std.shape).numpy() * np.exp(log_std)
            state["calls"] += 1
            action = head_fn(latent) + np.einsum("nl,nla->na", latent, noise)
            return action.reshape(*x.shape[:-1], action.shape[-1])
        return sample_sde
