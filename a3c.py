"""A3C: asynchronous advantage actor-critic (Mnih et al. 2016, algorithm S3).

One global actor pi_theta and critic V_phi live in shared memory. N worker
processes each own an environment and a local copy of both networks, and loop:

    copy theta, phi from the global model
    act for up to t_max steps (or to the end of the episode)
    R = 0 if the episode terminated, else V(s_last)         (bootstrap; also on truncation)
    R_t = r_t + gamma * R_{t+1}, backwards over the segment   (n-step returns)
    loss = -mean_t[log pi(a_t|s_t) (R_t - V(s_t))] + vf_coef * 0.5 mean_t[(R_t - V(s_t))^2]
           - ent_coef * mean_t[H(pi(.|s_t))]
    push the local gradients into the global model with a shared optimizer, no locks (Hogwild,
    Recht et al. 2011)

The main process never trains: it starts the workers, drains one queue of
their episodes and updates (the single writer of the CSVs), pauses the
workers for the periodic greedy evaluation, and stops them.

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

import numpy as np
import torch
from torch.distributions import Categorical

from rlsuite.envs import make_env
from rlsuite.evaluation import greedy_policy, load_actor
from rlsuite.nets import mlp
from rlsuite.returns import reward_to_go

EPISODE_COLUMNS = ["worker"]
UPDATE_COLUMNS = ["worker", "segment_length"]

# Test hook: worker 0 raises after this many of its own steps (see tests/test_a3c.py).
DEBUG_RAISE_ENV = "RLSUITE_A3C_DEBUG_RAISE_AFTER"
# Test hook: write the worker pids, one a line, to this file once they are started.
DEBUG_PIDS_ENV = "RLSUITE_A3C_DEBUG_PIDS_FILE"

SHUTDOWN_GRACE_S = 3.0  # how long stopped workers get to exit before terminate()


@dataclass
class A3CConfig:
    total_steps: int = 200_000
    """training budget in environment steps, all workers together (a shared counter enforces it)"""
    num_workers: int = os.cpu_count() or 1
    """N, asynchronous worker processes, each with its own env (default: the number of cores)"""
    num_steps: int = 128
    """t_max, steps per worker between updates, fewer at an episode end (Mnih et al. 2016: 5 on Atari with 16 threads; with 2 workers on CartPole-v1, 20, 32 and 64 let the solved policy collapse on some seeds, 128 did not)"""
    learning_rate: float = 7e-4
    """step size of the shared Adam optimizer (7e-4 as in OpenAI baselines' A2C; with t_max 128 on CartPole-v1, 5e-4 left one of 10 seeds on a ~300 plateau and 1e-3 drifted late)"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over the budget (Mnih et al. 2016 anneal to 0), so the final policy settles"""
    gamma: float = 0.98
    """discount factor gamma (0.98 as in rl-zoo's tuned CartPole-v1 settings; with 0.99 one of 20
    seeds drifted from 500 to ~400 late in training and ended there, with 0.98 seeds 1-10 all
    ended at 500)"""
    ent_coef: float = 0.0
    """beta, weight of the entropy bonus (Mnih et al. 2016: 0.01 on Atari; 0 here as in rl-zoo's A2C CartPole-v1 setting: with 0.01 the solved policy drifted back to ~300 on some seeds)"""
    vf_coef: float = 0.5
    """weight of the value loss in the combined loss"""
    max_grad_norm: float = 0.5
    """gradient-norm clip of each network's gradient (actor, critic separately) before it is pushed (OpenAI baselines a2c: 0.5)"""
    adam_eps: float = 1e-5
    """epsilon of the shared Adam"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer widths of the policy and value MLPs (tanh)"""


def build_actor(obs_dim: int, n_actions: int, cfg: A3CConfig) -> torch.nn.Module:
    """pi_theta(a|s): an MLP from observations to action logits (head gain 0.01: near-uniform start)."""
    return mlp([obs_dim, *cfg.hidden_sizes, n_actions], output_gain=0.01)


def build_critic(obs_dim: int, cfg: A3CConfig) -> torch.nn.Module:
    """V_phi(s): a separate MLP with its own parameters."""
    return mlp([obs_dim, *cfg.hidden_sizes, 1], output_gain=1.0)


def load_policy(run_dir):
    """Greedy policy of a finished run: numpy obs (n, obs_dim) -> actions (n,)."""
    actor, _ = load_actor(run_dir, A3CConfig, build_actor)
    return greedy_policy(actor)


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
        beta1, beta2 = self.betas
        self.step_count += 1
        t = float(self.step_count)
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v / bias2).sqrt_().add_(self.eps), value=-lr / bias1)


def n_step_returns(rewards: np.ndarray, terminated: bool, bootstrap_value: float, gamma: float) -> np.ndarray:
    """R_t = r_t + gamma R_{t+1} over one segment, R_T = V(s_T) unless the episode terminated.

    A segment cut by t_max or by a time limit (truncation) bootstraps the value
    of the observation it ended on; a terminated one does not (Pardo et al. 2018).
    """
    return reward_to_go(rewards, gamma, 0.0 if terminated else bootstrap_value)


def a3c_loss(logits, values, actions, returns, vf_coef: float, ent_coef: float):
    """The combined actor-critic loss of one segment; returns (loss, policy, value, entropy)."""
    dist = Categorical(logits=logits)
    advantages = returns - values.detach()  # the critic enters the policy term as a number
    policy_loss = -(dist.log_prob(actions) * advantages).mean()
    value_loss = 0.5 * ((returns - values) ** 2).mean()
    entropy = dist.entropy().mean()
    return policy_loss + vf_coef * value_loss - ent_coef * entropy, policy_loss, value_loss, entropy


def worker(index, cfg, env_id, seed, obs_dim, n_actions, global_actor, global_critic, optimizer,
           counter, active, paused, stop, pause, queue):
    """One asynchronous actor-learner. Messages to the main process:

    ("episode", worker, global_step, return, length), ("update", worker, global_step, metrics),
    ("error", worker, traceback text).
    """
    # Ctrl-C in a terminal reaches the whole process group; the main process alone handles it
    # and stops us through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = None
    try:
        torch.set_num_threads(1)
        torch.manual_seed(seed * 1_000 + index)
        raise_after = int(os.environ.get(DEBUG_RAISE_ENV, "0")) if index == 0 else 0
        parent = os.getppid()
        env = make_env(env_id)
        env.action_space.seed(seed + index)
        obs, _ = env.reset(seed=seed + index)
        actor, critic = build_actor(obs_dim, n_actions, cfg), build_critic(obs_dim, cfg)
        actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
        local_params = actor_params + critic_params
        ep_return, ep_length, my_steps = 0.0, 0, 0
        budget_spent = False

        while not budget_spent and not stop.is_set():
            if os.getppid() != parent:  # the main process died without stopping us
                break
            if pause.is_set():  # the main process is evaluating the global policy
                with paused.get_lock():
                    paused.value += 1
                while pause.is_set() and not stop.is_set():
                    time.sleep(0.001)
                with paused.get_lock():
                    paused.value -= 1
                continue

            actor.load_state_dict(global_actor.state_dict())
            critic.load_state_dict(global_critic.state_dict())
            seg_obs, seg_actions, seg_rewards = [], [], []
            terminated = False
            for _ in range(cfg.num_steps):
                with counter.get_lock():
                    if counter.value >= cfg.total_steps:
                        budget_spent = True
                        break
                    counter.value += 1
                    global_step = counter.value
                with torch.no_grad():
                    action = Categorical(logits=actor(torch.as_tensor(obs, dtype=torch.float32))).sample().item()
                next_obs, reward, terminated, truncated, _ = env.step(action)
                seg_obs.append(obs)
                seg_actions.append(action)
                seg_rewards.append(float(reward))
                ep_return += float(reward)
                ep_length += 1
                my_steps += 1
                if raise_after and my_steps >= raise_after:
                    raise RuntimeError(f"debug: worker {index} raised after {my_steps} steps ({DEBUG_RAISE_ENV})")
                obs = next_obs
                if terminated or truncated:
                    queue.put(("episode", index, global_step, ep_return, ep_length))
                    ep_return, ep_length = 0.0, 0
                    break
            if not seg_rewards:
                break

            # obs is the observation the segment ended on: the final one of a truncated
            # episode, or the state t_max cut at. It is bootstrapped unless terminated.
            with torch.no_grad():
                bootstrap = float(critic(torch.as_tensor(obs, dtype=torch.float32)))
            if terminated or truncated:
                obs, _ = env.reset()
            returns = n_step_returns(np.array(seg_rewards), terminated, bootstrap, cfg.gamma)
            obs_t = torch.as_tensor(np.array(seg_obs), dtype=torch.float32)
            loss, policy_loss, value_loss, entropy = a3c_loss(
                actor(obs_t), critic(obs_t).squeeze(-1), torch.as_tensor(seg_actions),
                torch.as_tensor(returns, dtype=torch.float32), cfg.vf_coef, cfg.ent_coef)
            for p in local_params:
                p.grad = None
            loss.backward()
            # Each network is clipped on its own: the critic's gradient, which scales with the
            # returns (~100 on CartPole), must not shrink the policy's step.
            norm = float(torch.nn.utils.clip_grad_norm_(actor_params, cfg.max_grad_norm))
            torch.nn.utils.clip_grad_norm_(critic_params, cfg.max_grad_norm)
            step_now = counter.value
            lr = cfg.learning_rate * max(0.0, 1.0 - step_now / cfg.total_steps) if cfg.anneal_lr else cfg.learning_rate
            optimizer.step([p.grad for p in local_params], lr)
            queue.put(("update", index, step_now, {
                "policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
                "entropy": float(entropy.detach()), "grad_norm": norm, "learning_rate": lr,
                "segment_length": len(seg_rewards)}))
    except BaseException:
        queue.put(("error", index, traceback.format_exc()))
        sys.exit(1)
    finally:
        with active.get_lock():
            active.value -= 1
        if env is not None:
            env.close()


class WorkerError(RuntimeError):
    """A worker process raised; the message carries its exception."""


def train(cfg: A3CConfig, run) -> torch.nn.Module:
    ctx = torch.multiprocessing.get_context("spawn")
    actor = build_actor(run.obs_dim, run.n_actions, cfg)
    critic = build_critic(run.obs_dim, cfg)
    actor.share_memory()
    critic.share_memory()
    optimizer = SharedAdam(list(actor.parameters()) + list(critic.parameters()), eps=cfg.adam_eps)

    counter = ctx.Value("q", 0)             # global_step: transitions taken by all workers
    active = ctx.Value("i", cfg.num_workers)  # workers still in their loop
    paused = ctx.Value("i", 0)              # workers waiting at the pause gate
    stop, pause = ctx.Event(), ctx.Event()
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=worker, name=f"a3c-worker-{i}", daemon=True, args=(
            i, cfg, run.env_id, run.seed, run.obs_dim, run.n_actions, actor, critic, optimizer,
            counter, active, paused, stop, pause, queue))
        for i in range(cfg.num_workers)
    ]
    errors: list[str] = []

    def drain(timeout: float) -> None:
        """Log every queued message; the first get waits up to ``timeout`` seconds."""
        try:
            message = queue.get(timeout=timeout) if timeout > 0 else queue.get_nowait()
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
                message = queue.get_nowait()
            except Empty:
                return

    def wait_for_pause() -> None:
        """Hold the workers at their gate so evaluation sees a fixed policy and no steps pass."""
        pause.set()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while paused.value < active.value and time.monotonic() < deadline:
            if not any(w.is_alive() for w in workers):
                break
            drain(0.001)

    try:
        # Children inherit an ignored SIGINT through spawn's exec, and Python then installs no
        # KeyboardInterrupt handler in them: a Ctrl-C while they are still importing torch
        # cannot print their tracebacks. The main process keeps its own handler.
        main_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for w in workers:
                w.start()
        finally:
            signal.signal(signal.SIGINT, main_sigint)
        if os.environ.get(DEBUG_PIDS_ENV):
            with open(os.environ[DEBUG_PIDS_ENV], "w") as f:
                f.write("".join(f"{w.pid}\n" for w in workers))
        last_step = 0
        while True:
            drain(0.05)
            if errors:
                raise WorkerError(errors[0].strip().splitlines()[-1])
            finished = not any(w.is_alive() for w in workers)
            if finished:
                drain(0)  # rows queued after the last check
                if errors:
                    raise WorkerError(errors[0].strip().splitlines()[-1])
                bad = [w for w in workers if w.exitcode != 0]
                if bad:
                    raise WorkerError(f"{bad[0].name} exited with status {bad[0].exitcode}")
            step = counter.value
            if step > last_step or finished:
                last_step = step
                evaluating = run.eval_due(step)
                if evaluating:
                    wait_for_pause()
                    step = counter.value
                stop_early = run.update_boundary(step, actor)
                pause.clear()
                if stop_early or finished:
                    break
    except BaseException:
        for text in errors:
            print(text, file=sys.stderr)
        raise
    finally:
        _stop_workers(workers, stop, pause, drain)
    return actor


def _stop_workers(workers, stop, pause, drain) -> None:
    """Stop, join, and if need be terminate then kill every worker; keep logging their rows."""
    # A second Ctrl-C or SIGTERM must not cut this short and leave workers behind.
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.set()
        pause.clear()
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
