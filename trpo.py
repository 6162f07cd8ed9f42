"""TRPO: trust region policy optimization (Schulman et al. 2015) with GAE (Schulman et al. 2016).

Each iteration maximizes the surrogate advantage under a bound on the mean KL
divergence between the policy that collected the data and the new one:

    maximize_theta   L(theta) = E_t[ pi_theta(a_t|s_t) / pi_old(a_t|s_t) * A_t ]
    subject to       KL_bar(theta) = E_t[ KL(pi_old(.|s_t) || pi_theta(.|s_t)) ] <= max_kl   (delta)

Linearizing L (gradient g) and taking the KL to second order (Fisher matrix F,
the Hessian of KL_bar at theta_old) gives the natural-gradient step

    x = F^-1 g                        the step direction, solved approximately by conjugate
                                      gradient, which only needs products F v
    beta = sqrt(2 delta / x^T F x)    its scale, which puts the quadratic KL model on the bound
    theta_new = theta_old + beta x

followed by a backtracking line search (Schulman et al. 2015, appendix C):
the step is shrunk by ``backtrack_coef`` until the surrogate improves and the
exact KL is within the bound; if no fraction passes, the old parameters stay.
The critic V_phi is a separate network regressed on the GAE targets
(A_t + V(s_t)) with its own Adam optimizer, several epochs per batch.
Read docs/07_trpo.md alongside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlsuite.distributions import Actor, SDEConfig
from rlsuite.envs import NormalizationConfig
from rlsuite.evaluation import load_policy  # noqa: F401  (the protocol's loader, written once)
from rlsuite.nets import flat_params, grad_norm, mlp, set_flat_params
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.returns import normalize
from rlsuite.rollout import Rollout

UPDATE_COLUMNS = ["value_learning_rate", "line_search_steps", "step_accepted", "kl_after",
                  "surrogate_improvement", "max_kl"]


@dataclass
class TRPOConfig(SDEConfig, NormalizationConfig):
    total_steps: int = 100_000
    """training budget in environment steps (rl-zoo's CartPole-v1 budget for TRPO)"""
    num_envs: int = 2
    """N, parallel environments in the rollout (rl-zoo CartPole-v1: 2)"""
    num_steps: int = 512
    """T, steps per environment per iteration; a batch holds N*T steps (rl-zoo CartPole-v1: 512)"""
    gamma: float = 0.995
    """discount factor gamma: 0.995, a horizon of about 200 steps (rl-zoo CartPole-v1: 0.99; why here:
    docs/07_trpo.md)"""
    gae_lambda: float = 0.98
    """lambda of GAE(gamma, lambda), Schulman et al. 2016 (rl-zoo CartPole-v1: 0.98)"""
    max_kl: float = 0.01
    """delta, the trust-region bound on the mean KL(pi_old || pi_new) (sb3-contrib's target_kl default,
    kept by rl-zoo's CartPole-v1 setting: 0.01)"""
    damping: float = 1e-3
    """lambda_d, added to the Fisher matrix so that CG solves the well-posed (F + lambda_d I) x = g
    (rl-zoo CartPole-v1 cg_damping: 1e-3)"""
    cg_iters: int = 15
    """conjugate-gradient iterations per update (sb3-contrib cg_max_steps: 15; Schulman et al. 2015 use 10)"""
    backtrack_iters: int = 10
    """maximum line-search shrinks before the step is rejected (sb3-contrib line_search_max_iter: 10)"""
    backtrack_coef: float = 0.8
    """factor the step shrinks by at each line-search iteration (sb3-contrib
    line_search_shrinking_factor: 0.8)"""
    value_learning_rate: float = 1e-3
    """Adam step size of the critic V_phi (rl-zoo CartPole-v1 learning_rate: 1e-3)"""
    value_epochs: int = 20
    """passes of critic regression over each batch (rl-zoo CartPole-v1 n_critic_updates: 20)"""
    value_minibatch_size: int = 512
    """critic minibatch size (rl-zoo CartPole-v1 batch_size: 512)"""
    anneal_max_kl: bool = True
    """shrink delta linearly to 0 over the budget, so the final policy settles (docs/07_trpo.md)"""
    norm_adv: bool = True
    """standardize A_t over the batch before the policy step (sb3-contrib default)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and value MLPs (tanh; SB3's MlpPolicy default)"""
    log_std_init: float = 0.0
    """log sigma of the Gaussian policy at the start, every action dimension (Box actions only; 0: sigma = 1;
    rl-zoo's log_std_init)"""


# tune.py's search space (Optuna): field -> ("log", low, high) | ("float", low, high) |
# ("int", low, high) | ("choice", [values]). Ranges follow rl-zoo's sample_trpo_params
# (target_kl there is max_kl here); every value is checked by the CLI.
SEARCH_SPACE = {
    "max_kl": ("log", 1e-3, 0.1),
    "num_steps": ("choice", [128, 256, 512, 1024]),
    "gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("choice", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
    "value_learning_rate": ("log", 1e-4, 1e-2),
    "value_epochs": ("choice", [5, 10, 20]),
}


def build_actor(obs_dim: int, n_actions: int | None, cfg: TRPOConfig, action_dim: int | None = None) -> Actor:
    """pi_theta(a|s): an MLP from observations to the action logits (Discrete: ``n_actions``) or to the
    mean of a diagonal Gaussian with a learnable log sigma (Box: ``action_dim``); head gain 0.01: a
    near-uniform, or near-zero-mean, start."""
    return Actor(mlp([obs_dim, *cfg.hidden_sizes, action_dim or n_actions], output_gain=0.01),
                 action_dim=action_dim, log_std_init=cfg.log_std_init,
                 use_sde=cfg.use_sde, sde_sample_freq=cfg.sde_sample_freq)


def build_critic(obs_dim: int, cfg: TRPOConfig) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


# -- the natural-gradient step: small pure functions ---------------------------

def conjugate_gradient(matvec, b: torch.Tensor, iters: int, residual_tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve A x = b for symmetric positive-definite A, given only v -> A v.

    Hestenes and Stiefel 1952; Nocedal and Wright, "Numerical Optimization",
    algorithm 5.2. Starts at x = 0, so the first direction is b itself; exact
    after dim(b) iterations in exact arithmetic.
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x
    p = b.clone()  # search direction
    r_dot_r = torch.dot(r, r)
    for _ in range(iters):
        if r_dot_r < residual_tol:
            break
        a_p = matvec(p)
        alpha = r_dot_r / torch.dot(p, a_p)
        x += alpha * p
        r -= alpha * a_p
        new_r_dot_r = torch.dot(r, r)
        p = r + (new_r_dot_r / r_dot_r) * p
        r_dot_r = new_r_dot_r
    return x


def mean_kl(actor: Actor, obs: torch.Tensor, old_dist) -> torch.Tensor:
    """KL_bar = mean_s KL(pi_old(.|s) || pi_theta(.|s)); ``old_dist`` carries no gradient."""
    return old_dist.kl(actor.dist(obs)).mean()


def fisher_vector_product(actor: Actor, obs: torch.Tensor, damping: float):
    """The map v -> (F + damping I) v, without forming F.

    F is the Hessian of KL_bar(theta) at theta = theta_old; for a categorical
    policy it equals the Fisher information matrix E_s[J^T (diag(p) - p p^T) J]
    (J: Jacobian of the logits). Pearlmutter's trick gives F v as
    grad_theta[(grad_theta KL_bar) . v]. The old policy is the current one,
    detached, so KL_bar and its gradient are 0 here and only curvature remains.
    grad_theta KL_bar is computed once, with its graph kept, and every product
    (one per conjugate-gradient iteration) differentiates it again, as
    sb3-contrib's TRPO does.
    """
    params = list(actor.parameters())
    kl = mean_kl(actor, obs, actor.dist(obs).detach())
    grad_kl = torch.cat([g.reshape(-1) for g in torch.autograd.grad(kl, params, create_graph=True)])

    def product(v: torch.Tensor) -> torch.Tensor:
        hvp = torch.autograd.grad(torch.dot(grad_kl, v), params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hvp]) + damping * v

    return product


def surrogate(actor: Actor, obs: torch.Tensor, actions: torch.Tensor, old_logp: torch.Tensor,
              advantages: torch.Tensor) -> torch.Tensor:
    """L(theta) = mean_t[ exp(log pi_theta(a_t|s_t) - log pi_old(a_t|s_t)) * A_t ]."""
    ratio = torch.exp(actor.dist(obs).log_prob(actions) - old_logp)
    return (ratio * advantages).mean()


def line_search(actor: torch.nn.Module, full_step: torch.Tensor, evaluate, max_kl: float,
                backtrack_iters: int, backtrack_coef: float):
    """Backtracking line search along ``full_step`` from the actor's current parameters.

    ``evaluate()`` returns (surrogate, kl) of the actor's current parameters
    against the old policy. A fraction backtrack_coef**k of the step is
    accepted at the first k where the surrogate improves on the old one and
    the KL is within max_kl (Schulman et al. 2015, appendix C; sb3-contrib's
    TRPO accepts on the same two conditions). If none is accepted, the old
    parameters are restored. Returns (accepted, shrinks tried, improvement, kl).
    """
    old_params = flat_params(actor)
    with torch.no_grad():
        old_surrogate, _ = evaluate()
        fraction = 1.0
        for k in range(backtrack_iters):
            set_flat_params(actor, old_params + fraction * full_step)
            new_surrogate, kl = evaluate()
            improvement = float(new_surrogate - old_surrogate)
            if kl <= max_kl and improvement > 0:
                return True, k + 1, improvement, float(kl)
            fraction *= backtrack_coef
        set_flat_params(actor, old_params)
    return False, backtrack_iters, 0.0, 0.0




def train(cfg: TRPOConfig, run) -> Actor:
    actor = build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim)
    critic = build_critic(run.obs_dim, cfg)
    value_optimizer = torch.optim.Adam(critic.parameters(), lr=cfg.value_learning_rate)
    envs = run.make_vec_env(cfg.num_envs)
    rollout = Rollout(envs, cfg.num_steps, cfg.num_envs, run.obs_dim, run.seed)
    # The critic's minibatches are drawn from this generator, seeded from the run's
    # seed, so the same seed gives the same run.
    shuffle_rng = np.random.default_rng(run.seed)

    global_step = 0
    while global_step < cfg.total_steps:
        max_kl = cfg.max_kl * (1.0 - global_step / cfg.total_steps if cfg.anneal_max_kl else 1.0)

        # 1. Roll out T steps in each of the N envs with pi_theta_old.
        global_step = rollout.collect(actor, run, global_step)

        # 2. GAE advantages and critic targets R_t = A_t + V(s_t) on the valid steps.
        batch = rollout.batch(critic, cfg.gamma, cfg.gae_lambda)
        if batch is None:
            continue
        advantages = normalize(batch.advantages) if cfg.norm_adv else batch.advantages
        with torch.no_grad():
            old_dist = actor.dist(batch.obs)
            old_logp = old_dist.log_prob(batch.actions)
            entropy = old_dist.entropy().mean()

        # 3. Policy gradient g of the surrogate at theta_old (where the ratio is 1).
        actor.zero_grad()
        policy_loss = -surrogate(actor, batch.obs, batch.actions, old_logp, advantages)
        (-policy_loss).backward()
        g = torch.cat([p.grad.reshape(-1) for p in actor.parameters()])
        norm = grad_norm(actor.parameters())

        # 4. Natural-gradient direction x ~ (F + damping I)^-1 g by conjugate gradient, and
        #    its scale beta, which puts the quadratic KL model exactly on the bound:
        #    0.5 * beta^2 x^T F x = delta  =>  beta = sqrt(2 delta / x^T F x). The product
        #    below includes the damping, so the code's x^T F x is x^T (F + damping I) x.
        fvp = fisher_vector_product(actor, batch.obs, cfg.damping)
        x = conjugate_gradient(fvp, g, cfg.cg_iters)
        x_F_x = torch.dot(x, fvp(x))
        full_step = torch.sqrt(2 * max_kl / x_F_x) * x if x_F_x > 0 else torch.zeros_like(g)

        # 5. Backtracking line search on the exact surrogate and KL.
        def evaluate():
            return (surrogate(actor, batch.obs, batch.actions, old_logp, advantages),
                    mean_kl(actor, batch.obs, old_dist))

        accepted, ls_steps, improvement, kl_after = line_search(
            actor, full_step, evaluate, max_kl, cfg.backtrack_iters, cfg.backtrack_coef)
        with torch.no_grad():
            log_ratio = actor.dist(batch.obs).log_prob(batch.actions) - old_logp

        # 6. Critic: value_epochs passes of minibatch regression on the GAE targets.
        value_losses = []
        for _ in range(cfg.value_epochs):
            order = shuffle_rng.permutation(len(batch))
            for start in range(0, len(batch), cfg.value_minibatch_size):
                idx = torch.as_tensor(order[start:start + cfg.value_minibatch_size])
                value_loss = 0.5 * (critic(batch.obs[idx]).squeeze(-1) - batch.returns[idx]).square().mean()
                value_optimizer.zero_grad()
                value_loss.backward()
                value_optimizer.step()
                value_losses.append(value_loss.detach())

        run.log_update(
            global_step, policy_loss=policy_loss, value_loss=torch.stack(value_losses).mean(),
            entropy=entropy, approx_kl=approx_kl(log_ratio), grad_norm=norm, learning_rate=None,
            explained_variance=explained_variance(batch.values, batch.returns),
            value_learning_rate=cfg.value_learning_rate, line_search_steps=ls_steps, step_accepted=accepted,
            kl_after=kl_after if accepted else None,
            surrogate_improvement=improvement if accepted else None, max_kl=max_kl)
        if run.update_boundary(global_step, actor):
            break
    envs.close()
    return actor
