"""Shared test helpers: run a benchmark runner as a user would, read its files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_script(script: str, *args, timeout: float = 600, cwd=None,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python <script> args...`` from the repo root; capture text output (``env``: extra variables)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=env,
    )


def run_dir(results: Path, algo: str, seed: int = 1, env_id: str = "CartPole-v1") -> Path:
    return Path(results) / env_id / algo / f"seed_{seed}"


def read_run(path: Path) -> dict:
    """The protocol's files of one run directory."""
    path = Path(path)
    out = {name: pd.read_csv(path / f"{name}.csv") for name in ("episodes", "updates", "evals")}
    out["summary"] = json.loads((path / "summary.json").read_text())
    out["config"] = json.loads((path / "config.json").read_text())
    return out


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Bad input: exit 2, one line on stderr naming the argument, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_same_seed_same_episodes(tmp_path: Path, algo: str, seed: int, *args, min_episodes: int = 10):
    """Train twice with one seed: episodes.csv identical in every column but train_time_s."""
    frames = []
    for name in ("a", "b"):
        proc = run_script(f"{algo}_benchmark.py", "--seed", seed, *args, "--results-dir", tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        frames.append(read_run(run_dir(tmp_path / name, algo, seed))["episodes"].drop(columns="train_time_s"))
    assert len(frames[0]) > min_episodes
    pd.testing.assert_frame_equal(frames[0], frames[1])


def learning_seed(default: int) -> int:
    """The seed of a learning test: ``default``, or LEARNING_TEST_SEED from the environment.

    Another CPU takes another floating-point path, so a learning test must hold for
    any seed, not one trajectory. Its margin is checked by rerunning the slow tests
    with other seeds: LEARNING_TEST_SEED=7 python -m pytest -m slow -k learns
    """
    return int(os.environ.get("LEARNING_TEST_SEED", default))


@pytest.fixture
def results(tmp_path) -> Path:
    return tmp_path / "results"
