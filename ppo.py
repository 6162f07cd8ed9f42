"""PPO: proximal policy optimization with a clipped surrogate objective (Schulman et al. 2017).

Each update collects a fixed-length rollout of T = num_steps steps in each of
N = num_envs vector envs, computes GAE(gamma, lambda) advantages A_t
(Schulman et al. 2016) and critic targets R_t = A_t + V(s_t), then runs K =
update_epochs passes of shuffled minibatches over the rollout, each minimizing

    L = -E_t[ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ]      (paper eq. 7)
        + c1 * E_t[ (V(s_t) - R_t)^2 ] / 2 - c2 * E_t[ H(pi(.|s_t)) ]  (eq. 9)

with the probability ratio r_t = pi_theta(a_t|s_t) / pi_theta_old(a_t|s_t),
eps = clip_coef, c1 = vf_coef, c2 = ent_coef. Actor and critic are separate
MLPs updated by one Adam optimizer; the gradient of L is clipped to a global
norm. Implementation details follow Huang et al. 2022, "The 37 implementation
details of PPO" (CleanRL), which the flag names follow too.

Rollout steps that are autoreset steps of the vector env (``valid`` False,
see rlsuite.envs.AutoresetTracker) are not transitions: they are dropped
before the update, so they enter no loss, no advantage statistics and no
step count.

Other discrete-action envs run unchanged. Acrobot-v1 (threshold -100), measured
seed 1 from these defaults (not its presets.toml entry, hence --presets none):
solved at 10k steps, final eval -85.2 +- 21.5, 17 s:

    python ppo_benchmark.py --env Acrobot-v1 --presets none --total-steps 200000 --num-envs 8 \
        --num-steps 64 --minibatch-size 128 --update-epochs 4 --learning-rate 1e-3 --gae-lambda 0.94

(lambda 0.94 and 4 epochs as rl-zoo's Acrobot-v1 PPO; rollout and rate sized for a 200k budget.)

Why the update loop looks the way it does: a CartPole minibatch has a few
hundred rows, so every torch op costs microseconds of dispatch and autograd
overhead next to its arithmetic; measured here (bench/profile_ppo.py), the
64-wide matmuls and tanh are ~45% of the update and per-op overhead the rest.
The loop therefore keeps per-minibatch work to the loss, its backward,
clipping and the Adam step; the diagnostics (approx KL, clip fraction,
explained variance) are computed once per update from saved per-sample
values, Adam is the fused kernel, and the rollout's old log-probs and
values come from one batched call each.
bench/profile_ppo.py shows where the time goes; bench/ppo_vs_sb3.py compares
with Stable-Baselines3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlsuite.distributions import Actor, SDEConfig
from rlsuite.envs import NormalizationConfig
from rlsuite.evaluation import load_policy  # noqa: F401  (the protocol's loader, written once)
from rlsuite.nets import clip_grad_norm, mlp
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.returns import normalize
from rlsuite.rollout import Rollout

UPDATE_COLUMNS = ["clip_fraction", "epochs_done"]


@dataclass
class PPOConfig(SDEConfig, NormalizationConfig):
    total_steps: int = 50_000
    """training budget in environment steps, all envs together (chosen here for CartPole-v1)"""
    num_envs: int = 4
    """N, parallel environments in the rollout (CleanRL's default; N, T, minibatch, K and the learning
    rate tuned together for CartPole-v1 with bench/seed_sweep.py)"""
    num_steps: int = 64
    """T, steps per env per rollout (rollout size N*T; CleanRL: 128)"""
    minibatch_size: int = 64
    """transitions per minibatch; each epoch splits the shuffled valid steps into ceil(count/size)
    near-equal parts"""
    update_epochs: int = 10
    """K, passes over the rollout per update (10 as in the paper's MuJoCo runs; CleanRL: 4)"""
    gamma: float = 0.99
    """discount factor gamma (paper and CleanRL)"""
    gae_lambda: float = 0.95
    """lambda of GAE(gamma, lambda) (Schulman et al. 2016; 0.95 as in the PPO paper and CleanRL)"""
    learning_rate: float = 2.5e-3
    """Adam step size alpha (CleanRL: 2.5e-4; 10x that suits CartPole's small nets); Adam eps is 1e-5"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over the budget (CleanRL's --anneal-lr)"""
    clip_coef: float = 0.2
    """epsilon of the clipped surrogate, eq. 7 of Schulman et al. 2017 (the paper's 0.2)"""
    clip_vloss: bool = False
    """clip the value update around the rollout's values with the same epsilon (off: Andrychowicz et al.
    2021 found it does not help)"""
    ent_coef: float = 0.0
    """c2, weight of the entropy bonus (eq. 9; 0 as rl-zoo's CartPole-v1 setting, CleanRL: 0.01)"""
    vf_coef: float = 0.5
    """c1, weight of the value loss (eq. 9; CleanRL and SB3 default)"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip over actor and critic parameters together (CleanRL and SB3 default)"""
    target_kl: float | None = None
    """stop the update's remaining epochs when an epoch's k3 KL estimate, from the ratios its minibatch
    steps started from, exceeds this; none: always K epochs"""
    norm_adv: bool = True
    """standardize advantages over the rollout's valid steps before the epochs"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic MLP (tanh)"""
    log_std_init: float = 0.0
    """log sigma of the Gaussian policy at the start, every action dimension (Box actions only; 0: sigma = 1;
    rl-zoo's log_std_init)"""

    def validate(self) -> None:
        if self.minibatch_size > self.num_envs * self.num_steps:
            raise ValueError(f"argument --minibatch-size: must be <= num_envs * num_steps = "
                             f"{self.num_envs * self.num_steps}, got {self.minibatch_size}")


# tune.py's search space (Optuna): field -> ("log", low, high) | ("float", low, high) |
# ("int", low, high) | ("choice", [values]). Ranges follow rl-zoo's sample_ppo_params, narrowed
# to what CartPole-sized problems use; minibatch_size stays <= num_envs * num_steps (validate()).
SEARCH_SPACE = {
    "learning_rate": ("log", 1e-5, 1e-2),
    "num_steps": ("choice", [32, 64, 128, 256]),
    "minibatch_size": ("choice", [32, 64, 128]),
    "update_epochs": ("choice", [1, 5, 10, 20]),
    "gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("choice", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
    "clip_coef": ("choice", [0.1, 0.2, 0.3, 0.4]),
    "ent_coef": ("log", 1e-8, 0.1),
    "max_grad_norm": ("choice", [0.3, 0.5, 0.7, 1.0, 2.0, 5.0]),
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


def clipped_surrogate_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                           clip_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)] (eq. 7); returns (loss, log ratio)."""
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -torch.min(unclipped, clipped).mean(), log_ratio


def value_loss_fn(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor,
                  clip_coef: float | None) -> torch.Tensor:
    """E[(V - R)^2] / 2; with ``clip_coef``, the max with the update clipped around the old values."""
    if clip_coef is None:
        return 0.5 * (values - returns).square().mean()
    clipped = old_values + (values - old_values).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max((values - returns).square(), (clipped - returns).square()).mean()


def train(cfg: PPOConfig, run) -> Actor:
    actor = build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim)
    critic = build_critic(run.obs_dim, cfg)
    actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
    params = actor_params + critic_params
    # eps 1e-5 instead of PyTorch's 1e-8: the OpenAI baselines value (Huang et al. 2022,
    # detail 3). fused: one kernel per step; measured here 0.14 ms per Adam step against
    # 0.38 ms (foreach) and 0.49 ms (for-loop), the largest single cost of the update.
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5, fused=True)
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
        with torch.no_grad():
            # pi_theta_old(a|s): the parameters have not changed since the rollout sampled
            # these actions, so one batched call gives the same log-probs as T small ones.
            old_dist = actor.dist(batch.obs)
            old_logp = old_dist.log_prob(batch.actions)
            entropy = old_dist.entropy().mean()

        # 3. K epochs over shuffled minibatches that together cover the rollout. All
        #    epochs' permutations are drawn and gathered at once; minibatches are views.
        n = len(batch)
        n_mb = math.ceil(n / cfg.minibatch_size)
        perm = torch.rand(cfg.update_epochs, n).argsort(dim=1)
        e_obs, e_actions, e_adv, e_ret, e_val, e_old_logp = (
            x[perm] for x in (batch.obs, batch.actions, advantages, batch.returns, batch.values, old_logp))
        vclip = cfg.clip_coef if cfg.clip_vloss else None
        stats, log_ratios = [], []
        epochs_done = 0
        for epoch in range(cfg.update_epochs):
            for mb in zip(*(x[epoch].tensor_split(n_mb) for x in
                            (e_obs, e_actions, e_adv, e_ret, e_val, e_old_logp))):
                mb_obs, mb_actions, mb_adv, mb_ret, mb_val, mb_old_logp = mb
                dist = actor.dist(mb_obs)
                policy_loss, log_ratio = clipped_surrogate_loss(
                    dist.log_prob(mb_actions), mb_old_logp, mb_adv, cfg.clip_coef)
                value_loss = value_loss_fn(critic(mb_obs).squeeze(-1), mb_ret, mb_val, vclip)
                loss = policy_loss + cfg.vf_coef * value_loss
                if cfg.ent_coef > 0:  # with c2 = 0 the bonus costs ~8 autograd ops for nothing
                    loss = loss - cfg.ent_coef * dist.entropy().mean()

                optimizer.zero_grad()
                loss.backward()
                norm = clip_grad_norm(actor_params, critic_params, max_norm=cfg.max_grad_norm)
                optimizer.step()
                stats.append(torch.stack([policy_loss, value_loss, norm]).detach())
                log_ratios.append(log_ratio.detach())
            epochs_done += 1
            # target_kl: the epoch's k3 estimate, from the ratios each minibatch step started from
            if cfg.target_kl is not None and float(approx_kl(torch.cat(log_ratios[-n_mb:]))) > cfg.target_kl:
                break

        # 4. Diagnostics, once per update (docs/README.md, glossary).
        ratios = torch.cat(log_ratios).exp()
        clip_fraction = ((ratios - 1).abs() > cfg.clip_coef).float().mean()
        with torch.no_grad():
            log_ratio = actor.dist(batch.obs).log_prob(batch.actions) - old_logp
        policy_loss, value_loss, norm = torch.stack(stats).mean(dim=0).tolist()
        run.log_update(
            global_step, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
            approx_kl=approx_kl(log_ratio), grad_norm=norm, learning_rate=lr,
            explained_variance=explained_variance(batch.values, batch.returns),
            clip_fraction=clip_fraction, epochs_done=epochs_done)
        if run.update_boundary(global_step, actor):
            break
    envs.close()
    return actor
