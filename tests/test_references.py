"""references.toml and random_scores.json: every entry checked, bad entries refused by name,
the reference lookup, the random-policy measurement and its command's bad-input handling."""
from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import pytest

from conftest import ROOT, assert_usage_error
from rlsuite.algorithms import NAMES
from rlsuite.scores import (REFERENCES_FILE, Reference, load_random_scores, load_references,
                            measure_random, reference_for)

GOOD = """
[[reference]]
env = "CartPole-v1"
algo = "ppo"
library = "test lib"
env_version = "CartPole-v1"
mean = 500.0
std = 0.0
budget = 100_000
seeds = 1
metric = "mean return of the final policy"
url = "https://example.org/table"
"""


def write(tmp_path, text: str):
    path = tmp_path / "references.toml"
    path.write_text(text, encoding="utf-8")
    return path


def family(env_id: str) -> tuple:
    """(namespace, name) of an id: CartPole-v1 and CartPole-v0 are one family."""
    namespace, name, _ = gym.envs.registration.parse_env_id(env_id)
    return namespace, name


def test_references_file_loads_and_every_entry_validates():
    refs = load_references()
    assert refs and all(isinstance(r, Reference) for r in refs)
    assert REFERENCES_FILE == ROOT / "references.toml"
    for r in refs:
        assert r.algo in NAMES
        assert r.url.startswith("https://")
        assert r.budget >= 1 and (r.seeds is None or r.seeds >= 1)
        assert r.std is None or r.std >= 0


def test_every_reference_env_is_registered_and_measured_on_the_same_family():
    registered = {family(env_id) for env_id in gym.registry}
    for r in load_references():
        assert r.env in gym.registry, r
        # the figure may come from an older version (LunarLander-v2), never from another task
        assert family(r.env_version) == family(r.env), r
        assert family(r.env_version) in registered, r


def test_the_issue_figures_are_the_published_ones():
    refs = load_references()
    cleanrl = {r.env: r for r in refs if r.library == "CleanRL ppo_continuous_action"}
    assert cleanrl["HalfCheetah-v5"].mean == 1442.64 and cleanrl["HalfCheetah-v5"].env_version == "HalfCheetah-v4"
    assert cleanrl["Hopper-v5"].mean == 2382.86
    assert cleanrl["Walker2d-v5"].mean == 2287.95
    assert all(r.budget == 1_000_000 and r.seeds == 3 for r in cleanrl.values())


def test_good_hand_made_file_loads(tmp_path):
    (ref,) = load_references(write(tmp_path, GOOD))
    assert ref.mean == 500.0 and isinstance(ref.mean, float) and ref.note is None
    assert ref.compare_with == "final_eval_mean"  # the default: set beside our final greedy eval
    (ref,) = load_references(write(tmp_path, GOOD + 'compare_with = "last100_train_return"\n'))
    assert ref.compare_with == "last100_train_return"


@pytest.mark.parametrize("text, fragments", [
    (GOOD + 'colour = "blue"\n', ["#1", "CartPole-v1", "unknown field 'colour'"]),
    (GOOD.replace("mean = 500.0\n", ""), ["#1", "missing required field 'mean'"]),
    (GOOD.replace('algo = "ppo"', 'algo = "dqn"'), ["#1", "unknown algorithm 'dqn'", "ppo"]),
    (GOOD.replace("mean = 500.0", 'mean = "500"'), ["mean", "finite number"]),
    (GOOD.replace("budget = 100_000", "budget = 1.5"), ["budget", "positive integer"]),
    (GOOD + 'compare_with = "train"\n', ["#1", "compare_with", "final_eval_mean, last100_train_return"]),
    (GOOD + GOOD, ["#2", "same env, algo, library and budget as entry #1"]),
    ("[reference]\nenv = 1\n", ["array of tables"]),
    ("reference = [", ["not valid TOML"]),
])
def test_bad_entries_are_refused_with_one_message_naming_the_problem(tmp_path, text, fragments):
    with pytest.raises(ValueError) as info:
        load_references(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_reference_for_prefers_the_same_budget_and_is_none_when_absent(tmp_path):
    refs = load_references(write(tmp_path, GOOD + GOOD.replace("100_000", "500_000").replace("test lib", "other")))
    assert reference_for(refs, "CartPole-v1", "ppo", 500_000).library == "other"
    assert reference_for(refs, "CartPole-v1", "ppo", 100_000).library == "test lib"
    assert reference_for(refs, "CartPole-v1", "ppo", 400_000).library == "other"  # the closest budget
    assert reference_for(refs, "CartPole-v1", "ppo").library == "test lib"  # listed first
    assert reference_for(refs, "Pendulum-v1", "ppo") is None
    assert reference_for(refs, "CartPole-v1", "a2c") is None
    real = load_references()
    assert reference_for(real, "CartPole-v1", "ppo", 100_000).library == "rl-zoo (SB3) PPO"
    assert reference_for(real, "HalfCheetah-v5", "ppo", 1_000_000).library == "CleanRL ppo_continuous_action"


def test_measure_random_cartpole_is_plausible_and_deterministic():
    first = measure_random("CartPole-v1", episodes=5, seed=0)
    assert first == measure_random("CartPole-v1", episodes=5, seed=0)
    assert 10 <= first["mean"] <= 40
    assert first["episodes"] == 5 and first["seed"] == 0 and first["std"] >= 0


def test_committed_random_scores_load():
    scores = load_random_scores()
    assert scores["CartPole-v1"]["episodes"] == 100
    assert all(entry["command"].startswith("python -m rlsuite.scores --envs ") for entry in scores.values())


def test_cli_unknown_env_is_one_line_exit_2(tmp_path):
    out = tmp_path / "random.json"
    proc = subprocess.run([sys.executable, "-m", "rlsuite.scores", "--envs", "NoSuchEnv-v0", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert_usage_error(proc, "--envs", "NoSuchEnv-v0")
    assert not out.exists()
