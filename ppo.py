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
seed 1: solved at 10k steps, final eval -85.2 +- 21.5, 17 s:

    python ppo_benchmark.py --env Acrobot-v1 --total-steps 200000 --num-envs 8 --num-steps 64 \
        --minibatch-size 128 --update-epochs 4 --learning-rate 1e-3 --gae-lambda 0.94

(lambda 0.94 and 4 epochs as rl-zoo's Acrobot-v1 PPO; rollout and rate sized for a 200k budget.)

Why the update loop looks the way it does: a CartPole minibatch has a few
hundred rows, so every torch op costs microseconds of dispatch and autograd
overhead next to its arithmetic; measured here (bench/profile_ppo.py), the
64-wide matmuls and tanh are ~45% of the update and per-op overhead the rest.
The loop therefore keeps per-minibatch work to the loss, its backward,
clipping and the Adam step; the diagnostics (approx KL, clip fraction,
explained variance) are computed once per update from saved per-sample
values (``minibatch_diagnostics``), Adam is the fused kernel, and the
rollout's old log-probs and values come from one batched call each.
bench/profile_ppo.py shows where the time goes; bench/ppo_vs_sb3.py compares
with Stable-Baselines3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rlsuite.evaluation import greedy_policy, load_actor
from rlsuite.nets import mlp
from rlsuite.policy import approx_kl, entropy, log_prob
from rlsuite.returns import gae
from rlsuite.rollout import Rollout

UPDATE_COLUMNS = ["clip_fraction", "explained_variance", "epochs_done"]


@dataclass
class PPOConfig:
    total_steps: int = 50_000
    """training budget in environment steps, all envs together (CartPole-v1 seeds 1-10 solve by 10k and hold 500)"""
    num_envs: int = 4
    """N, parallel environments in the rollout (CleanRL's default; N, T, minibatch, K and the learning rate were tuned
    together for CartPole-v1 with bench/seed_sweep.py)"""
    num_steps: int = 64
    """T, steps per env per rollout (rollout size N*T; CleanRL: 128)"""
    minibatch_size: int = 64
    """transitions per minibatch; each epoch splits the shuffled valid steps into ceil(count/size) near-equal parts"""
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
    """clip the value update around the rollout's values with the same epsilon (off: Andrychowicz et al. 2021 found it does not help)"""
    ent_coef: float = 0.0
    """c2, weight of the entropy bonus (eq. 9; 0 as rl-zoo's CartPole-v1 setting, CleanRL: 0.01)"""
    vf_coef: float = 0.5
    """c1, weight of the value loss (eq. 9; CleanRL and SB3 default)"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip over actor and critic parameters together (CleanRL and SB3 default)"""
    target_kl: float | None = None
    """stop the update's remaining epochs when an epoch's mean approx_kl (k3, averaged over its minibatches, measured before each step) exceeds this; none: always K epochs"""
    norm_adv: bool = True
    """standardize advantages over the rollout's valid steps before the epochs"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic MLP (tanh)"""

    def validate(self) -> None:
        if self.minibatch_size > self.num_envs * self.num_steps:
            raise ValueError(f"argument --minibatch-size: must be <= num_envs * num_steps = "
                             f"{self.num_envs * self.num_steps}, got {self.minibatch_size}")


def build_actor(obs_dim: int, n_actions: int, cfg) -> torch.nn.Module:
    """pi_theta(a|s): observations -> action logits (head gain 0.01: near-uniform start)."""
    return mlp([obs_dim, *cfg.hidden_sizes, n_actions], output_gain=0.01)


def build_critic(obs_dim: int, cfg) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters (head gain 1)."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


def load_policy(run_dir):
    """Greedy policy of a finished run: numpy obs (n, obs_dim) -> actions (n,)."""
    actor, _ = load_actor(run_dir, PPOConfig, build_actor)
    return greedy_policy(actor)


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


def minibatch_diagnostics(log_ratio: torch.Tensor, values: torch.Tensor, returns: torch.Tensor,
                          segment: torch.Tensor, n_segments: int, clip_coef: float):
    """Per-minibatch approx_kl, clip fraction and explained variance, averaged over minibatches.

    All inputs are flat over every sample of every minibatch; ``segment``
    says which minibatch each sample was in. approx_kl is the k3 estimator
    E[(r - 1) - log r] of KL(pi_old || pi) (Schulman 2020, "Approximating KL
    divergence"), unbiased and never negative. Explained variance is
    1 - Var[R - V] / Var[R] within each minibatch, averaged over the
    minibatches where Var[R] > 0 (nan if none: e.g. every return equal).
    Segment sums replace a loop over minibatches: a handful of ops per update.
    """
    counts = torch.zeros(n_segments).index_add_(0, segment, torch.ones_like(values))

    def seg_mean(x):
        return torch.zeros(n_segments, dtype=x.dtype).index_add_(0, segment, x) / counts

    def seg_var(x):  # two-pass: returns near 100 with tiny spread cancel badly in E[x^2] - E[x]^2
        return seg_mean((x - seg_mean(x)[segment]).square())

    ratio = log_ratio.exp()
    approx_kl = seg_mean((ratio - 1) - log_ratio).mean()
    clip_fraction = seg_mean(((ratio - 1).abs() > clip_coef).float()).mean()
    var_returns = seg_var(returns)
    explained = 1 - seg_var(returns - values) / var_returns
    explained_variance = explained[var_returns > 1e-8 * (1 + seg_mean(returns).square())].mean()
    return approx_kl, clip_fraction, explained_variance






def train(cfg: PPOConfig, run) -> torch.nn.Module:
    actor = build_actor(run.obs_dim, run.n_actions, cfg)
    critic = build_critic(run.obs_dim, cfg)
    params = [*actor.parameters(), *critic.parameters()]
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

        # 2. GAE advantages and critic targets R_t = A_t + V(s_t). V is evaluated on all
        #    T + 1 rows in one call; row t + 1 after a truncated step is V(final obs).
        with torch.inference_mode():
            values = critic(rollout.obs).squeeze(-1).numpy().astype(np.float64)
        advantages = gae(rollout.rewards, values, rollout.terminated, rollout.truncated,
                         rollout.valid, cfg.gamma, cfg.gae_lambda)
        returns = advantages + values[:-1]

        # 3. Keep the valid steps only: reset steps are not transitions.
        keep = rollout.valid_indices()
        if len(keep) == 0:  # possible only with tiny rollouts (N * T == 1)
            continue
        b_obs = rollout.obs[:-1].reshape(-1, run.obs_dim)[keep]
        b_actions = rollout.actions.reshape(-1)[keep]
        b_advantages, b_returns, b_values = (
            torch.as_tensor(x.reshape(-1)[keep.numpy()], dtype=torch.float32)
            for x in (advantages, returns, values[:-1]))
        if cfg.norm_adv and len(keep) > 1:
            b_advantages = (b_advantages - b_advantages.mean()) / (b_advantages.std() + 1e-8)
        with torch.no_grad():
            # pi_theta_old(a|s): the parameters have not changed since the rollout sampled
            # these actions, so one batched call gives the same log-probs as T small ones.
            b_old_logp, old_logp_all = log_prob(actor(b_obs), b_actions)
            rollout_entropy = entropy(old_logp_all)

        # 4. K epochs over shuffled minibatches that together cover the rollout. All
        #    epochs' permutations are drawn and gathered at once; minibatches are views.
        n = len(keep)
        n_mb = math.ceil(n / cfg.minibatch_size)
        perm = torch.rand(cfg.update_epochs, n).argsort(dim=1)
        e_obs, e_actions, e_adv, e_ret, e_val, e_old_logp = (
            x[perm] for x in (b_obs, b_actions, b_advantages, b_returns, b_values, b_old_logp))
        vclip = cfg.clip_coef if cfg.clip_vloss else None
        losses, log_ratios, new_values = [], [], []
        epochs_done = 0
        for epoch in range(cfg.update_epochs):
            for mb in zip(*(x[epoch].tensor_split(n_mb) for x in
                            (e_obs, e_actions, e_adv, e_ret, e_val, e_old_logp))):
                mb_obs, mb_actions, mb_adv, mb_ret, mb_val, mb_old_logp = mb
                logp, logp_all = log_prob(actor(mb_obs), mb_actions)
                pg_loss, log_ratio = clipped_surrogate_loss(logp, mb_old_logp, mb_adv, cfg.clip_coef)
                v = critic(mb_obs).squeeze(-1)
                v_loss = value_loss_fn(v, mb_ret, mb_val, vclip)
                loss = pg_loss + cfg.vf_coef * v_loss
                if cfg.ent_coef > 0:  # with c2 = 0 the bonus costs ~8 autograd ops for nothing
                    loss = loss - cfg.ent_coef * entropy(logp_all)

                optimizer.zero_grad()
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
                optimizer.step()
                losses.append(torch.stack([pg_loss, v_loss, norm]).detach())
                log_ratios.append(log_ratio.detach())
                new_values.append(v.detach())
            epochs_done += 1
            if cfg.target_kl is not None:
                epoch_kl = torch.stack([approx_kl(r) for r in log_ratios[-n_mb:]]).mean()
                if float(epoch_kl) > cfg.target_kl:
                    break

        # 5. Diagnostics, once per update (see minibatch_diagnostics).
        segment = torch.arange(epochs_done * n_mb).repeat_interleave(
            torch.tensor([len(r) for r in log_ratios]))
        mean_kl, clip_fraction, explained_var = minibatch_diagnostics(
            torch.cat(log_ratios), torch.cat(new_values), e_ret[:epochs_done].reshape(-1),
            segment, epochs_done * n_mb, cfg.clip_coef)
        pg_loss, v_loss, norm = torch.stack(losses).mean(dim=0).tolist()
        run.log_update(
            global_step, policy_loss=pg_loss, value_loss=v_loss, entropy=rollout_entropy,
            approx_kl=mean_kl, grad_norm=norm, learning_rate=lr, clip_fraction=clip_fraction,
            explained_variance=explained_var, epochs_done=epochs_done)
        if run.update_boundary(global_step, actor):
            break
    envs.close()
    return actor
