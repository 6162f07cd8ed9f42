"""Greedy evaluation, video recording and loading a trained policy."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rlsuite.cli import FINAL_EVAL_EPISODES, UsageError
from rlsuite.envs import ObsNormalization, env_action, make_env, run_episodes
from rlsuite.records import read_json


def config_from_dict(config_cls, values: dict):
    """Rebuild a config dataclass from JSON (lists back to tuples where the default is one)."""
    import dataclasses

    kwargs = {}
    for f in dataclasses.fields(config_cls):
        if f.name in values:
            v = values[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return config_cls(**kwargs)

Policy = Callable[[np.ndarray], np.ndarray]


def periodic_eval_seeds(seed: int, episodes: int) -> list[int]:
    """Protocol: periodic evaluation episode i is seeded 10_000 + seed * 1_000 + i."""
    return [10_000 + seed * 1_000 + i for i in range(episodes)]


def final_eval_seeds(seed: int, episodes: int = FINAL_EVAL_EPISODES) -> list[int]:
    """Protocol: final evaluation episode i is seeded 1_000_000 + seed * 1_000 + i."""
    return [1_000_000 + seed * 1_000 + i for i in range(episodes)]


def greedy_policy(actor: torch.nn.Module, obs_normalization: ObsNormalization | None = None,
                  action_bounds: tuple | None = None) -> Policy:
    """Wrap an actor (``rlsuite.distributions.Actor``) as numpy obs -> its greedy actions (the mode).

    With ``obs_normalization`` the raw observations are normalized with those frozen
    statistics first; with ``action_bounds`` (low, high) the mode, the Gaussian's mean,
    is clipped to them (docs/protocol.md, "Continuous actions").
    """

    def act(obs: np.ndarray) -> np.ndarray:
        if obs_normalization is not None:
            obs = obs_normalization(obs)
        with torch.no_grad():
            action = actor.dist(torch.as_tensor(obs, dtype=torch.float32)).mode().numpy()
        if action_bounds is not None:
            action = np.clip(action, *action_bounds)
        return action

    return act


def action_bounds(config: dict) -> tuple | None:
    """(low, high) as float32 arrays from a run's config.json (or EnvInfo fields); None for Discrete."""
    if config.get("action_low") is None:
        return None
    return (np.asarray(config["action_low"], dtype=np.float32), np.asarray(config["action_high"], dtype=np.float32))


def evaluate_policy(env_id: str, act: Policy, seeds: list[int]) -> np.ndarray:
    """The returns of greedy episodes, one per seed, each in an env made for it (never a training env).

    Episodes run side by side so the policy sees one batch per time step.
    Every episode gets a new env, reset with its seed, so episode i depends
    on the policy and seeds[i] only: not on the batch, nor on what ran before.
    A reused env would not guarantee that: BipedalWalker-v3 keeps its Box2D
    world across resets, and after other episodes the same seed can play out
    differently (its contacts are solved in another order).
    """
    envs = [make_env(env_id) for _ in seeds]
    try:
        episodes = run_episodes(envs, act, seeds)
    finally:
        for env in envs:
            env.close()
    return np.array([ep["rewards"].sum() for ep in episodes], dtype=np.float64)


def record_video(env_id: str, act: Policy, seeds: list[int], out_dir: Path) -> list[Path]:
    """Record one greedy episode per seed to ``out_dir/episode_<k>.mp4`` (headless).

    The folder is this run's alone: its old episode_*.mp4 go first, so a report
    never links a video of an earlier policy. Each file is encoded under a
    hidden temporary name and renamed when complete, so an interrupt never
    leaves a truncated episode_<k>.mp4 behind.
    """
    import imageio.v2 as imageio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("episode_*.mp4"):
        old.unlink()
    paths = []
    for k, seed in enumerate(seeds):
        env = make_env(env_id, render_mode="rgb_array")  # a new env per episode, as evaluate_policy
        fps = env.metadata.get("render_fps", 30)
        try:
            obs, _ = env.reset(seed=seed)
            frames = [env.render()]
            done = False
            while not done:
                action = act(np.asarray(obs, dtype=np.float32)[None])[0]
                obs, _, terminated, truncated, _ = env.step(env_action(action, env.action_space))
                frames.append(env.render())
                done = terminated or truncated
        finally:
            env.close()
        path = out_dir / f"episode_{k}.mp4"
        partial = out_dir / f".episode_{k}.partial.mp4"
        try:
            # macro_block_size=2: libx264/yuv420p needs even sides; 2 avoids
            # resizing CartPole's 600x400 frames (the default 16 would).
            imageio.mimwrite(partial, frames, fps=fps, macro_block_size=2)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        paths.append(path)
    return paths


def read_run_config(run_dir: Path, argument: str, files=("config.json",),
                    keys=("algo", "env_id", "seed")) -> dict:
    """A run folder's config.json, checked: ``files`` exist and the config has ``keys``.

    Anything missing or unreadable is a UsageError naming ``argument``.
    """
    run_dir = Path(run_dir)
    for name in files:
        if not (run_dir / name).is_file():
            problem = "is not a file" if (run_dir / name).exists() else "not found"
            raise UsageError(f"argument {argument}: {run_dir / name} {problem}; give a run folder "
                             f"results/<env>/<algo>/seed_<n>/ holding {' and '.join(files)}")
    try:
        config = read_json(run_dir / "config.json")
        for key in keys:
            config[key]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"argument {argument}: {run_dir / 'config.json'} is not a valid run config") from None
    return config


def load_actor(run_dir: Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's actor from its config.json and model.pt only.

    The algorithm named in config.json is looked up in the registry
    (``rlsuite.algorithms``); its own ``build_actor`` rebuilds the network
    from the saved hyperparameters, and the saved weights are loaded into it.
    """
    from rlsuite import algorithms

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    entry = algorithms.get(config["algo"])
    cfg = config_from_dict(entry.config_class(), config["hyperparameters"])
    actor = entry.module().build_actor(config["obs_dim"], config["n_actions"], cfg,
                                       action_dim=config.get("action_dim"))
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    actor.load_state_dict(state)
    actor.eval()
    return actor, config


def load_obs_normalization(run_dir: Path, config: dict) -> ObsNormalization | None:
    """The run's frozen observation statistics (obs_rms.npz), if it trained with ``norm_obs``."""
    if not config.get("hyperparameters", {}).get("norm_obs", False):
        return None
    return ObsNormalization.load(Path(run_dir) / ObsNormalization.FILE)


def load_policy(run_dir) -> Policy:
    """The greedy policy of a finished run: numpy observations (n, obs_dim) -> actions.

    Actions are (n,) integers for Discrete action spaces, (n, action_dim) floats
    (the Gaussian's mean, clipped to the bounds) for Box ones. Reads only the
    run's config.json, model.pt and, if it normalized observations, obs_rms.npz
    (docs/protocol.md, "Using a trained policy"): raw observations go in, the
    saved statistics are applied to them, frozen. Every algorithm module
    re-exports this one function.
    """
    actor, config = load_actor(run_dir)
    return greedy_policy(actor, load_obs_normalization(run_dir, config), action_bounds(config))
