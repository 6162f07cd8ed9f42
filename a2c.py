"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, the synchronous variant of A3C).

Each update collects a fixed-length rollout of T = num_steps steps in each of
N = num_envs vector envs, computes GAE(gamma, lambda) advantages A_t
(Schulman et al. 2016; lambda = 1 gives the n-step advantages of Mnih et
al. 2016) and critic targets R_t = A_t + V(s_t), and takes ONE gradient step on

    L = -E_t[ log pi_theta(a_t|s_t) A_t ] + c1 * E_t[ (V(s_t) - R_t)^2 ] / 2 - c2 * E_t[ H(pi(.|s_t)) ]

with c1 = vf_coef, c2 = ent_coef. That single on-policy step per rollout is
the difference from PPO (ppo.py), which reuses a rollout for K epochs of
minibatch steps behind a clipped ratio; ``diff a2c.py ppo.py`` shows the rest
is the same.

Optimizer: Adam (eps 1e-5) by default, like ppo.py. Andrychowicz et al. 2021
("What matters in on-policy RL", sec. 3.5) found Adam the better default for
on-policy actor-critics, and one optimizer for both files keeps the comparison
about the loss. ``--optimizer rmsprop`` gives the RMSprop of the A3C paper and
of Stable-Baselines3's A2C; the MuJoCo presets, copied from rl-zoo, use it.

Other discrete-action envs run unchanged. Acrobot-v1 (threshold -100) with these
defaults (not its presets.toml entry, hence --presets none), measured seed 1: solved
at 5k steps, final eval -88.7 +- 33.9, 16 s:

    python a2c_benchmark.py --env Acrobot-v1 --presets none --total-steps 200000

Autoreset steps of the vector env (``valid`` False) are not transitions: they
enter no loss, no advantage statistics and no step count.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rlsuite.cli import check_choice
from rlsuite.distributions import Actor, SDEConfig
from rlsuite.envs import NormalizationConfig
from rlsuite.evaluation import load_policy  # noqa: F401  (the protocol's loader, written once)
from rlsuite.nets import clip_grad_norm, mlp
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.returns import normalize
from rlsuite.rollout import Rollout

UPDATE_COLUMNS: list[str] = []


@dataclass
class A2CConfig(SDEConfig, NormalizationConfig):
    total_steps: int = 200_000
    """training budget in environment steps, all envs together"""
    num_envs: int = 8
    """N, parallel environments in the rollout"""
    num_steps: int = 5
    """T, steps per env per rollout: the n of the n-step return (Mnih et al. 2016: 5)"""
    gamma: float = 0.99
    """discount factor gamma"""
    gae_lambda: float = 0.95
    """lambda of GAE(gamma, lambda); 1.0 gives the plain n-step advantage"""
    learning_rate: float = 1e-3
    """step size alpha of the optimizer"""
    optimizer: str = "adam"
    """adam (eps 1e-5) | rmsprop (decay 0.99, eps 1e-5, no momentum: the optimizer of Mnih et al.
    2016 and of Stable-Baselines3's A2C, which rl-zoo's MuJoCo figures were trained with)"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over the budget, so the final policy settles"""
    ent_coef: float = 0.0
    """c2, weight of the entropy bonus"""
    vf_coef: float = 0.5
    """c1, weight of the value loss"""
    max_grad_norm: float = 5.0
    """global gradient-norm clip over actor and critic parameters together (chosen here by seed sweeps
    on CartPole-v1; PPO's is 0.5; docs/04_a2c.md)"""
    norm_adv: bool = False
    """standardize advantages over the rollout's valid steps (off: Stable-Baselines3's A2C default)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic MLP (tanh)"""
    log_std_init: float = 0.0
    """log sigma of the Gaussian policy at the start, every action dimension (Box actions only; 0: sigma = 1;
    rl-zoo's log_std_init)"""

    def validate(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)


OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(params: list, cfg: A2CConfig) -> torch.optim.Optimizer:
    """Adam, or RMSprop as A2C was published with: theta -= alpha g / (sqrt(E[g^2]) + eps), with
    E[g^2] a running average of decay 0.99 and no momentum term."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.learning_rate, alpha=0.99, eps=1e-5, foreach=True)
    return torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5, fused=True)


# tune.py's search space (Optuna): field -> ("log", low, high) | ("float", low, high) |
# ("int", low, high) | ("choice", [values]). Ranges follow rl-zoo's sample_a2c_params,
# narrowed to what CartPole-sized problems use; every value is checked by the CLI.
SEARCH_SPACE = {
    "learning_rate": ("log", 1e-5, 1e-1),
    "num_steps": ("choice", [5, 8, 16, 32, 64]),
    "gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("choice", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
    "ent_coef": ("log", 1e-8, 0.1),
    "vf_coef": ("float", 0.1, 1.0),
    "max_grad_norm": ("choice", [0.3, 0.5, 0.7, 1.0, 2.0, 5.0]),
    "norm_adv": ("choice", [False, True]),
}


def build_actor(obs_dim: int, n_actions: int | None, cfg, action_dim: int | None = None) -> Actor:
    """pi_theta(a|s): an MLP from observations to the action logits (Discrete: ``n_actions``) or to the
    mean of a diagonal Gaussian with a learnable log sigma (Box: ``action_dim``); head gain 0.01: a
    near-uniform, or near-zero-mean, start."""
    return Actor(mlp([obs_dim, *cfg.hidden_sizes, action_dim or n_actions], output_gain=0.01),
                 action_dim=action_dim, log_std_init=cfg.log_std_init,
                 use_sde=cfg.use_sde, sde_sample_freq=cfg.sde_sample_freq)


def build_critic(obs_dim: int, cfg) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters (head gain 1)."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


def policy_loss_fn(logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """-E[log pi(a|s) A]: the policy-gradient loss; ``advantages`` carry no gradient."""
    return -(logp * advantages).mean()


def train(cfg: A2CConfig, run) -> Actor:
    actor = build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim)
    critic = build_critic(run.obs_dim, cfg)
    actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
    params = actor_params + critic_params
    optimizer = make_optimizer(params, cfg)
    envs = run.make_vec_env(cfg.num_envs)
    rollout = Rollout(envs, cfg.num_steps, cfg.num_envs, run.obs_dim, run.seed)

    global_step = 0
    while global_step < cfg.total_steps:
        lr = cfg.learning_rate * (1.0 - global_step / cfg.total_steps if cfg.anneal_lr else 1.0)
        optimizer.param_groups[0]["lr"] = lr

        # 1. Roll out T steps in each of the N envs with pi_theta_old.
        global_step = rollout.collect(actor, run, global_step)

        # 2. GAE advantages and critic targets R_t = A_t + V(s_t) on the valid steps.
        batch = rollout.batch(critic, cfg.gamma, cfg.gae_lambda)
        if batch is None:
            continue
        advantages = normalize(batch.advantages) if cfg.norm_adv else batch.advantages

        # 3. One gradient step on the whole rollout.
        dist = actor.dist(batch.obs)
        logp = dist.log_prob(batch.actions)
        entropy = dist.entropy().mean()
        policy_loss = policy_loss_fn(logp, advantages)
        value_loss = 0.5 * (critic(batch.obs).squeeze(-1) - batch.returns).square().mean()
        loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
        optimizer.zero_grad()
        loss.backward()
        norm = clip_grad_norm(actor_params, critic_params, max_norm=cfg.max_grad_norm)
        optimizer.step()

        with torch.no_grad():
            log_ratio = actor.dist(batch.obs).log_prob(batch.actions) - logp.detach()
        run.log_update(
            global_step, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
            approx_kl=approx_kl(log_ratio), grad_norm=norm, learning_rate=lr,
            explained_variance=explained_variance(batch.values, batch.returns))
        if run.update_boundary(global_step, actor):
            break
    envs.close()
    return actor
