"""Box actions: what the loss sees, what env.step sees, what evaluation sees; normalization
saved with the model; the presets file."""
from __future__ import annotations

import re
import tomllib

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import learning_seed, read_run, run_dir, run_script
from rlsuite import algorithms
from rlsuite.distributions import Actor
from rlsuite.envs import ObsNormalization, make_vec_env, run_episodes
from rlsuite.evaluation import greedy_policy, load_policy
from rlsuite.rollout import Rollout


class _FarMean(torch.nn.Module):
    """A policy net whose Gaussian mean is 5, far outside Pendulum's [-2, 2] torque bound."""

    def forward(self, obs):
        return torch.full((*obs.shape[:-1], 1), 5.0)


class _RecordVecActions(gym.vector.VectorWrapper):
    def __init__(self, envs):
        super().__init__(envs)
        self.seen = []

    def step(self, actions):
        self.seen.append(np.array(actions, copy=True))
        return self.env.step(actions)


class _RecordActions(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.seen = []

    def step(self, action):
        self.seen.append(np.array(action, copy=True))
        return self.env.step(action)


class _NoRun:
    def log_episode(self, *args, **kwargs):
        pass


def test_rollout_steps_the_env_with_clipped_actions_and_keeps_the_sampled_ones_for_the_loss():
    torch.manual_seed(0)
    actor = Actor(_FarMean(), action_dim=1)
    envs = _RecordVecActions(make_vec_env("Pendulum-v1", 2, seed=0))
    rollout = Rollout(envs, num_steps=16, num_envs=2, obs_dim=3, seed=0)
    rollout.collect(actor, _NoRun(), 0)
    seen = np.concatenate(envs.seen)
    assert seen.min() >= -2.0 and seen.max() <= 2.0 and (seen == 2.0).mean() > 0.9
    batch = rollout.batch(torch.nn.Linear(3, 1), gamma=0.99, gae_lambda=0.95)
    assert batch.actions.shape == (32, 1) and batch.actions.dtype == torch.float32
    assert (batch.actions > 2.0).float().mean() > 0.9  # stored as sampled, around the mean 5
    # the log-prob the losses use is that of the unclipped action, N(a; 5, 1)
    expected = -0.5 * (batch.actions[:, 0] - 5.0) ** 2 - 0.5 * np.log(2 * np.pi)
    torch.testing.assert_close(actor.dist(batch.obs).log_prob(batch.actions), expected)


def test_reinforce_episodes_record_sampled_actions_and_step_the_env_clipped():
    torch.manual_seed(0)
    actor = Actor(_FarMean(), action_dim=1)
    env = _RecordActions(gym.make("Pendulum-v1", max_episode_steps=20))

    def sample(obs):
        with torch.no_grad():
            return actor.dist(torch.as_tensor(obs)).sample().numpy()

    (ep,) = run_episodes([env], sample, seeds=[0])
    assert ep["actions"].shape == (20, 1) and (ep["actions"] > 2.0).mean() > 0.9
    seen = np.array(env.seen)
    np.testing.assert_array_equal(seen, np.clip(ep["actions"], -2.0, 2.0))


def test_greedy_action_is_the_clipped_mean():
    act = greedy_policy(Actor(_FarMean(), action_dim=1), action_bounds=(np.float32([-2]), np.float32([2])))
    np.testing.assert_array_equal(act(np.zeros((3, 3), np.float32)), np.full((3, 1), 2.0, np.float32))


@pytest.mark.parametrize("algo", algorithms.NAMES)
def test_every_algorithm_builds_a_gaussian_actor_for_box_actions(algo):
    entry = algorithms.get(algo)
    cfg = entry.config_class()()
    actor = entry.module().build_actor(3, None, cfg, action_dim=2)
    dist = actor.dist(torch.zeros(4, 3))
    assert dist.sample().shape == (4, 2) and dist.log_prob(torch.zeros(4, 2)).shape == (4,)
    torch.testing.assert_close(actor.log_std.detach(), torch.zeros(2))


def test_frozen_obs_normalization_matches_the_training_wrapper():
    """Evaluation applies the saved statistics exactly as NormalizeObservation + the clip did."""
    from rlsuite.envs import Normalization, find_wrapper

    norm = Normalization(obs=True, obs_clip=0.5)
    envs = make_vec_env("Pendulum-v1", 2, seed=0, norm=norm)
    for _ in range(30):
        envs.step(envs.action_space.sample())
    frozen = ObsNormalization.of(envs, norm)
    wrapper = find_wrapper(envs, gym.wrappers.vector.NormalizeObservation)
    wrapper.update_running_mean = False
    raw = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32) * 3
    np.testing.assert_array_equal(frozen(raw), np.clip(wrapper.observations(raw), -0.5, 0.5))
    assert np.abs(frozen(raw)).max() <= 0.5


def test_a_normalized_run_evaluates_the_same_in_a_fresh_process(results):
    """Normalization on: obs_rms.npz saved, raw returns logged, --evaluate reproduces the final eval."""
    proc = run_script("ppo_benchmark.py", "--env", "Pendulum-v1", "--total-steps", 2048, "--num-envs", 2,
                      "--num-steps", 512, "--norm-obs", "--norm-reward", "--eval-every", 1024,
                      "--eval-episodes", 2, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    path = run_dir(results, "ppo", env_id="Pendulum-v1")
    run = read_run(path)
    assert run["config"]["hyperparameters"]["norm_obs"] is True
    stats = ObsNormalization.load(path / "obs_rms.npz")
    assert not np.allclose(stats.mean, 0.0)
    # raw Pendulum returns are in [-16.3 * 200, 0]; an untrained policy scores about -1000,
    # while the scaled rewards (clipped to 10, divided by the return's std) sum to a few tens
    assert run["episodes"]["return"].mean() < -300
    again = run_script("ppo_benchmark.py", "--evaluate", path)
    assert again.returncode == 0, again.stderr
    printed = re.search(r"greedy episodes: (-?[\d.]+) ± ([\d.]+)", again.stdout)
    summary = run["summary"]
    assert printed.groups() == (f"{summary['final_eval_mean']:.1f}", f"{summary['final_eval_std']:.1f}")
    # and load_policy() in this process, on the final evaluation's first start state
    act = load_policy(path)
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=1_000_000 + 1 * 1_000)
    action = act(np.asarray(obs, np.float32)[None])
    assert action.shape == (1, 1) and -2.0 <= action[0, 0] <= 2.0


# -- presets -------------------------------------------------------------------

def test_every_preset_entry_is_valid_and_names_its_source():
    from rlsuite.presets import PRESETS_FILE, check_entry, read_presets

    data = read_presets(PRESETS_FILE)
    assert set(data) <= set(algorithms.NAMES)
    for algo, tables in data.items():
        config_cls = algorithms.get(algo).config_class()
        assert "CartPole-v1" not in tables, "CartPole-v1 runs the dataclass defaults"
        for env_id, table in tables.items():
            assert env_id in gym.registry, env_id
            check_entry(PRESETS_FILE, algo, env_id, table, config_cls)  # raises on any problem


def test_the_issue_envs_have_a_preset_for_every_algorithm():
    data = tomllib.loads((algorithms.ROOT / "presets.toml").read_text())
    envs = {"Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3", "BipedalWalker-v3",
            "InvertedPendulum-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5",
            "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"}
    for algo in algorithms.NAMES:
        assert envs <= set(data[algo]), algo


def _parse(argv, algo="ppo"):
    from rlsuite.cli import parse_args

    entry = algorithms.get(algo)
    return parse_args(argv, f"{algo}_benchmark.py", algo, entry.config_class())


def test_env_picks_its_preset_and_flags_override_it(tmp_path):
    presets = tmp_path / "p.toml"
    presets.write_text('[ppo."Pendulum-v1"]\nsource = "tuned here: test"\ngamma = 0.9\nlearning_rate = 1e-3\n')
    args, cfg = _parse(["--env", "Pendulum-v1", "--presets", str(presets), "--learning-rate", "5e-4"])
    assert (cfg.gamma, cfg.learning_rate) == (0.9, 5e-4)
    assert args.preset.record()["values"] == {"gamma": 0.9, "learning_rate": 1e-3}
    assert args.preset.source == "tuned here: test"


def test_an_env_without_a_preset_runs_the_dataclass_defaults(tmp_path):
    import ppo
    from rlsuite.presets import PRESETS_FILE, read_presets

    env_id = "CartPole-v0"  # registered and discrete, with no entry in presets.toml
    assert env_id not in read_presets(PRESETS_FILE).get("ppo", {})
    args, cfg = _parse(["--env", env_id])
    assert args.preset is None and cfg == ppo.PPOConfig()
    args, cfg = _parse([])  # CartPole-v1: no entry, today's defaults exactly
    assert args.preset is None and cfg == ppo.PPOConfig()


@pytest.mark.parametrize("text,fragment", [
    ('[ppo."Pendulum-v1"]\nsource = "x"\nlr = 1e-3\n', "unknown field 'lr'"),
    ('[ppo."Pendulum-v1"]\ngamma = 0.9\n', "needs source"),
    ('[ppo."Pendulum-v1"]\nsource = "x"\ngamma = "high"\n', "gamma: expected a finite number"),
    ('[ppo."Pendulum-v1"]\nsource = "x"\ngamma = 1.5\n', "must be in [0, 1]"),
    ('[ppo."Pendulum-v1"\n', "not valid TOML"),
])
def test_a_bad_preset_entry_is_one_line_naming_the_file_and_entry(tmp_path, text, fragment):
    from conftest import assert_usage_error

    presets = tmp_path / "bad.toml"
    presets.write_text(text)
    proc = run_script("ppo_benchmark.py", "--env", "Pendulum-v1", "--presets", presets,
                      "--results-dir", tmp_path / "r")
    assert_usage_error(proc, fragment, str(presets))
    if "TOML" not in fragment:
        assert '[ppo."Pendulum-v1"]' in proc.stderr
    assert not (tmp_path / "r").exists()


# -- learning ------------------------------------------------------------------

@pytest.mark.slow
def test_ppo_learns_pendulum(results):
    """PPO at rl-zoo's Pendulum-v1 settings, a shortened budget: the greedy policy must beat the
    untrained one (about -1200) by a wide margin. Checked on seeds 1-5 (docs/06_ppo.md)."""
    seed = learning_seed(1)
    proc = run_script("ppo_benchmark.py", "--env", "Pendulum-v1", "--seed", seed, "--total-steps", LEARN_STEPS,
                      "--eval-every", 100_000, "--results-dir", results, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = read_run(run_dir(results, "ppo", seed, "Pendulum-v1"))["summary"]
    assert summary["final_eval_mean"] > LEARN_THRESHOLD, summary


@pytest.mark.slow
def test_ppo_learns_pendulum_with_gsde(results):
    """rl-zoo's own PPO Pendulum-v1 entry, gSDE included (gamma 0.9, new noise matrices every 4 steps),
    at the same shortened budget and bar as above: the state-dependent exploration learns too."""
    seed = learning_seed(1)
    proc = run_script("ppo_benchmark.py", "--env", "Pendulum-v1", "--seed", seed, "--total-steps", LEARN_STEPS,
                      "--gamma", 0.9, "--use-sde", "--sde-sample-freq", 4,
                      "--eval-every", 100_000, "--results-dir", results, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = read_run(run_dir(results, "ppo", seed, "Pendulum-v1"))
    assert run["config"]["hyperparameters"]["use_sde"] is True
    assert run["summary"]["final_eval_mean"] > LEARN_THRESHOLD, run["summary"]


def test_a3c_runs_with_gsde_and_saves_its_noise_scale_matrix(results):
    """A3C's workers act with gSDE (a noise matrix drawn per segment) and the run saves the
    (features x action_dim) log sigma that goes with it; its evaluation is the mean's."""
    proc = run_script("a3c_benchmark.py", "--env", "Pendulum-v1", "--total-steps", 2000, "--num-workers", 1,
                      "--num-steps", 16, "--use-sde", "--sde-sample-freq", 4, "--eval-every", 1000,
                      "--eval-episodes", 2, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    path = run_dir(results, "a3c", 1, "Pendulum-v1")
    run = read_run(path)
    assert run["config"]["hyperparameters"]["use_sde"] is True
    assert run["summary"]["status"] == "completed" and run["summary"]["total_steps"] == 2000
    assert tuple(torch.load(path / "model.pt")["log_std"].shape) == (64, 1)
    act = load_policy(path)
    assert np.array_equal(act(np.zeros((3, 3), dtype=np.float32)), act(np.zeros((3, 3), dtype=np.float32)))


LEARN_STEPS = 49_152
LEARN_THRESHOLD = -700.0
