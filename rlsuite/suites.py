"""Named benchmark suites (suites.toml) and the throughput table the wall-time estimates use.

A suite maps each of its Gymnasium ids to the seeds that env runs; a suite made of
other suites keeps each member's seeds. The throughput table holds timed runs per
(algorithm, env): environment steps and the wall seconds of the whole run as the
orchestrator times it (start-up, training, periodic and final evaluations), from which
``wall_model`` fits a fixed cost per run plus a cost per step. The orchestrator adds
every finished run to ``<results-dir>/throughput.json``; ``throughput.json`` at the top
of the repository is the table measured on the suite's reference machine (2 cores),
the fallback for pairs the results tree has not timed yet.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from rlsuite.cli import UsageError, parse_seeds
from rlsuite.records import read_toml

ROOT = Path(__file__).resolve().parent.parent
SUITES_FILE = ROOT / "suites.toml"
THROUGHPUT_FILE = "throughput.json"
SHIPPED_THROUGHPUT = ROOT / THROUGHPUT_FILE
RECENT_RUNS = 10  # a pair's estimate is over its last this-many timed runs


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    env_seeds: dict  # env id -> list of seeds, in the suite's order
    members: tuple = ()  # the suites a composite suite is made of; () for a plain one

    @property
    def envs(self) -> list[str]:
        return list(self.env_seeds)


def load_suites(path: Path = SUITES_FILE) -> dict[str, Suite]:
    """Every suite of the file, checked; a problem is one UsageError line naming the suite."""
    path = Path(path)
    data = read_toml(path, UsageError, "argument --suite: ")
    suites: dict[str, Suite] = {}

    def build(name: str, seen: tuple) -> Suite:
        if name in suites:
            return suites[name]
        where = f"{path} [{name}]"
        if name in seen:
            raise UsageError(f"{where}: suites include each other ({' -> '.join(seen + (name,))})")
        table = data.get(name)
        if not isinstance(table, dict):
            raise UsageError(f"{where}: no such suite; suites: {', '.join(data)}")
        unknown = set(table) - {"description", "envs", "seeds", "suites"}
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                             "fields: description, envs, seeds, suites")
        env_seeds: dict[str, list[int]] = {}
        if "suites" in table:
            if "envs" in table or not isinstance(table["suites"], list) or not table["suites"]:
                raise UsageError(f"{where}: give either envs and seeds, or a non-empty list suites")
            for member in table["suites"]:
                for env_id, seeds in build(str(member), seen + (name,)).env_seeds.items():
                    env_seeds.setdefault(env_id, seeds)
        else:
            envs, seeds = table.get("envs"), table.get("seeds")
            if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
                raise UsageError(f"{where}: envs must be a non-empty list of Gymnasium ids")
            if not isinstance(seeds, str):
                raise UsageError(f'{where}: seeds must be a string like "1-5"')
            try:
                parsed = parse_seeds(seeds)
            except UsageError as exc:
                raise UsageError(f"{where}: {str(exc).removeprefix('argument --seeds: ')}") from None
            env_seeds = {env_id: parsed for env_id in envs}
        suite = Suite(name, str(table.get("description", "")), env_seeds,
                      tuple(str(m) for m in table.get("suites", ())))
        suites[name] = suite
        return suite

    for name in data:
        build(name, ())
    return suites


def get_suite(name: str, path: Path = SUITES_FILE) -> Suite:
    suites = load_suites(path)
    if name not in suites:
        raise UsageError(f"argument --suite: unknown suite {name!r}; choose from {', '.join(suites)}")
    return suites[name]


# -- throughput ------------------------------------------------------------------------

def _read_table(path: Path) -> dict:
    """{"algo/env": [[steps, wall_s], ...]}; a missing or unreadable file is an empty table."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs_by_pair = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs_by_pair, dict):
        return {}
    table = {}
    for key, runs in runs_by_pair.items():
        good = [(float(r[0]), float(r[1])) for r in (runs if isinstance(runs, list) else [])
                if isinstance(r, list) and len(r) == 2 and _positive(r[0]) and _positive(r[1])]
        if good:
            table[key] = good
    return table


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def wall_model(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Fit ``wall = overhead + steps / rate`` to one pair's timed runs ``[(steps, wall_s)]``.

    The overhead is what a run costs whatever its budget: interpreter and env start-up and
    the final 100-episode evaluation, seconds that a 20k-step run spends as well as a 1M-step
    one. Least squares over the runs, when they have at least two different budgets and the
    fit is sensible (overhead >= 0, else a line through the origin; rate > 0); otherwise the
    plain ratio of all steps to all seconds, which charges the overhead to the steps.
    Returns (overhead_s, steps_per_s)."""
    ratio = (0.0, sum(s for s, _ in runs) / sum(w for _, w in runs))
    if len({s for s, _ in runs}) < 2:
        return ratio
    mean_s = sum(s for s, _ in runs) / len(runs)
    mean_w = sum(w for _, w in runs) / len(runs)
    sxx = sum((s - mean_s) ** 2 for s, _ in runs)
    per_step = sum((s - mean_s) * (w - mean_w) for s, w in runs) / sxx
    overhead = mean_w - per_step * mean_s
    if overhead < 0:
        overhead, per_step = 0.0, sum(s * w for s, w in runs) / sum(s * s for s, _ in runs)
    if per_step <= 0:
        return ratio
    return overhead, 1.0 / per_step


class Throughput:
    """Steps per second of wall time per (algorithm, env), from the results tree's own
    timed runs where it has them, else from the shipped table."""

    def __init__(self, results_dir: Path | None = None, shipped: Path = SHIPPED_THROUGHPUT):
        self.path = Path(results_dir) / THROUGHPUT_FILE if results_dir is not None else None
        self.shipped = _read_table(shipped)
        self.measured = _read_table(self.path) if self.path is not None else {}

    def wall_model(self, algo: str, env_id: str) -> tuple[float, float] | None:
        """(overhead_s, steps_per_s) of the pair (see ``wall_model``), or None if never timed."""
        runs = self.measured.get(f"{algo}/{env_id}") or self.shipped.get(f"{algo}/{env_id}")
        return wall_model(runs) if runs else None

    def steps_per_s(self, algo: str, env_id: str) -> float | None:
        model = self.wall_model(algo, env_id)
        return None if model is None else model[1]

    def estimate_s(self, algo: str, env_id: str, steps: int) -> float | None:
        model = self.wall_model(algo, env_id)
        return None if model is None else model[0] + steps / model[1]

    def add(self, algo: str, env_id: str, steps: int, wall_s: float) -> None:
        """Record one finished run and rewrite the results tree's table (atomically).

        The file is read again under a lock and the run added to what it holds then, so
        two orchestrators sharing a results tree (another suite, a grid) keep each
        other's runs instead of the last writer's copy winning."""
        if self.path is None or not (_positive(steps) and _positive(wall_s)):
            return
        key = f"{algo}/{env_id}"
        with _locked(self.path.with_name(self.path.name + ".lock")):
            table = _read_table(self.path)
            table[key] = (table.get(key, []) + [(float(steps), float(wall_s))])[-RECENT_RUNS:]
            write_table(self.path, table)
        self.measured = table


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive flock on ``path`` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_table(path: Path, table: dict) -> None:
    payload = {
        "about": "environment steps and wall seconds (the whole run: start-up, training, evaluations) "
                 f"of the last {RECENT_RUNS} timed runs per algorithm/env; rlsuite/suites.py",
        "runs": {k: [[round(s), round(w, 1)] for s, w in v] for k, v in sorted(table.items())},
    }
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def merge_tables(paths, out: Path) -> int:
    """Merge the throughput tables of several results trees into ``out`` (how the shipped
    table is made). Returns the number of (algorithm, env) pairs written."""
    merged: dict = _read_table(out)
    for path in paths:
        for key, runs in _read_table(path).items():
            merged[key] = (merged.get(key, []) + runs)[-RECENT_RUNS:]
    write_table(out, merged)
    return len(merged)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
