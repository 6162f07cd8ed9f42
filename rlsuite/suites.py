"""Named benchmark suites (suites.toml) and the throughput table the wall-time estimates use.

A suite maps each of its Gymnasium ids to the seeds that env runs; a suite made of
other suites keeps each member's seeds. The throughput table holds timed runs per
(algorithm, env): environment steps, the wall seconds of the whole run as the
orchestrator times it (start-up, training, periodic and final evaluations), and where
known the run's periodic evaluations and training seconds, from which ``wall_model``
estimates a run as a training rate, a cost per evaluation and one per run. The
orchestrator adds every finished run to ``<results-dir>/throughput.json``;
``throughput.json`` at the top
of the repository is the table measured on the suite's reference machine (2 cores),
the fallback for pairs the results tree has not timed yet.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rlsuite.cli import EVAL_EPISODES, EVAL_EVERY, FINAL_EVAL_EPISODES, UsageError, parse_seeds
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
    env_evals: dict = field(default_factory=dict)  # env id -> periodic evaluations per run, where set

    def eval_every(self, env_id: str, budget: int) -> int | None:
        """The --eval-every a run of ``budget`` steps on ``env_id`` gets from the suite: its budget
        spread over the suite's ``evals_per_run``, never closer than the protocol's default;
        None where the suite leaves the runner's default."""
        evals = self.env_evals.get(env_id)
        return None if evals is None else spread_evals(budget, evals)

    @property
    def envs(self) -> list[str]:
        return list(self.env_seeds)


def spread_evals(budget: int, evals: int) -> int:
    """The --eval-every that spreads ``evals`` periodic evaluations over ``budget`` steps,
    never closer than the protocol's default."""
    return max(EVAL_EVERY, budget // evals)


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
        unknown = set(table) - {"description", "envs", "seeds", "suites", "evals_per_run"}
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                             "fields: description, envs, seeds, evals_per_run, suites")
        env_seeds: dict[str, list[int]] = {}
        env_evals: dict[str, int] = {}
        if "suites" in table:
            if "envs" in table or "evals_per_run" in table or not isinstance(table["suites"], list) \
                    or not table["suites"]:
                raise UsageError(f"{where}: give either envs and seeds (and evals_per_run), or a "
                                 "non-empty list suites")
            for member in table["suites"]:
                built = build(str(member), seen + (name,))
                for env_id, seeds in built.env_seeds.items():
                    if env_id not in env_seeds:
                        env_seeds[env_id] = seeds
                        if env_id in built.env_evals:
                            env_evals[env_id] = built.env_evals[env_id]
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
            if "evals_per_run" in table:
                evals = table["evals_per_run"]
                if not _positive(evals) or not isinstance(evals, int):
                    raise UsageError(f"{where}: evals_per_run must be a positive integer")
                env_evals = {env_id: evals for env_id in envs}
        suite = Suite(name, str(table.get("description", "")), env_seeds,
                      tuple(str(m) for m in table.get("suites", ())), env_evals)
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

class TimedRun(NamedTuple):
    """One finished run as the throughput table keeps it."""
    steps: float  # environment steps trained
    wall_s: float  # the whole run process, as the orchestrator timed it
    evals: int | None = None  # periodic evaluations it made (its evals.csv rows)
    train_s: float | None = None  # its summary's train_time_s: training alone


def _read_table(path: Path) -> dict:
    """{"algo/env": [TimedRun, ...]}; a missing or unreadable file is an empty table, and a
    malformed row is left out."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs_by_pair = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs_by_pair, dict):
        return {}
    table = {}
    for key, runs in runs_by_pair.items():
        good = [_row(r) for r in (runs if isinstance(runs, list) else [])]
        good = [r for r in good if r is not None]
        if good:
            table[key] = good
    return table


def _row(r) -> TimedRun | None:
    """A stored run [steps, wall_s], [steps, wall_s, evals] or [steps, wall_s, evals, train_s]
    (evals may be null), checked."""
    if not isinstance(r, list) or not 2 <= len(r) <= 4 or not (_positive(r[0]) and _positive(r[1])):
        return None
    evals = r[2] if len(r) >= 3 else None
    if evals is not None and not (isinstance(evals, int) and not isinstance(evals, bool) and evals >= 0):
        return None
    train_s = r[3] if len(r) == 4 else None
    if train_s is not None and not _positive(train_s):
        return None
    return TimedRun(float(r[0]), float(r[1]), evals, None if train_s is None else float(train_s))


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


class WallModel(NamedTuple):
    overhead_s: float  # per run, whatever its budget: start-up and the final evaluation
    steps_per_s: float  # training (and, where eval_s is None, its periodic evaluations)
    eval_s: float | None  # per periodic evaluation; None where the runs cannot tell it apart

    def estimate_s(self, steps: int, evals: int) -> float:
        return self.overhead_s + steps / self.steps_per_s + (0.0 if self.eval_s is None else evals * self.eval_s)


def wall_model(runs: list) -> WallModel:
    """Fit one pair's timed runs (``TimedRun``s, or ``(steps, wall_s)`` pairs) as
    ``wall = overhead + steps / rate + evals * eval_s``.

    Where runs carry their training time, the rate is steps over training seconds, and the
    rest of each run's wall time (start-up, periodic evaluations, the final 100-episode
    evaluation) is fitted as ``overhead + evals * eval_s`` by least squares when the runs
    made different numbers of evaluations. Runs that all made the same number (a suite's
    full-budget runs: suites.toml, evals_per_run) cannot tell the two apart by a fit, so
    their mean rest is split between the periodic evaluations and the final one in
    proportion to the episodes each plays (EVAL_EPISODES per periodic evaluation,
    FINAL_EVAL_EPISODES final), start-up neglected: seconds against the hundreds their
    evaluations take; runs without periodic evaluations charge the whole rest once per
    run. Older runs without
    their training time fit ``wall = overhead + steps / rate`` over two or more budgets
    (overhead >= 0, else a line through the origin; rate > 0), else the plain ratio of
    all steps to all seconds, which charges the overhead to the steps."""
    runs = [r if isinstance(r, TimedRun) else TimedRun(*r) for r in runs]
    timed = [r for r in runs if r.train_s is not None]
    if timed:
        rate = sum(r.steps for r in timed) / sum(r.train_s for r in timed)
        rest = [(r.evals, max(0.0, r.wall_s - r.train_s)) for r in timed if r.evals is not None]
        if len({n for n, _ in rest}) >= 2:
            evals, rest_s = zip(*rest)
            overhead, per_eval = _fit_line(evals, rest_s)
            if per_eval < 0:
                overhead, per_eval = float(np.mean(rest_s)), 0.0
            return WallModel(overhead, rate, per_eval)
        mean_rest = float(np.mean([max(0.0, r.wall_s - r.train_s) for r in timed]))
        evals = rest[0][0] if rest and len(rest) == len(timed) else 0
        if evals > 0:
            per_episode = mean_rest / (evals * EVAL_EPISODES + FINAL_EVAL_EPISODES)
            return WallModel(FINAL_EVAL_EPISODES * per_episode, rate, EVAL_EPISODES * per_episode)
        return WallModel(mean_rest, rate, None)
    ratio = WallModel(0.0, sum(r.steps for r in runs) / sum(r.wall_s for r in runs), None)
    if len({r.steps for r in runs}) < 2:
        return ratio
    overhead, per_step = _fit_line([r.steps for r in runs], [r.wall_s for r in runs])
    return ratio if per_step <= 0 else WallModel(overhead, 1.0 / per_step, None)


def _fit_line(x: list, y: list) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y on x (at least two distinct x); an intercept
    below 0 is refitted as a line through the origin."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    slope = float(np.cov(x, y, bias=True)[0, 1] / x.var())
    intercept = float(y.mean() - slope * x.mean())
    if intercept < 0:
        return 0.0, float((x * y).sum() / (x * x).sum())
    return intercept, slope


class Throughput:
    """Estimated wall time per (algorithm, env) run, from the results tree's own timed runs
    where it has them, else from the shipped table."""

    def __init__(self, results_dir: Path | None = None, shipped: Path = SHIPPED_THROUGHPUT):
        self.path = Path(results_dir) / THROUGHPUT_FILE if results_dir is not None else None
        self.shipped = _read_table(shipped)
        self.measured = _read_table(self.path) if self.path is not None else {}
        self._models: dict = {}  # pair -> its fit; the scheduler asks many times per second

    def wall_model(self, algo: str, env_id: str) -> WallModel | None:
        """The pair's fitted ``WallModel``, or None if it was never timed."""
        key = f"{algo}/{env_id}"
        if key not in self._models:
            runs = self.measured.get(key) or self.shipped.get(key)
            self._models[key] = wall_model(runs) if runs else None
        return self._models[key]

    def steps_per_s(self, algo: str, env_id: str) -> float | None:
        model = self.wall_model(algo, env_id)
        return None if model is None else model.steps_per_s

    def estimate_s(self, algo: str, env_id: str, steps: int, eval_every: int = EVAL_EVERY) -> float | None:
        """Seconds for a run of ``steps`` evaluating every ``eval_every`` steps; None if untimed."""
        model = self.wall_model(algo, env_id)
        return None if model is None else model.estimate_s(steps, steps // eval_every)

    def add(self, algo: str, env_id: str, steps: int, wall_s: float, evals: int | None = None,
            train_s: float | None = None) -> None:
        """Record one finished run (with its periodic evaluations and training seconds, where
        known) and rewrite the results tree's table (atomically).

        The file is read again under a lock and the run added to what it holds then, so
        two orchestrators sharing a results tree (another suite, a grid) keep each
        other's runs instead of the last writer's copy winning."""
        if self.path is None or not (_positive(steps) and _positive(wall_s)):
            return
        if not (_positive(train_s) and train_s <= wall_s):
            train_s = None
        key = f"{algo}/{env_id}"
        row = TimedRun(float(steps), float(wall_s), evals, None if train_s is None else float(train_s))
        with _locked(self.path.with_name(self.path.name + ".lock")):
            table = _read_table(self.path)
            table[key] = (table.get(key, []) + [row])[-RECENT_RUNS:]
            write_table(self.path, table)
        self.measured = table
        self._models.clear()


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


def _stored(r: TimedRun) -> list:
    row = [round(r.steps), round(r.wall_s, 1)]
    if r.train_s is not None:
        return row + [r.evals, round(r.train_s, 1)]
    return row if r.evals is None else row + [r.evals]


def write_table(path: Path, table: dict) -> None:
    payload = {
        "about": "[environment steps, wall seconds of the whole run (start-up, training, evaluations), "
                 "periodic evaluations, training seconds] of the last "
                 f"{RECENT_RUNS} timed runs per algorithm/env, the last two where known; "
                 "rlsuite/suites.py",
        "runs": {k: [_stored(r) for r in v] for k, v in sorted(table.items())},
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
