"""The protocol's files: fixed-header CSVs flushed per row, atomic JSON, run metadata."""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

EPISODE_COLUMNS = ["global_step", "train_time_s", "episode", "return", "length"]
UPDATE_COLUMNS = [
    "update", "global_step", "train_time_s", "policy_loss", "value_loss",
    "entropy", "approx_kl", "grad_norm", "learning_rate", "explained_variance",
]
EVAL_COLUMNS = ["global_step", "train_time_s", "mean_return", "std_return", "episodes"]
SUMMARY_KEYS = [
    "algo", "env_id", "seed", "status", "total_steps", "train_time_s", "solved",
    "steps_to_solve", "time_to_solve_s", "final_eval_mean", "final_eval_std",
    "final_eval_episodes", "last100_train_return", "error",
]


def _cell(value) -> str:
    """CSV cell: None (a column that does not apply) is empty, never 0."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


class CsvLog:
    """A CSV whose header is fixed at creation; each row is flushed to the OS.

    Rows hold exactly the header's keys; an unknown key is a programming
    error (raises), a missing one is written empty.
    """

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self._file.flush()

    def write(self, **row) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path.name}: columns {sorted(unknown)} not in header")
        self._writer.writerow([_cell(row.get(c)) for c in self.columns])
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return value


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(data), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_commit(repo_dir: Path | None = None) -> str | None:
    """The commit of the code being run (with '-dirty' if the tree has changes), or None."""
    repo_dir = Path(repo_dir or Path(__file__).resolve().parent.parent)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir, capture_output=True, text=True, timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict:
    import gymnasium
    import numpy
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": numpy.__version__,
    }


def read_summary(run_dir: Path) -> dict | None:
    """A run folder's summary.json, or None if it is missing, unreadable or not an object."""
    try:
        data = read_json(Path(run_dir) / "summary.json")
    # json's decoder recurses once per nesting level: '[' * 10**5 is a RecursionError
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def is_completed(run_dir: Path) -> bool:
    """Whether a run folder holds a completed run (the runner refuses to overwrite it,
    the orchestrator skips it)."""
    summary = read_summary(run_dir)
    return summary is not None and summary.get("status") == "completed"


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_toml(path: Path, error=ValueError, prefix: str = "") -> dict:
    """A TOML data file of the suite (presets, suites, references) as a dict; an unreadable or
    malformed file raises ``error`` with one line, ``prefix`` in front (e.g. "argument --presets: ")."""
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise error(f"{prefix}cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{prefix}{path} is not valid TOML: {exc}") from None
