"""Autoreset masking, truncation versus termination, seeded envs, normalization statistics."""
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers.utils import RunningMeanStd as GymRunningMeanStd

from rlsuite.envs import (AutoresetTracker, EnvError, Normalization, RunningMeanStd, describe_env, find_wrapper,
                          make_env, make_vec_env, normalize_env, run_episodes)


def test_tracker_masks_the_reset_step_after_an_episode_end():
    tracker = AutoresetTracker(num_envs=2)
    f = np.array([False, False])
    # env 0 ends at step 1 (terminated), env 1 at step 2 (truncated)
    steps = [
        (np.array([1.0, 1.0]), f, f),
        (np.array([1.0, 1.0]), np.array([True, False]), f),
        (np.array([0.0, 1.0]), f, np.array([False, True])),  # env 0: reset step, reward 0
        (np.array([1.0, 0.0]), f, f),                        # env 1: reset step
    ]
    valids, finished = [], []
    for rewards, term, trunc in steps:
        valid, done = tracker.step(rewards, term, trunc)
        valids.append(valid.copy())
        finished.extend(done)
    np.testing.assert_array_equal(np.array(valids), [[1, 1], [1, 1], [0, 1], [1, 0]])
    assert finished == [(2.0, 2, 0), (3.0, 3, 1)]
    # the new episodes have begun counting only their real steps
    assert tracker.episode_length.tolist() == [1, 0]


def test_vector_env_truncation_is_not_termination_and_next_step_is_a_reset():
    envs = gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="vector_entry_point",
                        max_episode_steps=3)
    envs.reset(seed=0)
    tracker = AutoresetTracker(1)
    record = []
    for _ in range(4):
        # alternate actions so the pole does not fall within 3 steps
        obs, r, term, trunc, _ = envs.step(np.array([len(record) % 2]))
        valid, finished = tracker.step(r, term, trunc)
        record.append((float(r[0]), bool(term[0]), bool(trunc[0]), bool(valid[0]), finished))
    assert [x[2] for x in record] == [False, False, True, False]   # truncated at step 3
    assert not any(x[1] for x in record)                          # never terminated
    assert [x[3] for x in record] == [True, True, True, False]    # step 4 is the reset
    assert record[3][0] == 0.0
    assert record[2][4] == [(3.0, 3, 0)]


def test_run_episodes_reports_truncation_with_the_final_observation():
    env = gym.make("CartPole-v1", max_episode_steps=4)
    (ep,) = run_episodes([env], lambda obs: np.zeros(len(obs), dtype=np.int64), seeds=[0])
    # constant action 0 for 4 steps does not tip the pole over 12 degrees from a near-upright start
    assert ep["truncated"] and not ep["terminated"]
    assert len(ep["rewards"]) == 4 and ep["obs"].shape == (4, 4)
    assert ep["final_obs"].shape == (4,)
    assert not np.allclose(ep["final_obs"], ep["obs"][-1])


def test_run_episodes_is_seeded():
    act = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    a = run_episodes([make_env("CartPole-v1")], act, seeds=[5])[0]
    b = run_episodes([make_env("CartPole-v1")], act, seeds=[5])[0]
    np.testing.assert_array_equal(a["obs"], b["obs"])


def test_make_vec_env_is_seeded():
    a = make_vec_env("CartPole-v1", 4, seed=3).reset(seed=3)[0]
    b = make_vec_env("CartPole-v1", 4, seed=3).reset(seed=3)[0]
    np.testing.assert_array_equal(a, b)


def test_describe_env_reads_spaces_and_threshold():
    info = describe_env("CartPole-v1")
    assert (info.obs_dim, info.n_actions, info.reward_threshold) == (4, 2, 475.0)


def test_describe_env_reads_box_actions_dimension_and_bounds():
    info = describe_env("Pendulum-v1")
    assert (info.obs_dim, info.n_actions, info.action_dim) == (3, None, 1)
    assert (info.action_low, info.action_high) == ((-2.0,), (2.0,))


@pytest.mark.parametrize("env_id,fragment", [
    ("CartPol-v1", "did you mean CartPole-v1"),
])
def test_describe_env_rejects_with_one_clear_line(env_id, fragment):
    with pytest.raises(EnvError) as err:
        describe_env(env_id)
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("env_id,fragment", [
    ("ActionsFromOne-v0", "actions numbered from 0"),
    ("NoObservation-v0", "at least one dimension"),
    ("NeedsMissingLibrary-v0", "cannot be created here"),
    ("MatrixActions-v0", "a flat Box"),
])
def test_describe_env_refuses_spaces_that_would_fail_mid_run(env_id, fragment):
    import weird_envs  # noqa: F401  (registers the ids)

    with pytest.raises(EnvError) as err:
        describe_env(env_id)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_mujoco_compiler_warning_is_printed_once_not_per_env(capfd):
    # HalfCheetah-v5's model warns ('settotalmass' is deprecated) each time mujoco 4
    # compiles it, and every evaluation builds its envs anew.
    for _ in range(3):
        make_env("HalfCheetah-v5").close()
    make_vec_env("HalfCheetah-v5", 2, seed=0).close()
    assert capfd.readouterr().err.count("settotalmass") <= 1


def test_the_single_sample_shortcut_keeps_gymnasiums_statistics_to_the_bit(monkeypatch):
    rng = np.random.default_rng(0)
    for dtype, shape in ((np.float32, (3,)), (np.float64, (11,)), (np.float64, ())):
        ours, theirs = RunningMeanStd(shape=shape, dtype=dtype), GymRunningMeanStd(shape=shape, dtype=dtype)
        batches = [rng.normal(5.0, 3.0, (1, *shape)).astype(dtype) for _ in range(50)]
        batches += [rng.normal(size=(4, *shape)).astype(dtype), rng.normal(size=(1, *shape)).astype(dtype) * 1e6]
        for x in batches:
            ours.update(x)
            theirs.update(x)
            assert ours.count == theirs.count
            assert ours.mean.dtype == theirs.mean.dtype and np.array_equal(ours.mean, theirs.mean)
            assert np.array_equal(ours.var, theirs.var)
    # a row that is not finite gives np.var's NaN, not 0
    ours, theirs = RunningMeanStd(shape=(2,)), GymRunningMeanStd(shape=(2,))
    x = np.array([[np.inf, 1.0]])
    with np.errstate(invalid="ignore"):
        ours.update(x)
        theirs.update(x)
    assert np.array_equal(ours.var, theirs.var, equal_nan=True) and np.isnan(ours.var[0])

    def no_reduction(*args, **kwargs):
        raise AssertionError("a one-row batch went through np.mean / np.var")
    monkeypatch.setattr(np, "mean", no_reduction)
    monkeypatch.setattr(np, "var", no_reduction)
    RunningMeanStd(shape=(3,)).update(np.ones((1, 3)))  # the shortcut: no reduction
    with pytest.raises(AssertionError):
        GymRunningMeanStd(shape=(3,)).update(np.ones((1, 3)))


def test_normalized_envs_use_the_shortcut_and_step_as_gymnasiums_wrappers_do():
    norm = Normalization(obs=True, reward=True)
    ours = normalize_env(make_env("Pendulum-v1"), norm)
    assert isinstance(find_wrapper(ours, gym.wrappers.NormalizeObservation).obs_rms, RunningMeanStd)
    assert isinstance(find_wrapper(ours, gym.wrappers.NormalizeReward).return_rms, RunningMeanStd)
    theirs = gym.wrappers.ClipReward(gym.wrappers.NormalizeReward(gym.wrappers.TransformObservation(
        gym.wrappers.NormalizeObservation(gym.wrappers.RecordEpisodeStatistics(make_env("Pendulum-v1"))),
        lambda o: np.clip(o, -10.0, 10.0), None), gamma=0.99), -10.0, 10.0)
    ours.reset(seed=1)
    theirs.reset(seed=1)
    actions = np.random.default_rng(1).uniform(-2, 2, (300, 1)).astype(np.float32)
    for a in actions:
        o1, r1, *_ = ours.step(a)
        o2, r2, *_ = theirs.step(a)
        assert np.array_equal(o1, o2) and r1 == r2
    vec = make_vec_env("Pendulum-v1", 1, 0, norm)
    assert isinstance(find_wrapper(vec, gym.wrappers.vector.NormalizeObservation).obs_rms, RunningMeanStd)
    vec.close()


def test_the_normalized_step_benchmark_runs_and_finds_both_paths_identical():
    script = Path(__file__).resolve().parent.parent / "bench" / "normalize_step.py"
    proc = subprocess.run([sys.executable, str(script), "--envs", "Pendulum-v1", "--steps", "300", "--rounds", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "identical observations and rewards: True" in proc.stdout
