"""Environment factory for Gymnasium 1.x: validation, seeding, autoreset masking,
continuous actions and observation/reward normalization (Gymnasium's own wrappers)."""
from __future__ import annotations

import difflib
import os
import warnings
from dataclasses import dataclass

# Rendering classic-control envs to rgb_array needs no display. MuJoCo reads MUJOCO_GL
# when it is first imported: EGL renders headless on the benchmark machines, OSMesa
# fails there. Both are set only when unset, before gymnasium can import mujoco.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402  (after MUJOCO_GL)
import numpy as np  # noqa: E402
from gymnasium.wrappers import vector as vector_wrappers  # noqa: E402


class EnvError(ValueError):
    """An environment id or space this suite cannot train on."""


@dataclass(frozen=True)
class EnvInfo:
    """What an actor needs of an env: Discrete actions give ``n_actions`` (the number of
    logits), Box actions ``action_dim`` and the bounds ``action_low``/``action_high``
    the sampled action is clipped to on its way to ``env.step``; the other fields are None."""

    env_id: str
    obs_dim: int
    n_actions: int | None
    reward_threshold: float | None
    max_episode_steps: int | None
    action_dim: int | None = None
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None


def describe_env(env_id: str) -> EnvInfo:
    """Check that ``env_id`` is registered and has spaces we support.

    Raises EnvError with a one-line message suggesting close ids. Builds one
    throwaway env to read its spaces; writes nothing.
    """
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.registry for ids"
        raise EnvError(f"--env: unknown Gymnasium environment id {env_id!r}{hint}")
    spec = gym.spec(env_id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id)
    except Exception as exc:  # a missing optional dependency, e.g. box2d
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EnvError(f"--env: {env_id!r} cannot be created here: {first}") from None
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1 or obs_space.shape[0] < 1:
        raise EnvError(
            f"--env: {env_id!r} has observation space {obs_space}; "
            "supported: a flat Box observation space of at least one dimension"
        )
    if isinstance(act_space, gym.spaces.Box):
        if len(act_space.shape) != 1 or act_space.shape[0] < 1:
            raise EnvError(f"--env: {env_id!r} has action space {act_space}; "
                           "supported: Discrete, or a flat Box of at least one dimension")
        return EnvInfo(
            env_id=env_id,
            obs_dim=int(obs_space.shape[0]),
            n_actions=None,
            reward_threshold=spec.reward_threshold,
            max_episode_steps=spec.max_episode_steps,
            action_dim=int(act_space.shape[0]),
            action_low=tuple(float(x) for x in act_space.low),
            action_high=tuple(float(x) for x in act_space.high),
        )
    if not isinstance(act_space, gym.spaces.Discrete):
        raise EnvError(f"--env: {env_id!r} has action space {act_space}; "
                       "supported: Discrete or a flat Box")
    # The networks' logits index actions 0..n-1; an env numbering them from `start`
    # would be handed actions it rejects, mid-run.
    if int(act_space.start) != 0 or int(act_space.n) < 1:
        raise EnvError(f"--env: {env_id!r} has action space {act_space}; "
                       "supported: Discrete(n) with actions numbered from 0")
    return EnvInfo(
        env_id=env_id,
        obs_dim=int(obs_space.shape[0]),
        n_actions=int(act_space.n),
        reward_threshold=spec.reward_threshold,
        max_episode_steps=spec.max_episode_steps,
    )


_mujoco_warnings_seen: set[str] | None = None  # None: MuJoCo's own handler, which prints every one


def _mujoco_warnings_once(env_id: str) -> None:
    """Route MuJoCo's C-level warnings through a handler that prints each distinct one once.

    MuJoCo warns each time it compiles a model that uses a deprecated attribute
    (HalfCheetah-v5 under mujoco 4: 'settotalmass'); every evaluation builds
    its envs anew (rlsuite.evaluation), so a run's log would repeat the same
    line thousands of times. Installed only for envs that run on MuJoCo.
    """
    global _mujoco_warnings_seen
    if _mujoco_warnings_seen is not None or "mujoco" not in str(gym.spec(env_id).entry_point):
        return
    import sys

    import mujoco

    _mujoco_warnings_seen = set()

    def once(message: str) -> None:
        if message not in _mujoco_warnings_seen:
            _mujoco_warnings_seen.add(message)
            print(f"MuJoCo warning (printed once): {message}", file=sys.stderr, flush=True)

    mujoco.set_mju_user_warning(once)


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One single (non-vector) env with the registered wrappers (TimeLimit included)."""
    _mujoco_warnings_once(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id, render_mode=render_mode)


def make_seeded_envs(env_id: str, n: int, seed: int, norm: "Normalization | None" = None) -> list[gym.Env]:
    """``n`` single envs, env i reset and its action space seeded with seed + i
    (the convention of Gymnasium's SyncVectorEnv), ready for ``run_episodes``.

    With ``norm`` switched on, each env is wrapped as ``normalize_env`` says and
    all ``n`` wrappers share one running mean/variance of the observations and
    one of the discounted return: the statistics of the whole batch, as a
    vector env's single wrapper would keep them.
    """
    envs = []
    for i in range(n):
        env = make_env(env_id)
        if norm is not None and norm.on:
            env = normalize_env(env, norm, share_with=envs[0] if envs else None)
        env.reset(seed=seed + i)
        env.action_space.seed(seed + i)
        envs.append(env)
    return envs


def make_vec_env(env_id: str, num_envs: int, seed: int, norm: "Normalization | None" = None
                 ) -> gym.vector.VectorEnv:
    """A seeded vector env in next-step autoreset mode, normalized as ``norm`` says.

    Envs that ship a numpy-vectorized implementation (CartPole-v1 does:
    ``spec.vector_entry_point``) use it; it steps 128 envs at millions of
    steps/s here, against ~60k/s for a SyncVectorEnv of Python envs.
    Everything else gets a SyncVectorEnv. Both autoreset on the step after an
    episode ends; see ``AutoresetTracker``.
    """
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    _mujoco_warnings_once(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    autoreset = envs.metadata.get("autoreset_mode")
    if autoreset is not None and autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        raise EnvError(f"--env: {env_id!r} vector env uses {autoreset}; expected NEXT_STEP")
    if norm is not None and norm.on:
        envs = normalize_vec_env(envs, norm)
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    return envs


# -- continuous actions ----------------------------------------------------------

def env_action(action, space: gym.Space):
    """The copy of an action handed to ``env.step``: clipped to the bounds of a Box space
    (the loss keeps the sampled, unclipped action; docs/protocol.md), a Python int for a
    single Discrete action; a batch of Discrete actions unchanged."""
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    return action.item() if np.ndim(action) == 0 else action


# -- observation normalization and reward scaling ------------------------------

@dataclass
class NormalizationConfig:
    """The normalization fields every algorithm's config shares (one flag each, the same in all five);
    ``Normalization.of(cfg)`` reads them."""

    norm_obs: bool = False
    """normalize observations by their running mean and variance (Gymnasium's NormalizeObservation, then a
    clip to +-obs_clip); the statistics are saved with the model and frozen in every evaluation (off: the
    CartPole-v1 setting; presets switch it on, as rl-zoo's normalize: true)"""
    norm_reward: bool = False
    """divide rewards by the running std of the gamma-discounted return (Gymnasium's NormalizeReward, then a
    clip to +-reward_clip); shapes training only: every logged return is the environment's own"""
    obs_clip: float = 10.0
    """bound on the normalized observations (SB3's VecNormalize and CleanRL: 10)"""
    reward_clip: float = 10.0
    """bound on the scaled rewards (SB3's VecNormalize and CleanRL: 10)"""


@dataclass(frozen=True)
class Normalization:
    """Which of Gymnasium's normalization wrappers a run uses, with their settings.

    obs:    NormalizeObservation (running mean and variance of every observation the
            training envs return, o -> (o - mean) / sqrt(var + epsilon)), then a clip
            to [-obs_clip, obs_clip]
    reward: NormalizeReward (r -> r / sqrt(Var[discounted return] + epsilon), the
            discounted return accumulated with ``gamma``), then a clip to
            [-reward_clip, reward_clip]
    """

    obs: bool = False
    reward: bool = False
    gamma: float = 0.99
    obs_clip: float = 10.0
    reward_clip: float = 10.0
    epsilon: float = 1e-8  # Gymnasium's default for both wrappers

    @classmethod
    def of(cls, cfg) -> "Normalization":
        """From an algorithm config's ``norm_obs``, ``norm_reward``, ``gamma``, ``obs_clip``, ``reward_clip``."""
        return cls(cfg.norm_obs, cfg.norm_reward, cfg.gamma, cfg.obs_clip, cfg.reward_clip)

    @property
    def on(self) -> bool:
        return self.obs or self.reward


class RunningMeanStd(gym.wrappers.utils.RunningMeanStd):
    """Gymnasium's running mean and variance, with a shortcut for a batch of one sample.

    A single env's NormalizeObservation and NormalizeReward, and the vector ones over one
    env (PPO's and TRPO's MuJoCo presets), update their statistics with one row per step.
    Gymnasium computes that row's mean and variance with ``np.mean`` and ``np.var``: two
    reductions through numpy's Python-level helpers, tens of microseconds a step, to return
    the row itself and zeros. The shortcut passes the row and ``(row - row)**2`` (zeros, or
    NaN where the row is not finite, as ``np.var`` gives) to the same update, so the
    statistics are bit-identical (tests/test_envs.py); ``bench/normalize_step.py`` times it.
    """

    def update(self, x):
        if getattr(x, "ndim", 0) >= 1 and x.shape[0] == 1:
            row = x[0]
            self.update_from_moments(row, np.square(row - row), 1)
        else:
            super().update(x)


def _fast_statistics(wrapper, attr: str) -> None:
    """Give ``wrapper``'s statistics object (``obs_rms`` or ``return_rms``, made by Gymnasium)
    the shortcut above: the same object, its class swapped for the subclass, which adds
    no state."""
    stats = getattr(wrapper, attr)
    if type(stats) is gym.wrappers.utils.RunningMeanStd:
        stats.__class__ = RunningMeanStd


def normalize_vec_env(envs, norm: Normalization):
    """Wrap a vector env: RecordEpisodeStatistics, then the switched-on normalizations.

    RecordEpisodeStatistics sits under the reward wrapper, so ``info["episode"]["r"]``
    is the environment's own return, the one the protocol logs (``Rollout.collect``).
    """
    envs = vector_wrappers.RecordEpisodeStatistics(envs)
    if norm.obs:
        envs = vector_wrappers.NormalizeObservation(envs, epsilon=norm.epsilon)
        _fast_statistics(envs, "obs_rms")
        envs = vector_wrappers.TransformObservation(envs, lambda o: np.clip(o, -norm.obs_clip, norm.obs_clip))
    if norm.reward:
        envs = vector_wrappers.NormalizeReward(envs, gamma=norm.gamma, epsilon=norm.epsilon)
        _fast_statistics(envs, "return_rms")
        envs = vector_wrappers.ClipReward(envs, -norm.reward_clip, norm.reward_clip)
    return envs


def normalize_env(env: gym.Env, norm: Normalization, share_with: gym.Env | None = None) -> gym.Env:
    """The single-env version of ``normalize_vec_env``. With ``share_with`` (another env
    wrapped here), this env's wrappers use that env's running statistics objects."""
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if norm.obs:
        env = gym.wrappers.NormalizeObservation(env, epsilon=norm.epsilon)
        _fast_statistics(env, "obs_rms")
        if share_with is not None:
            env.obs_rms = find_wrapper(share_with, gym.wrappers.NormalizeObservation).obs_rms
        env = gym.wrappers.TransformObservation(
            env, lambda o: np.clip(o, -norm.obs_clip, norm.obs_clip), env.observation_space)
    if norm.reward:
        env = gym.wrappers.NormalizeReward(env, gamma=norm.gamma, epsilon=norm.epsilon)
        _fast_statistics(env, "return_rms")
        if share_with is not None:
            env.return_rms = find_wrapper(share_with, gym.wrappers.NormalizeReward).return_rms
        env = gym.wrappers.ClipReward(env, -norm.reward_clip, norm.reward_clip)
    return env


def find_wrapper(env, kind):
    """The wrapper of type ``kind`` in ``env``'s chain (single or vector), or None."""
    while env is not None:
        if isinstance(env, kind):
            return env
        env = getattr(env, "env", None)
    return None


@dataclass(frozen=True)
class ObsNormalization:
    """The observation statistics of a run, frozen: what NormalizeObservation and the clip
    after it compute, with these mean and variance and no update. Applied by every
    evaluation (periodic, final, ``--evaluate``, ``load_policy``); saved as obs_rms.npz."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    clip: float

    FILE = "obs_rms.npz"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        normalized = ((obs - self.mean) / np.sqrt(self.var + self.epsilon)).astype(np.float32)
        return np.clip(normalized, -self.clip, self.clip)

    @classmethod
    def of(cls, envs, norm: Normalization) -> "ObsNormalization | None":
        """A frozen copy of the statistics in ``envs`` now; None without observation normalization."""
        wrapper = find_wrapper(envs, (gym.wrappers.NormalizeObservation, vector_wrappers.NormalizeObservation))
        if wrapper is None:
            return None
        return cls(wrapper.obs_rms.mean.copy(), wrapper.obs_rms.var.copy(), norm.epsilon, norm.obs_clip)

    def save(self, path) -> None:
        with open(path, "wb") as f:
            np.savez(f, mean=self.mean, var=self.var, epsilon=self.epsilon, clip=self.clip)

    @classmethod
    def load(cls, path) -> "ObsNormalization":
        with np.load(path) as data:
            return cls(data["mean"], data["var"], float(data["epsilon"]), float(data["clip"]))


class AutoresetTracker:
    """Book-keeping for a next-step-autoreset vector env.

    After an episode ends at step t, the env's step t + 1 is a reset: the
    action is ignored, the reward is 0, and the observation is the first of a
    new episode. ``step`` returns ``valid``, False exactly at those reset
    steps, so they count neither as transitions nor towards ``global_step``.
    It also accumulates each episode's return and length and hands finished
    episodes back as (return, length, env_index) tuples.
    """

    def __init__(self, num_envs: int):
        self.prev_done = np.zeros(num_envs, dtype=bool)
        self.episode_return = np.zeros(num_envs, dtype=np.float64)
        self.episode_length = np.zeros(num_envs, dtype=np.int64)

    def step(self, rewards, terminated, truncated):
        valid = ~self.prev_done
        self.episode_return[valid] += np.asarray(rewards, dtype=np.float64)[valid]
        self.episode_length[valid] += 1
        done = np.logical_or(terminated, truncated) & valid
        finished = [
            (float(self.episode_return[i]), int(self.episode_length[i]), int(i))
            for i in np.flatnonzero(done)
        ]
        self.episode_return[done] = 0.0
        self.episode_length[done] = 0
        self.prev_done = done
        return valid, finished


def run_episodes(envs: list[gym.Env], act, seeds=None):
    """Run one episode in each of ``envs`` side by side, batching ``act`` calls.

    ``act`` maps observations (n_active, obs_dim) to actions (n_active,), or
    (n_active, action_dim) for Box actions, which reach ``env.step`` clipped to
    the bounds (``env_action``) while ``actions`` records them as sampled.
    ``seeds`` (one per env, or None to continue each env's RNG) seed the
    resets. Returns a list, one entry per env, of dicts with numpy arrays
    ``obs``, ``actions``, ``rewards``, the ``final_obs`` the episode ended
    on, ``terminated`` and ``truncated`` flags, and ``return``: the sum of the
    rewards, or, in an env wrapped by ``normalize_env``, the environment's own
    return that RecordEpisodeStatistics saw under the reward scaling. No
    autoreset is involved, so every recorded step is a real transition.
    """
    n = len(envs)
    seeds = [None] * n if seeds is None else list(seeds)
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    traj = [{"obs": [], "actions": [], "rewards": []} for _ in range(n)]
    active = list(range(n))
    while active:
        batch = np.stack([obs[i] for i in active]).astype(np.float32)
        actions = np.asarray(act(batch))
        still = []
        for k, i in enumerate(active):
            a = actions[k]
            next_obs, r, term, trunc, info = envs[i].step(env_action(a, envs[i].action_space))
            traj[i]["obs"].append(obs[i])
            traj[i]["actions"].append(a)
            traj[i]["rewards"].append(float(r))
            obs[i] = next_obs
            if term or trunc:
                if "episode" in info:
                    traj[i]["return"] = float(info["episode"]["r"])
                traj[i]["final_obs"] = np.asarray(next_obs, dtype=np.float32)
                traj[i]["terminated"] = bool(term)
                traj[i]["truncated"] = bool(trunc) and not term
            else:
                still.append(i)
        active = still
    out = []
    for t in traj:
        rewards = np.asarray(t["rewards"], dtype=np.float64)
        out.append({
            "obs": np.asarray(t["obs"], dtype=np.float32),
            "actions": np.asarray(t["actions"]),
            "rewards": rewards,
            "return": t.get("return", rewards.sum()),
            "final_obs": t["final_obs"],
            "terminated": t["terminated"],
            "truncated": t["truncated"],
        })
    return out
