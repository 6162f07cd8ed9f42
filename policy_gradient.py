"""REINFORCE: Monte Carlo policy gradient (Williams 1992) with four gradient estimators.

The policy gradient theorem (Sutton et al. 2000) gives

    grad J(theta) = E_tau[ sum_t grad log pi_theta(a_t | s_t) * Psi_t ]

for several choices of the weight Psi_t, all with the same expectation
(Schulman et al. 2016, "High-dimensional continuous control using GAE", sec. 2):

    total_return   Psi_t = R(tau)              every step weighted by the whole episode's return
    reward_to_go   Psi_t = G_t                 only rewards that come after a_t (causality)
    baseline       Psi_t = G_t - V(s_t)        minus a learned state-value baseline
    advantage      Psi_t = normalize(G_t - V(s_t))   the same, standardized over the batch

Each step down the list lowers the variance of the estimate; the last one is
the default. The value network V is a separate MLP with its own optimizer,
regressed on G_t; it is detached in the policy loss, so the baseline never
receives policy gradient. Read docs/03_policy_gradient.md alongside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlsuite.cli import check_choice
from rlsuite.distributions import Actor, Categorical
from rlsuite.envs import NormalizationConfig, run_episodes
from rlsuite.evaluation import load_policy  # noqa: F401  (the protocol's loader, written once)
from rlsuite.nets import clip_grad_norm, mlp
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.returns import discounted_return, normalize, reward_to_go

ESTIMATORS = ("total_return", "reward_to_go", "baseline", "advantage")
UPDATE_COLUMNS = ["value_learning_rate", "greedy_action_prob", "batch_mean_return"]


@dataclass
class PolicyGradientConfig(NormalizationConfig):
    total_steps: int = 150_000
    """training budget in environment steps (chosen here for CartPole-v1: it leaves the annealed
    policy time to settle after solving; docs/03_policy_gradient.md)"""
    estimator: str = "advantage"
    """Psi_t, the weight on grad log pi(a_t|s_t): total_return | reward_to_go | baseline | advantage"""
    episodes_per_update: int = 8
    """N, complete episodes sampled per gradient step, run side by side in N envs (chosen for
    this suite by seed sweeps on CartPole-v1)"""
    learning_rate: float = 2e-3
    """Adam step size alpha for the policy (chosen for this suite by seed sweeps on CartPole-v1;
    Spinning Up's VPG uses 3e-4 with larger 4000-step batches)"""
    value_learning_rate: float = 1e-2
    """Adam step size for the value baseline V(s) (chosen for this suite; Spinning Up's VPG: 1e-3)"""
    value_iterations: int = 10
    """full-batch gradient steps of V(s) on the returns-to-go per update (Spinning Up VPG uses 80)"""
    gamma: float = 0.99
    """discount factor gamma in G_t = sum_k gamma^k r_(t+k) (the common default: Spinning Up, SB3)"""
    ent_coef: float = 0.0
    """weight of the entropy bonus in the policy loss (0: plain REINFORCE)"""
    max_grad_norm: float = 1.0
    """global gradient-norm clip for the policy (Pascanu et al. 2013)"""
    anneal_lr: bool = True
    """decay both learning rates linearly to 0 over the budget, so the final policy settles"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and value MLPs, tanh (Spinning Up's default sizes)"""
    log_std_init: float = 0.0
    """log sigma of the Gaussian policy at the start, every action dimension (Box actions only; 0: sigma = 1;
    rl-zoo's log_std_init)"""

    def validate(self) -> None:
        check_choice("estimator", self.estimator, ESTIMATORS)


# tune.py's search space (Optuna): field -> ("log", low, high) | ("float", low, high) |
# ("int", low, high) | ("choice", [values]). Ranges follow rl-zoo's hyperparams_opt.py
# samplers, narrowed to what CartPole-sized problems use; every value is checked by the CLI.
SEARCH_SPACE = {
    "learning_rate": ("log", 1e-4, 1e-1),
    "value_learning_rate": ("log", 1e-4, 1e-1),
    "episodes_per_update": ("choice", [1, 2, 4, 8, 16, 32]),
    "gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "ent_coef": ("log", 1e-8, 0.1),
    "max_grad_norm": ("choice", [0.3, 0.5, 1.0, 2.0, 5.0]),
}


def build_actor(obs_dim: int, n_actions: int | None, cfg: PolicyGradientConfig, action_dim: int | None = None) -> Actor:
    """pi_theta(a|s): an MLP from observations to the action logits (Discrete: ``n_actions``) or to the
    mean of a diagonal Gaussian with a learnable log sigma (Box: ``action_dim``); head gain 0.01: a
    near-uniform, or near-zero-mean, start."""
    return Actor(mlp([obs_dim, *cfg.hidden_sizes, action_dim or n_actions], output_gain=0.01),
                 action_dim=action_dim, log_std_init=cfg.log_std_init)


def build_critic(obs_dim: int, cfg: PolicyGradientConfig) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


def episode_weights(episodes, estimator: str, gamma: float, critic=None) -> tuple[np.ndarray, np.ndarray]:
    """Psi_t for every step of a batch of episodes, and the returns-to-go G_t.

    With a critic, an episode cut by the time limit (truncated, not
    terminated) bootstraps its returns with V(final observation); the
    estimators without a critic have nothing to bootstrap with and treat the
    cut as the end of the episode, as the textbook algorithm does.
    """
    returns_to_go, weights = [], []
    for ep in episodes:
        bootstrap = 0.0
        if critic is not None and ep["truncated"]:
            with torch.no_grad():
                bootstrap = float(critic(torch.as_tensor(ep["final_obs"])).squeeze())
        g = reward_to_go(ep["rewards"], gamma, bootstrap)
        returns_to_go.append(g)
        if estimator == "total_return":
            weights.append(np.full(len(g), discounted_return(ep["rewards"], gamma)))
        else:
            weights.append(g)
    returns_to_go = np.concatenate(returns_to_go)
    weights = np.concatenate(weights)
    if estimator in ("baseline", "advantage"):
        obs = torch.as_tensor(np.concatenate([ep["obs"] for ep in episodes]))
        with torch.no_grad():
            values = critic(obs).squeeze(-1).numpy().astype(np.float64)
        weights = returns_to_go - values  # the baseline enters as a number: no gradient flows into V
        if estimator == "advantage":
            weights = normalize(weights)
    return weights, returns_to_go


def policy_loss_fn(logp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-mean_t[ log pi(a_t|s_t) * Psi_t ]; ``weights`` must not require grad: Psi_t is a fixed number."""
    return -(logp * weights).mean()


def train(cfg: PolicyGradientConfig, run, actor=None, critic=None) -> Actor:
    """REINFORCE; ``actor``/``critic`` default to fresh ``build_actor``/``build_critic`` networks
    (variance_study.py passes its own, to look at the baseline as training goes)."""
    actor = build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim) if actor is None else actor
    critic = build_critic(run.obs_dim, cfg) if critic is None else critic
    uses_critic = cfg.estimator in ("baseline", "advantage")
    policy_optimizer = torch.optim.Adam(actor.parameters(), lr=cfg.learning_rate)
    value_optimizer = torch.optim.Adam(critic.parameters(), lr=cfg.value_learning_rate)
    envs = run.make_envs(cfg.episodes_per_update)

    sample = actor.sampler()  # numpy in and out; the optimizers update the parameters in place

    global_step = 0
    while global_step < cfg.total_steps:
        frac = 1.0 - global_step / cfg.total_steps if cfg.anneal_lr else 1.0
        lr, value_lr = cfg.learning_rate * frac, cfg.value_learning_rate * frac
        policy_optimizer.param_groups[0]["lr"] = lr
        value_optimizer.param_groups[0]["lr"] = value_lr

        # 1. Sample N complete episodes with the current stochastic policy.
        episodes = run_episodes(envs, sample)
        for ep in episodes:
            global_step += len(ep["rewards"])
            run.log_episode(global_step, ep["return"], len(ep["rewards"]))  # the env's own, unscaled

        # 2. Psi_t for every step (returns-to-go, minus the baseline, normalized...).
        weights, returns_to_go = episode_weights(
            episodes, cfg.estimator, cfg.gamma, critic if uses_critic else None)
        obs = torch.as_tensor(np.concatenate([ep["obs"] for ep in episodes]))
        actions = torch.as_tensor(np.concatenate([ep["actions"] for ep in episodes]))

        # 3. One gradient step on the policy: ascend sum_t log pi(a_t|s_t) Psi_t.
        dist = actor.dist(obs)
        logp = dist.log_prob(actions)
        entropy = dist.entropy().mean()
        policy_loss = policy_loss_fn(logp, torch.as_tensor(weights, dtype=torch.float32))
        loss = policy_loss - cfg.ent_coef * entropy
        policy_optimizer.zero_grad()
        loss.backward()
        norm = clip_grad_norm(actor.parameters(), max_norm=cfg.max_grad_norm)
        policy_optimizer.step()

        with torch.no_grad():
            # how far this step moved the policy, on the batch's own actions
            log_ratio = actor.dist(obs).log_prob(actions) - logp
            # a probability of the greedy action exists for discrete actions only (Box: empty)
            greedy_prob = (float(dist.log_probs_all.exp().max(dim=-1).values.mean())
                           if isinstance(dist, Categorical) else None)

        # 4. Fit the baseline V(s) to the returns-to-go (its own network and optimizer).
        value_loss = explained_var = None
        if uses_critic:
            targets = torch.as_tensor(returns_to_go, dtype=torch.float32)
            with torch.no_grad():  # the baseline the weights were computed with, before this fit
                explained_var = explained_variance(critic(obs).squeeze(-1), targets)
            value_losses = []
            for _ in range(cfg.value_iterations):
                value_loss = 0.5 * (critic(obs).squeeze(-1) - targets).square().mean()
                value_optimizer.zero_grad()
                value_loss.backward()
                value_optimizer.step()
                value_losses.append(value_loss.detach())
            value_loss = torch.stack(value_losses).mean()

        run.log_update(
            global_step, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
            approx_kl=approx_kl(log_ratio), grad_norm=norm, learning_rate=lr,
            explained_variance=explained_var, value_learning_rate=value_lr if uses_critic else None,
            greedy_action_prob=greedy_prob,
            batch_mean_return=float(np.mean([ep["return"] for ep in episodes])),
        )
        if run.update_boundary(global_step, actor):
            break
    for env in envs:
        env.close()
    return actor
