"""Stable-Baselines3 PPO under this suite's protocol; run by bench/ppo_vs_sb3.py inside bench/.venv-sb3.

Not part of the suite (it imports nothing from it, so it runs in SB3's own
virtualenv). Trains SB3's PPO with the settings given as JSON, evaluates
exactly as docs/protocol.md says (20 greedy episodes, seeds
10_000 + seed * 1_000 + i, at the first update boundary after each multiple
of --eval-every, clock paused; final 100 episodes, seeds
1_000_000 + seed * 1_000 + i) and prints one JSON line with the figures.

Update boundary: SB3 calls a callback's ``_on_rollout_start`` right after
each ``train()``, so that is where the periodic evaluation runs; the last
update is checked after ``learn`` returns.
"""
import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
import torch._dynamo  # noqa: F401  torch.optim's lazy import, outside the clock as in the suite's runner
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env


def greedy_returns(model, env_id, seeds):
    envs = [gym.make(env_id) for _ in seeds]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    returns = np.zeros(len(seeds))
    active = list(range(len(seeds)))
    while active:
        actions, _ = model.predict(np.stack([obs[i] for i in active]), deterministic=True)
        still = []
        for k, i in enumerate(active):
            obs[i], r, term, trunc, _ = envs[i].step(int(actions[k]))
            returns[i] += r
            if not (term or trunc):
                still.append(i)
        active = still
    for env in envs:
        env.close()
    return returns


class ProtocolEval(BaseCallback):
    def __init__(self, env_id, seed, eval_every, eval_episodes, threshold):
        super().__init__()
        self.env_id, self.seed = env_id, seed
        self.eval_every, self.eval_episodes, self.threshold = eval_every, eval_episodes, threshold
        self.next_eval = eval_every
        self.paused = 0.0
        self.start = None
        self.solved_step = self.solved_time = None

    def train_time(self):
        return time.perf_counter() - self.start - self.paused

    def boundary(self):
        step = self.model.num_timesteps
        if step < self.next_eval:
            return
        t0 = time.perf_counter()
        seeds = [10_000 + self.seed * 1_000 + i for i in range(self.eval_episodes)]
        mean = float(greedy_returns(self.model, self.env_id, seeds).mean())
        if self.solved_step is None and mean >= self.threshold:
            self.solved_step, self.solved_time = step, self.train_time()
        self.next_eval = (step // self.eval_every + 1) * self.eval_every
        self.paused += time.perf_counter() - t0

    def _on_rollout_start(self):
        if self.model.num_timesteps > 0:
            self.boundary()

    def _on_step(self):
        return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--total-steps", type=int, default=100_000)
    p.add_argument("--eval-every", type=int, default=5000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--settings", required=True, help="JSON: n_envs, n_steps, batch_size, n_epochs, gamma, "
                   "gae_lambda, learning_rate, anneal_lr, clip_range, ent_coef")
    args = p.parse_args()
    s = json.loads(args.settings)
    torch.set_num_threads(1)
    threshold = gym.spec(args.env).reward_threshold

    callback = ProtocolEval(args.env, args.seed, args.eval_every, args.eval_episodes, threshold)
    cpu0 = time.process_time()
    callback.start = time.perf_counter()
    lr0 = s["learning_rate"]
    model = PPO(
        "MlpPolicy", make_vec_env(args.env, n_envs=s["n_envs"], seed=args.seed),
        n_steps=s["n_steps"], batch_size=s["batch_size"], n_epochs=s["n_epochs"], gamma=s["gamma"],
        gae_lambda=s["gae_lambda"], learning_rate=(lambda frac: lr0 * frac) if s["anneal_lr"] else lr0,
        clip_range=s["clip_range"], ent_coef=s["ent_coef"], seed=args.seed, device="cpu", verbose=0)
    model.learn(total_timesteps=args.total_steps, callback=callback)
    callback.boundary()
    train_time = callback.train_time()
    cpu = time.process_time() - cpu0
    final = greedy_returns(model, args.env, [1_000_000 + args.seed * 1_000 + i for i in range(100)])
    print(json.dumps({
        "total_steps": int(model.num_timesteps), "train_time_s": train_time, "cpu_time_s": cpu,
        "steps_to_solve": callback.solved_step, "time_to_solve_s": callback.solved_time,
        "final_eval_mean": float(final.mean()),
    }))


if __name__ == "__main__":
    main()
