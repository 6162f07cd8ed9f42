"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016, algorithm S3).

One global actor pi_theta and critic V_phi live in shared memory. N worker
processes each own an environment and a local copy of both networks, and loop:

    copy theta, phi from the global model
    act for up to t_max steps (or to the end of the episode)
    R = 0 if the episode terminated, else V(s_last)         (bootstrap; also on truncation)
    R_t = r_t + gamma * R_{t+1}, backwards over the segment   (n-step returns)
    A_t = R_t - V(s_t)        (with --gae-lambda below 1: GAE(gamma, lambda) over the segment,
                               and R_t = A_t + V(s_t), as in a2c.py)
    loss = -mean_t[log pi(a_t|s_t) A_t] + vf_coef * 0.5 mean_t[(R_t - V(s_t))^2]
           - ent_coef * mean_t[H(pi(.|s_t))]
    push the local gradients into the global model with a shared optimizer, no locks (Hogwild,
    Recht et al. 2011)

The main process never trains: it starts the workers, drains one queue of
their episodes and updates (the single writer of the CSVs), pauses the
workers for the periodic greedy evaluation, and stops them.

Observation normalization and reward scaling (``norm_obs``, ``norm_reward``):
each worker wraps its own env in Gymnasium's wrappers (``rlsuite.envs.normalize_env``),
so each keeps its own running statistics of what it has seen, as independent
actor-learners would; nothing is shared or averaged between workers. The policy
is evaluated, and saved (obs_rms.npz), with worker 0's observation statistics:
after each of its segments worker 0 copies its running mean and variance into
two shared-memory arrays, which the main process reads while the workers are
held at the pause gate (periodic evaluation) or stopped (final evaluation).
Worker 0 has seen about 1/N of the steps, so its statistics are a sample of
the same state distribution the others normalize with, not the pooled one.

Not bit-reproducible. Each worker is seeded (torch, env) from --seed and its
index, but the order in which workers read the global parameters, apply
their updates and claim steps from the shared counter is decided by the OS
scheduler: the same seed gives a different interleaving, hence different
parameters, episodes and global_step values, from run to run. This is A3C's
design (asynchrony instead of a replay buffer or a synchronous batch), not a
seeding bug; the synchronous variant, A2C, is reproducible.
Read docs/05_a3c.md alongside.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from queue import Empty

import gymnasium as gym
import numpy as np
import torch

from rlsuite.cli import check_choice
from rlsuite.distributions import Actor, SDEConfig
from rlsuite.envs import (Normalization, NormalizationConfig, ObsNormalization, env_action, find_wrapper, make_env,
                          normalize_env)
from rlsuite.evaluation import load_policy  # noqa: F401  (the protocol's loader, written once)
from rlsuite.nets import clip_grad_norm, mlp
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.returns import gae, reward_to_go

EPISODE_COLUMNS = ["worker"]
UPDATE_COLUMNS = ["worker", "segment_length"]

SHUTDOWN_GRACE_S = 3.0  # how long stopped workers get to exit before terminate()
# Signals the main process handles for the whole run; workers ignore the ones a terminal
# sends to the process group (Ctrl-C, hang-up) and are stopped through Shared.stop.
RUN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class A3CConfig(SDEConfig, NormalizationConfig):
    total_steps: int = 200_000
    """training budget in environment steps, all workers together (a shared counter enforces it)"""
    num_workers: int = os.cpu_count() or 1
    """N, asynchronous worker processes, each with its own env (default: the number of cores)"""
    num_steps: int = 128
    """t_max, steps per worker between updates, fewer at an episode end (Mnih et al. 2016: 5 on Atari
    with 16 threads; 128 chosen here by seed sweeps, docs/05_a3c.md)"""
    learning_rate: float = 7e-4
    """step size of the shared optimizer (OpenAI baselines' A2C: 7e-4)"""
    optimizer: str = "adam"
    """adam | rmsprop (decay 0.99, eps 1e-5, no momentum: the RMSProp of Mnih et al. 2016, whose
    statistics, like Adam's moments here, live in shared memory; a2c.py's --optimizer rmsprop)"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over the budget (Mnih et al. 2016 anneal to 0)"""
    gamma: float = 0.98
    """discount factor gamma (rl-zoo's tuned PPO CartPole-v1 entry: 0.98; chosen here by seed sweeps,
    docs/05_a3c.md)"""
    gae_lambda: float = 1.0
    """lambda of GAE(gamma, lambda) over each segment; 1.0 (Mnih et al. 2016) gives the n-step advantages
    R_t - V(s_t), as a2c.py at the same lambda"""
    ent_coef: float = 0.0
    """beta, weight of the entropy bonus (Mnih et al. 2016: 0.01 on Atari; rl-zoo's A2C CartPole-v1: 0)"""
    vf_coef: float = 0.5
    """weight of the value loss in the combined loss"""
    max_grad_norm: float = 0.5
    """gradient-norm clip of each network's gradient (actor, critic separately) before it is pushed
    (OpenAI baselines a2c: 0.5)"""
    adam_eps: float = 1e-5
    """epsilon of the shared Adam (RMSprop's is 1e-5, as in a2c.py)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and value MLPs (tanh)"""
    log_std_init: float = 0.0
    """log sigma of the Gaussian policy at the start, every action dimension (Box actions only; 0: sigma = 1;
    rl-zoo's log_std_init)"""

    def validate(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)


OPTIMIZERS = ("adam", "rmsprop")


# tune.py's search space (Optuna): field -> ("log", low, high) | ("float", low, high) |
# ("int", low, high) | ("choice", [values]). Ranges follow rl-zoo's sample_a2c_params
# (A3C's update is A2C's, applied asynchronously); every value is checked by the CLI.
SEARCH_SPACE = {
    "learning_rate": ("log", 1e-5, 1e-1),
    "num_steps": ("choice", [16, 32, 64, 128, 256]),
    "gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
    "gae_lambda": ("choice", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
    "ent_coef": ("log", 1e-8, 0.1),
    "vf_coef": ("float", 0.1, 1.0),
    "max_grad_norm": ("choice", [0.3, 0.5, 0.7, 1.0, 2.0, 5.0]),
}


def build_actor(obs_dim: int, n_actions: int | None, cfg: A3CConfig, action_dim: int | None = None) -> Actor:
    """pi_theta(a|s): an MLP from observations to the action logits (Discrete: ``n_actions``) or to the
    mean of a diagonal Gaussian with a learnable log sigma (Box: ``action_dim``); head gain 0.01: a
    near-uniform, or near-zero-mean, start."""
    return Actor(mlp([obs_dim, *cfg.hidden_sizes, action_dim or n_actions], output_gain=0.01),
                 action_dim=action_dim, log_std_init=cfg.log_std_init,
                 use_sde=cfg.use_sde, sde_sample_freq=cfg.sde_sample_freq)


def build_critic(obs_dim: int, cfg: A3CConfig) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


class SharedAdam:
    """Adam (Kingma and Ba 2015) whose moments and step count live in shared memory.

    Why shared state: with a per-worker Adam each process would keep its own
    moment estimates of a gradient that every worker contributes to, each
    seeing only 1/N of the updates; Mnih et al. 2016 (sec. 4 and suppl. S7)
    compare RMSProp with per-thread and with shared statistics and find the
    shared version more robust. Public A3C ports (e.g. ikostrikov/pytorch-a3c)
    likewise allocate the optimizer state before the workers start and call
    share_memory_() on it. Here exp_avg, exp_avg_sq and the step count are
    allocated up front in the main process and moved to shared memory before
    spawning, so every worker updates the same tensors. Like the parameters,
    they are updated without locks (Hogwild): concurrent updates may
    interleave, which A3C accepts by design.

    ``params`` are the global model's (shared) parameters; a worker calls
    ``step(grads, lr)`` with its local gradients in the same order.
    """

    def __init__(self, params, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.betas = betas
        self.eps = eps
        self.step_count = torch.zeros((), dtype=torch.float64).share_memory_()
        self.exp_avg = [torch.zeros_like(p).share_memory_() for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p).share_memory_() for p in self.params]

    @torch.no_grad()
    def step(self, grads, lr: float) -> None:
        """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  theta <- theta - lr m_hat / (sqrt(v_hat) + eps).

        Each line is one multi-tensor (``torch._foreach_*``) call over the parameter tensors,
        the same elementwise arithmetic as a loop over them; the workers pass a single tensor
        (``flat_parameters``), so an update is eight ops whatever the networks' depth
        (bench/a3c_update.py)."""
        beta1, beta2 = self.betas
        self.step_count += 1
        t = float(self.step_count)
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        grads = list(grads)
        torch._foreach_mul_(self.exp_avg, beta1)
        torch._foreach_add_(self.exp_avg, grads, alpha=1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1 - beta2)
        denom = torch._foreach_div(self.exp_avg_sq, bias2)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, value=-lr / bias1)


class SharedRMSprop:
    """RMSProp with shared statistics, the optimizer of Mnih et al. 2016 (sec. 4 and suppl. S7).

    The running average of squared gradients, g2 <- alpha g2 + (1 - alpha) g^2, is one
    shared-memory tensor per parameter tensor, allocated before the workers start, so every
    worker scales its step by the statistics of every worker's gradients; Mnih et al. found
    this shared variant more robust than a per-thread one. No momentum term (theirs has none;
    Adam's first moment is a momentum that here averages gradients computed on stale copies of
    the parameters). The same arithmetic as ``torch.optim.RMSprop(alpha=0.99, eps=1e-5)``, the
    optimizer of a2c.py's --optimizer rmsprop and of Stable-Baselines3's A2C; updated without
    locks, like ``SharedAdam``.
    """

    def __init__(self, params, alpha: float = 0.99, eps: float = 1e-5):
        self.params = list(params)
        self.alpha = alpha
        self.eps = eps
        self.square_avg = [torch.zeros_like(p).share_memory_() for p in self.params]

    @torch.no_grad()
    def step(self, grads, lr: float) -> None:
        """g2 <- alpha g2 + (1 - alpha) g^2;  theta <- theta - lr g / (sqrt(g2) + eps)."""
        grads = list(grads)
        torch._foreach_mul_(self.square_avg, self.alpha)
        torch._foreach_addcmul_(self.square_avg, grads, grads, value=1 - self.alpha)
        denom = torch._foreach_sqrt(self.square_avg)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, grads, denom, value=-lr)


def make_optimizer(params: list, cfg: A3CConfig) -> "SharedAdam | SharedRMSprop":
    """The shared optimizer ``cfg.optimizer`` names, over the global model's ``params``."""
    if cfg.optimizer == "rmsprop":
        return SharedRMSprop(params)
    return SharedAdam(params, eps=cfg.adam_eps)


def flat_parameters(*modules: torch.nn.Module) -> torch.Tensor:
    """Put every parameter of ``modules`` in one contiguous tensor and make each parameter a
    view of it; return the tensor.

    A worker's update then copies the global model in one op, and the shared Adam steps one
    tensor instead of a dozen: at t_max = 5 the per-op cost of many small tensors, not the
    arithmetic, is what an update spends (bench/a3c_update.py). Moving the tensor to shared
    memory afterwards (``share_memory_``) shares every view with it."""
    params = [p for m in modules for p in m.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


def n_step_returns(rewards: np.ndarray, terminated: bool, bootstrap_value: float, gamma: float) -> np.ndarray:
    """R_t = r_t + gamma R_{t+1} over one segment, R_T = V(s_T) unless the episode terminated.

    A segment cut by t_max or by a time limit (truncation) bootstraps the value
    of the observation it ended on; a terminated one does not (Pardo et al. 2018).
    """
    return reward_to_go(rewards, gamma, 0.0 if terminated else bootstrap_value)


def segment_targets(rewards: np.ndarray, values: np.ndarray, terminated: bool, truncated: bool,
                    bootstrap_value: float, gamma: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages A_t and critic targets R_t of one segment, ``values`` = V(s_t) of its states.

    lambda = 1: the n-step returns R_t (``n_step_returns``) and A_t = R_t - V(s_t), Mnih et al.'s
    estimator. lambda < 1: GAE(gamma, lambda) (``rlsuite.returns.gae``, a2c.py's) with
    V(s_T) = ``bootstrap_value`` after the last step unless the episode terminated, and
    R_t = A_t + V(s_t). A segment ends at t_max or at the end of its episode, so only its
    last step can be terminated or truncated.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if gae_lambda == 1.0:
        returns = n_step_returns(rewards, terminated, bootstrap_value, gamma)
        return returns - values, returns
    last = np.zeros(len(rewards), dtype=bool)
    last[-1] = True
    advantages = gae(rewards, np.append(values, bootstrap_value), last & terminated, last & truncated,
                     np.ones(len(rewards), dtype=bool), gamma, gae_lambda)
    return advantages, advantages + values


def policy_loss_fn(logp: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """-E[log pi(a|s) A]: the policy-gradient loss; ``advantages`` carry no gradient."""
    return -(logp * advantages).mean()


@dataclass
class Shared:
    """What the main process and every worker share: the global model, its optimizer, the
    step counter and the control flags, and the queue of rows for the one CSV writer."""

    actor: Actor
    critic: torch.nn.Module
    params: torch.Tensor  # theta and phi in one tensor; the parameters of actor and critic are views of it
    optimizer: SharedAdam | SharedRMSprop  # steps ``params``
    counter: object  # global_step: transitions taken by all workers (multiprocessing.Value)
    active: object   # workers still in their loop
    paused: object   # workers waiting at the pause gate
    stop: object     # multiprocessing.Event: leave the loop
    pause: object    # multiprocessing.Event: wait at the gate (the main process is evaluating)
    queue: object    # ("episode", worker, step, return, length) | ("update", worker, step, metrics)
                     # | ("error", worker, traceback text)
    obs_mean: torch.Tensor | None = None  # worker 0's running observation mean and variance
    obs_var: torch.Tensor | None = None   # (norm_obs), float64 in shared memory; what evaluation uses


def worker(index: int, cfg: A3CConfig, env_id: str, seed: int, obs_dim: int, n_actions: int | None,
           action_dim: int | None, shared: Shared) -> None:
    """One asynchronous actor-learner (Mnih et al. 2016, algorithm S3)."""
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    # The main process blocked these while it started us (start_workers); what arrived in
    # between is now discarded (SIGINT, SIGHUP) or delivered (SIGTERM).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RUN_SIGNALS)
    env = None
    try:
        torch.set_num_threads(1)
        torch.manual_seed(seed * 1_000 + index)
        parent = os.getppid()
        normalization = Normalization.of(cfg)
        env = normalize_env(make_env(env_id), normalization) if normalization.on else make_env(env_id)
        obs_rms = find_wrapper(env, gym.wrappers.NormalizeObservation)
        env.action_space.seed(seed + index)
        obs, _ = env.reset(seed=seed + index)
        actor = build_actor(obs_dim, n_actions, cfg, action_dim=action_dim)
        critic = build_critic(obs_dim, cfg)
        actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
        local_params = actor_params + critic_params  # in the order of the flat tensor's views
        params = flat_parameters(actor, critic)  # theta', phi': the local copies, views of one tensor
        sample = actor.sampler()  # a ~ pi_theta', numpy in and out; step 1 copies in place
        ep_return, ep_length = 0.0, 0

        while not shared.stop.is_set() and os.getppid() == parent:
            if shared.pause.is_set():
                wait_at_gate(shared, parent)
                continue

            # 1. Copy theta, phi from the global model (in place: the sampler reads views of them).
            with torch.no_grad():
                params.copy_(shared.params)
            if actor.use_sde:  # gSDE: a new noise matrix per segment, this worker's rollout
                sample = actor.sampler()

            # 2. Act for up to t_max steps, or to the end of the episode.
            seg_obs, seg_actions, seg_rewards = [], [], []
            terminated = truncated = budget_spent = False
            for _ in range(cfg.num_steps):
                global_step = claim_step(shared.counter, cfg.total_steps)
                if global_step is None:
                    budget_spent = True
                    break
                action = sample(obs)
                # the loss keeps the sampled action; env.step gets it clipped to a Box's bounds
                next_obs, reward, terminated, truncated, info = env.step(env_action(action, env.action_space))
                seg_obs.append(obs)
                seg_actions.append(action)
                seg_rewards.append(float(reward))
                ep_return += float(reward)
                ep_length += 1
                obs = next_obs
                if terminated or truncated:
                    if normalization.on:  # the rewards above were scaled; the protocol logs the env's own return
                        ep_return = float(info["episode"]["r"])
                    shared.queue.put(("episode", index, global_step, ep_return, ep_length))
                    ep_return, ep_length = 0.0, 0
                    break
            if not seg_rewards:
                break

            # 3. The bootstrap V(obs the segment ended on), used unless the episode terminated
            #    (a time-limit truncation or the t_max cut is not an end of the task).
            with torch.no_grad():
                bootstrap = float(critic(torch.as_tensor(obs, dtype=torch.float32)))
            if terminated or truncated:
                obs, _ = env.reset()
            obs_t = torch.as_tensor(np.array(seg_obs), dtype=torch.float32)
            actions_t = torch.as_tensor(np.array(seg_actions))
            if index == 0 and obs_rms is not None:  # publish the statistics evaluation uses
                shared.obs_mean.copy_(torch.from_numpy(np.asarray(obs_rms.obs_rms.mean, dtype=np.float64)))
                shared.obs_var.copy_(torch.from_numpy(np.asarray(obs_rms.obs_rms.var, dtype=np.float64)))

            # 4. The actor-critic loss on the segment, with the local copies.
            dist = actor.dist(obs_t)
            logp = dist.log_prob(actions_t)
            entropy = dist.entropy().mean()
            values = critic(obs_t).squeeze(-1)
            advantages, returns = (torch.as_tensor(x, dtype=torch.float32) for x in segment_targets(
                seg_rewards, values.detach().numpy(), terminated, truncated, bootstrap, cfg.gamma, cfg.gae_lambda))
            policy_loss = policy_loss_fn(logp, advantages)
            value_loss = 0.5 * (values - returns).square().mean()
            loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
            for p in local_params:
                p.grad = None
            loss.backward()
            # Each network is clipped on its own, so the critic's error, whose gradient scales
            # with the returns (~100 on CartPole), does not set the actor's clip factor.
            norm = clip_grad_norm(actor_params, max_norm=cfg.max_grad_norm)
            clip_grad_norm(critic_params, max_norm=cfg.max_grad_norm)

            # 5. Push the local gradients into the global model (Hogwild: no lock).
            step_now = shared.counter.value
            lr = cfg.learning_rate * (max(0.0, 1.0 - step_now / cfg.total_steps) if cfg.anneal_lr else 1.0)
            shared.optimizer.step([torch.cat([p.grad.reshape(-1) for p in local_params])], lr)
            with torch.no_grad():
                log_ratio = shared.actor.dist(obs_t).log_prob(actions_t) - logp.detach()
            shared.queue.put(("update", index, step_now, {
                "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                "entropy": entropy.item(), "approx_kl": approx_kl(log_ratio).item(),
                "grad_norm": norm.item(), "learning_rate": lr,
                "explained_variance": explained_variance(values.detach(), returns),
                "segment_length": len(seg_rewards)}))
            if budget_spent:
                break
    except BaseException:
        shared.queue.put(("error", index, traceback.format_exc()))
        sys.exit(1)
    finally:
        with shared.active.get_lock():
            shared.active.value -= 1
        if env is not None:
            env.close()


def claim_step(counter, total_steps: int) -> int | None:
    """Take one step of the shared budget: the new global_step, or None when it is spent."""
    with counter.get_lock():
        if counter.value >= total_steps:
            return None
        counter.value += 1
        return counter.value


def wait_at_gate(shared: Shared, parent: int) -> None:
    """Hold still while the main process evaluates; leave if it stops us or dies (it could
    be killed while we wait, and then nobody would ever clear the pause)."""
    with shared.paused.get_lock():
        shared.paused.value += 1
    while shared.pause.is_set() and not shared.stop.is_set() and os.getppid() == parent:
        time.sleep(0.001)
    with shared.paused.get_lock():
        shared.paused.value -= 1


class WorkerError(RuntimeError):
    """A worker process raised; the message carries its exception."""


def start_workers(workers) -> None:
    """Start every worker with the run's signals held back, then act on what arrived.

    A Ctrl-C, SIGTERM or hang-up that arrives while the workers start is
    deferred, not dropped: a handler only records it, and once every worker
    has started, the handler that was in place before runs (for Ctrl-C,
    KeyboardInterrupt), so the run stops as usual. The main thread also
    blocks the signals while it forks, so each worker starts with them
    blocked (spawn's fork and exec keep the mask) and a Ctrl-C to the
    process group cannot interrupt it while it imports torch; each worker
    ignores SIGINT and SIGHUP before it unblocks them (``worker``).
    """
    arrived: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in RUN_SIGNALS}
    signal.pthread_sigmask(signal.SIG_BLOCK, RUN_SIGNALS)
    try:
        for w in workers:
            w.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, RUN_SIGNALS)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if arrived:
        handler = previous[arrived[0]]
        if callable(handler):
            handler(arrived[0], None)
        elif handler != signal.SIG_IGN:
            raise KeyboardInterrupt


def train(cfg: A3CConfig, run) -> Actor:
    ctx = torch.multiprocessing.get_context("spawn")
    actor = build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim)
    critic = build_critic(run.obs_dim, cfg)
    params = flat_parameters(actor, critic).share_memory_()  # theta, phi: the global model
    shared = Shared(
        actor, critic, params, make_optimizer([params], cfg),
        counter=ctx.Value("q", 0), active=ctx.Value("i", cfg.num_workers), paused=ctx.Value("i", 0),
        stop=ctx.Event(), pause=ctx.Event(), queue=ctx.Queue(),
        # Gymnasium's RunningMeanStd starts at mean 0, variance 1
        obs_mean=torch.zeros(run.obs_dim, dtype=torch.float64).share_memory_(),
        obs_var=torch.ones(run.obs_dim, dtype=torch.float64).share_memory_())
    norm = Normalization.of(cfg)
    run.set_obs_source(lambda: ObsNormalization(shared.obs_mean.numpy().copy(), shared.obs_var.numpy().copy(),
                                                norm.epsilon, norm.obs_clip))
    workers = [
        ctx.Process(target=worker, name=f"a3c-worker-{i}", daemon=True,
                    args=(i, cfg, run.env_id, run.seed, run.obs_dim, run.n_actions, run.action_dim, shared))
        for i in range(cfg.num_workers)
    ]
    errors: list[str] = []

    def drain(timeout: float) -> None:
        """Log every queued message; the first get waits up to ``timeout`` seconds."""
        try:
            message = shared.queue.get(timeout=timeout) if timeout > 0 else shared.queue.get_nowait()
        except Empty:
            return
        while True:
            kind, index = message[0], message[1]
            if kind == "episode":
                _, _, step, ret, length = message
                run.log_episode(step, ret, length, worker=index)
            elif kind == "update":
                _, _, step, metrics = message
                run.log_update(step, worker=index, **metrics)
            else:
                errors.append(f"worker {index}: {message[2]}")
            try:
                message = shared.queue.get_nowait()
            except Empty:
                return

    def check_workers() -> bool:
        """Raise WorkerError if a worker failed; True when all have left their loop."""
        if errors:
            raise WorkerError(errors[0].strip().splitlines()[-1])
        if any(w.is_alive() for w in workers):
            return False
        drain(0)  # rows queued after the last check
        if errors:
            raise WorkerError(errors[0].strip().splitlines()[-1])
        bad = [w for w in workers if w.exitcode != 0]
        if bad:
            raise WorkerError(f"{bad[0].name} exited with status {bad[0].exitcode}")
        return True

    def wait_for_pause() -> None:
        """Hold the workers at their gate so evaluation sees a fixed policy and no steps pass."""
        shared.pause.set()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while shared.paused.value < shared.active.value and time.monotonic() < deadline:
            if not any(w.is_alive() for w in workers):
                break
            drain(0.001)

    try:
        start_workers(workers)
        last_step = 0
        while True:
            drain(0.05)
            finished = check_workers()
            step = shared.counter.value
            if step > last_step or finished:
                last_step = step
                if run.eval_due(step):
                    wait_for_pause()
                    step = shared.counter.value
                stop_early = run.update_boundary(step, actor)
                shared.pause.clear()
                if stop_early or finished:
                    break
    except BaseException:
        for text in errors:
            print(text, file=sys.stderr)
        raise
    finally:
        _stop_workers(workers, shared, drain)
    return actor


def _stop_workers(workers, shared: Shared, drain) -> None:
    """Stop, join, and if need be terminate then kill every worker; keep logging their rows."""
    # A second Ctrl-C or SIGTERM must not cut this short and leave workers behind.
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in RUN_SIGNALS}
    try:
        shared.stop.set()
        shared.pause.clear()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        # Draining while joining matters: a process that has put rows on a queue does not
        # exit until they are flushed to the pipe (Python docs, "Joining processes that use
        # queues").
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            drain(0.01)
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(1.0)
            if w.is_alive():
                w.kill()
                w.join(1.0)
        drain(0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
