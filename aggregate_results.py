"""Aggregate a results tree into tables, plots and one report.md.

    python aggregate_results.py --results-dir results --out report

Reads only the protocol's files (docs/protocol.md) of every
``<results-dir>/<env>/<algo>/seed_<n>/`` (not the ``grid/`` cells and
``tuning/`` trials beside them: each grid cell is a results tree of its own);
a run that is incomplete or corrupt is skipped and named with the reason,
never a crash. Besides the runs it reads two optional files: published
figures (``--references``, references.toml) and a uniformly random policy's
return per env (``--random-scores``, random_scores.json); one that is missing
or unusable is a one-line note, and the figures that need it show "–".
Writes to ``--out``:

    runs.csv           one row per loaded run (the tidy table)
    summary.csv/.md    per env x algorithm: runs solved, steps/time to solve
                       (median, IQR), final eval mean and IQM with 95% CIs,
                       last-100 training return
    references.csv     per env x algorithm x published figure: our final eval
                       mean and CI beside the figure, and where it lies
    cross_env.md/.csv  across envs (two or more): normalized scores' IQM and
                       optimality gap per algorithm, P(X > Y) per pair
    normalized_scores.csv  every run's score on its env's random-to-reference scale
    *.png              per env: learning curves (eval and training return,
                       against env steps and train time), every seed, final
                       scores, steps to solve, performance profile; across
                       envs: every env's final scores, the normalized profile
    report.md          the tables and plots in one page, the cross-env
                       section first, with video links

Statistics follow Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice": interquartile mean (IQM), optimality gap,
performance profiles and the probability of improvement P(X > Y), with
percentile bootstrap 95% confidence intervals over runs at a fixed random
state. There is one bootstrap, bootstrap_ci(). A per-env table or plot
resamples that env's runs (one stratum); the cross-env aggregates, over
normalized scores, use its stratified form (``groups``): each env's runs (for
P(X > Y) each env x algorithm's) are resampled on their own, then the
statistic is taken over all of them. The methods are re-implemented here as
small tested functions because the authors' library, rliable 1.2.0, pulls
arch, statsmodels, scipy and seaborn for a few formulas.

Exit status: 0 report written (skipped runs are named in it), 2 nothing to
aggregate or bad arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import re
import sys
import time
import tomllib
import urllib.parse
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# The registry's names and order only: importing an algorithm module is never needed here.
from rlsuite import scores as score_files
from rlsuite.algorithms import NAMES, rank as algo_rank
from rlsuite.cli import OneLineParser, UsageError, check_writable, create_folder, parse_integer

PROG = "aggregate_results.py"
ROOT = Path(__file__).resolve().parent
REFERENCES_FILE = ROOT / "references.toml"
RANDOM_SCORES_FILE = ROOT / "random_scores.json"
RANDOM_STATE = 0
# Fewer resamples than 100 give percentiles from a handful of values; more than
# 100,000 hold reps x runs x grid points in memory for the curve bands.
MIN_REPS, MAX_REPS = 100, 100_000
CONFIDENCE = 0.95
GRID_POINTS = 100
TRAIN_RETURN_WINDOW = 20  # episodes in the rolling mean of training returns before resampling

SUMMARY_FIELDS = {
    "algo": str, "env_id": str, "seed": int, "status": str, "total_steps": int,
    "train_time_s": float, "solved": (bool, type(None)), "steps_to_solve": (int, type(None)),
    "time_to_solve_s": (float, int, type(None)), "final_eval_mean": (float, int),
    "final_eval_std": (float, int), "last100_train_return": (float, int, type(None)),
}
# Counts, durations and spreads: a negative one is a corrupt file, not a measurement.
NON_NEGATIVE = ("seed", "total_steps", "train_time_s", "steps_to_solve", "time_to_solve_s", "final_eval_std")
# Trees of their own under a results root (docs/protocol.md, section 3): the orchestrator's
# --grid cells (compare them with sensitivity_study.py, or aggregate one cell with
# --results-dir DIR/grid/<cell>) and tune.py's trials. No Gymnasium id starts with these.
OTHER_TREES = ("grid", "tuning")
CANONICAL_SEED = re.compile(r"seed_(0|[1-9][0-9]*)")
EVAL_COLUMNS = ("global_step", "train_time_s", "mean_return")
EPISODE_COLUMNS = ("global_step", "train_time_s", "return")


class RunError(Exception):
    """This run cannot be used; the message says why."""


# -- statistics (Agarwal et al. 2021) ----------------------------------------------

def iqm(scores, axis: int = -1):
    """Interquartile mean: the mean of the middle 50% of scores along ``axis``.

    Drops floor(n/4) scores at each end, as scipy.stats.trim_mean(x, 0.25)
    does in rliable, so IQM(1..8) = mean(3, 4, 5, 6) = 4.5.
    """
    x = np.sort(np.asarray(scores, dtype=float), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def mean(scores, axis: int = -1):
    return np.asarray(scores, dtype=float).mean(axis=axis)


def optimality_gap(scores, axis: int = -1, gamma: float = 1.0):
    """Mean of max(0, gamma - x) along ``axis`` (Agarwal et al. 2021, sec. 4.2): how far the
    runs fall short of the target ``gamma`` (1: the reference score), with no credit for
    overshooting it. Lower is better; 0 means every run reached the target."""
    return np.maximum(gamma - np.asarray(scores, dtype=float), 0.0).mean(axis=axis)


def normalize(scores, random_score: float, reference_score: float):
    """(score - random) / (reference - random): a uniformly random policy maps to 0 and
    the reference score to 1, so returns of different envs share one unit."""
    return (np.asarray(scores, dtype=float) - random_score) / (reference_score - random_score)


def _strata_codes(groups, n: int) -> np.ndarray:
    """One integer per run naming its stratum, numbered in order of first appearance."""
    labels = list(groups)
    if len(labels) != n:
        raise ValueError(f"groups names {len(labels)} runs, samples hold {n}")
    codes: dict = {}
    return np.array([codes.setdefault(label, len(codes)) for label in labels], dtype=int)


def bootstrap_ci(samples, statistic, reps: int = 2000, seed: int = RANDOM_STATE,
                 confidence: float = CONFIDENCE, groups=None):
    """Point estimate and percentile bootstrap CI of ``statistic`` over runs.

    ``samples`` holds one run per row: a 1-D array of scores, or runs x grid
    points for a learning curve. Each replicate draws as many runs as there
    are, with replacement, and applies ``statistic(x, axis)`` along the runs
    axis; a statistic may return a vector per replicate (a performance
    profile). Returns (point, low, high), each the shape of one statistic.

    ``groups`` (one label per run; None: all runs are one stratum) makes it
    the stratified bootstrap of Agarwal et al. 2021: each stratum (an env, or
    an env x algorithm) is resampled on its own, so every replicate holds as
    many runs of each stratum as the data do. Position j of a replicate is
    always a run of stratum ``groups[j]``, so a statistic may use the labels
    (probability_of_improvement() does). One stratum draws exactly what the
    unstratified bootstrap draws, so a per-env figure is the same either way.
    """
    samples = np.asarray(samples, dtype=float)
    n = samples.shape[0]
    if n == 0:
        raise ValueError("the bootstrap needs at least one run")
    rng = np.random.default_rng(seed)
    point = statistic(samples, axis=0)
    codes = np.zeros(n, dtype=int) if groups is None else _strata_codes(groups, n)
    index = np.empty((reps, n), dtype=int)
    for code in range(codes.max() + 1):
        members = np.flatnonzero(codes == code)
        index[:, members] = members[rng.integers(0, members.size, size=(reps, members.size))]
    replicates = statistic(samples[index], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return point, low, high


def performance_profile(scores, taus):
    """Fraction of runs whose score exceeds each tau (Dolan & Moré 2002; Agarwal et al. 2021 sec. 4).

    Runs lie along the last axis of ``scores``; the result has one value per
    tau in place of that axis. Counted from each score's rank among the sorted
    taus, so a bootstrap of many runs never holds replicates x runs x taus.
    """
    x = np.asarray(scores, dtype=float)
    t = np.atleast_1d(np.asarray(taus, dtype=float))
    order = np.argsort(t, kind="stable")
    # k taus (sorted) lie strictly below a score: it exceeds sorted tau j for every j < k
    k = np.searchsorted(t[order], x, side="left")
    k[np.isnan(x)] = 0  # NaN exceeds nothing, as NaN > tau is False
    rows = k.reshape(-1, x.shape[-1])
    width = t.size + 1
    offsets = np.arange(rows.shape[0])[:, None] * width
    hist = np.bincount((rows + offsets).ravel(), minlength=rows.shape[0] * width).reshape(-1, width)
    above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:] / rows.shape[1]
    out = np.empty_like(above)
    out[:, order] = above
    return out.reshape(*x.shape[:-1], t.size)


def mann_whitney(x, y):
    """P(X > Y) + P(X = Y) / 2 for one run drawn from ``x`` and one from ``y``, over every pair.

    The Mann-Whitney U statistic divided by len(x) * len(y); runs lie along the
    last axis, leading (replicate) axes broadcast.
    """
    x = np.asarray(x, dtype=float)[..., :, None]
    y = np.asarray(y, dtype=float)[..., None, :]
    return ((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1))


def probability_of_improvement(scores, algos, envs, x: str, y: str, axis: int = -1):
    """P(X > Y) of Agarwal et al. 2021 (sec. 4.3): the probability that a run of algorithm
    ``x`` scores higher than a run of ``y`` on the same env, ties counting 1/2, averaged
    over the envs where both have runs (each env weighs the same, however many runs it has).

    ``scores`` holds runs along ``axis`` and ``algos``/``envs`` label them by position,
    which the stratified bootstrap keeps (bootstrap_ci() with groups = env x algorithm).
    NaN when the two algorithms share no env.
    """
    s = np.moveaxis(np.asarray(scores, dtype=float), axis, -1)
    algos, envs = np.asarray(algos, dtype=object), np.asarray(envs, dtype=object)
    per_env = []
    for env in dict.fromkeys(envs):
        xs, ys = np.flatnonzero((envs == env) & (algos == x)), np.flatnonzero((envs == env) & (algos == y))
        if xs.size and ys.size:
            per_env.append(mann_whitney(s[..., xs], s[..., ys]))
    if not per_env:
        return np.full(s.shape[:-1], np.nan)
    return np.mean(per_env, axis=0)


def resample(x, y, grid):
    """A run's curve on a common grid by linear interpolation.

    NaN before the run's first point (nothing measured yet); after its last
    point the last value is carried forward, because a run that has ended
    (its budget spent sooner in train time, or --stop-when-solved) keeps its
    final policy.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out = np.interp(grid, x, y)
    out[grid < x.min()] = np.nan
    return out


def common_grid(curves, points: int = GRID_POINTS):
    """From the point every run has reached (the latest first point) to the latest last point.

    Starting where all runs have data keeps the set of runs behind the mean
    fixed along the whole curve, so it shows no jumps where a run joins.
    """
    lo = max(float(np.min(x)) for x, _ in curves)
    hi = max(float(np.max(x)) for x, _ in curves)
    if not hi > lo:
        return None
    return np.linspace(lo, hi, points)


# -- loading ----------------------------------------------------------------------------

@dataclass
class Loaded:
    runs: pd.DataFrame
    evals: pd.DataFrame
    episodes: pd.DataFrame
    skipped: list = field(default_factory=list)  # (run label, reason)


def read_csv_checked(path: Path, required) -> pd.DataFrame:
    """A protocol CSV with its required columns all numeric; RunError says what is wrong."""
    if not path.is_file():
        raise RunError(f"{path.name} is missing")
    raw = path.read_bytes()
    if not raw.strip():
        raise RunError(f"{path.name} is empty (no header)")
    # Rows are written whole and flushed, each ending in a newline: anything
    # else at the end is a row cut off mid-write.
    if not raw.endswith(b"\n"):
        raise RunError(f"{path.name} is truncated (its last row is incomplete)")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{path.name} cannot be parsed: {str(exc).strip().splitlines()[0]}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise RunError(f"{path.name} lacks column(s) {', '.join(missing)}")
    for column in required:
        values = pd.to_numeric(df[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
            raise RunError(f"{path.name} has an empty or non-numeric {column} at line {row}")
        df[column] = values
    return df


def read_summary_checked(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise RunError("no summary.json (the run never finished)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunError(f"summary.json is not valid JSON ({exc})") from None
    except RecursionError:  # json recurses once per nesting level
        raise RunError("summary.json is nested too deeply to be a summary") from None
    if not isinstance(summary, dict):
        raise RunError("summary.json is not a JSON object")
    if summary.get("status") != "completed":
        error = f" ({summary['error']})" if summary.get("error") else ""
        raise RunError(f"status {summary.get('status')!r}{error}, not completed")
    for key, kind in SUMMARY_FIELDS.items():
        if key not in summary:
            raise RunError(f"summary.json lacks {key!r}")
        value = summary[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise RunError(f"summary.json has {key}={value!r}")
        # json accepts NaN and Infinity; NaN would sort as the largest score and bias the IQM
        if isinstance(value, float) and not math.isfinite(value):
            raise RunError(f"summary.json has {key}={value!r}, not a finite number")
        if key in NON_NEGATIVE and value is not None and value < 0:
            raise RunError(f"summary.json has {key}={value!r}, which cannot be negative")
    return summary


STABILITY_FIELDS = ("min_eval_after_solve", "frac_evals_solved_after_solve", "ended_solved")


def run_threshold(run_dir: Path):
    """The solve threshold a run used (its config.json), else None."""
    try:
        value = json.loads((Path(run_dir) / "config.json").read_text())["protocol"]["solve_threshold"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def stability(eval_steps, eval_returns, steps_to_solve, threshold, final_eval_mean) -> dict:
    """Whether a run kept what it learned, from its periodic greedy evaluations.

    - ``min_eval_after_solve``: the lowest periodic eval from the first solving one on;
    - ``frac_evals_solved_after_solve``: the share of those evals at or above the threshold
      (1.0: it never fell back; the solving eval itself counts);
    - ``ended_solved``: the final 100-episode eval reached the threshold.
    NaN / None where the run never solved or has no threshold.
    """
    if threshold is None:
        return {"min_eval_after_solve": np.nan, "frac_evals_solved_after_solve": np.nan, "ended_solved": None}
    ended = bool(final_eval_mean >= threshold)
    if steps_to_solve is None or (isinstance(steps_to_solve, float) and math.isnan(steps_to_solve)):
        return {"min_eval_after_solve": np.nan, "frac_evals_solved_after_solve": np.nan, "ended_solved": ended}
    steps, returns = np.asarray(eval_steps, dtype=float), np.asarray(eval_returns, dtype=float)
    after = returns[steps >= steps_to_solve]
    if after.size == 0:
        return {"min_eval_after_solve": np.nan, "frac_evals_solved_after_solve": np.nan, "ended_solved": ended}
    return {"min_eval_after_solve": float(after.min()),
            "frac_evals_solved_after_solve": float((after >= threshold).mean()), "ended_solved": ended}


def load_run(run_dir: Path, env_id: str, algo: str, seed: int):
    summary = read_summary_checked(run_dir)
    if (summary["env_id"], summary["algo"], summary["seed"]) != (env_id, algo, seed):
        found = f"{summary['env_id']}/{summary['algo']}/seed_{summary['seed']}"
        raise RunError(f"summary.json describes {found}, not this folder")
    evals = read_csv_checked(run_dir / "evals.csv", EVAL_COLUMNS)
    episodes = read_csv_checked(run_dir / "episodes.csv", EPISODE_COLUMNS)
    row = {k: summary[k] for k in SUMMARY_FIELDS if k != "status"}
    row.update(stability(evals["global_step"], evals["mean_return"], summary["steps_to_solve"],
                         run_threshold(run_dir), summary["final_eval_mean"]))
    row["run_dir"] = str(run_dir)
    return row, evals, episodes


def _printable(part: str) -> bool:
    """Whether a folder name is valid Unicode (a non-UTF-8 name decodes to lone surrogates)."""
    try:
        part.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def find_run_dirs(results_dir: Path, skipped: list | None = None):
    """(env_id, algo, seed, path) of every <env>/<algo>/seed_<n>/; env ids may hold '/'.

    Folders that look like runs but cannot be one, or would count a seed twice
    (``seed_01`` beside ``seed_1``), are appended to ``skipped`` as (label, reason).
    """
    found = []
    for path in sorted(results_dir.rglob("seed_*")):
        if not path.is_dir():
            continue
        rel = path.relative_to(results_dir).parts
        if len(rel) < 3 or not re.fullmatch(r"seed_[0-9]+", rel[-1]):
            continue
        if rel[0] in OTHER_TREES:  # a grid cell or a tuning trial is not this comparison's run
            continue
        if not all(_printable(part) for part in rel):
            label = os.fsencode(path.relative_to(results_dir)).decode("utf-8", "backslashreplace")
            if skipped is not None:
                skipped.append((label, "the folder name is not valid UTF-8"))
            continue
        if not CANONICAL_SEED.fullmatch(rel[-1]):
            if skipped is not None:
                seed = int(rel[-1].removeprefix("seed_"))
                skipped.append(("/".join(rel), f"not a run folder name the runners write (seed {seed} "
                                               f"is seed_{seed}); skipped so no seed counts twice"))
            continue
        found.append(("/".join(rel[:-2]), rel[-2], int(rel[-1].removeprefix("seed_")), path))
    return found


def load_results(results_dir: Path) -> Loaded:
    rows, evals, episodes, skipped = [], [], [], []
    for env_id, algo, seed, path in find_run_dirs(Path(results_dir), skipped):
        label = f"{env_id}/{algo}/seed_{seed}"
        try:
            row, ev, ep = load_run(path, env_id, algo, seed)
        except RunError as exc:
            skipped.append((label, str(exc)))
            continue
        except OSError as exc:
            skipped.append((label, f"cannot be read: {exc.strerror or exc}"))
            continue
        rows.append(row)
        keys = {"env_id": env_id, "algo": algo, "seed": seed}
        evals.append(ev[list(EVAL_COLUMNS)].assign(**keys))
        episodes.append(ep[list(EPISODE_COLUMNS)].assign(**keys))
    runs = pd.DataFrame(rows, columns=[k for k in SUMMARY_FIELDS if k != "status"]
                        + list(STABILITY_FIELDS) + ["run_dir"])
    if not runs.empty:
        runs["order"] = runs["algo"].map(algo_rank)
        runs = runs.sort_values(["env_id", "order", "seed"]).drop(columns="order").reset_index(drop=True)
    empty_ev = pd.DataFrame(columns=[*EVAL_COLUMNS, "env_id", "algo", "seed"])
    empty_ep = pd.DataFrame(columns=[*EPISODE_COLUMNS, "env_id", "algo", "seed"])
    return Loaded(runs, pd.concat(evals, ignore_index=True) if evals else empty_ev,
                  pd.concat(episodes, ignore_index=True) if episodes else empty_ep, skipped)


def algos_in(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["algo"].unique(), key=algo_rank)


# -- published references and random scores ------------------------------------------------
#
# references.toml holds [[reference]] tables (env, algo, library, env_version, mean, std,
# budget, seeds, metric, url, note); random_scores.json maps each env id to a uniformly random
# policy's return measured by the suite. Both are optional inputs: a file that is missing or
# cannot be used leaves its columns at "–" with a one-line note, never a crash.

def _ignored_note(path, problems: list[str], total: int, what: str) -> str | None:
    if not problems:
        return None
    shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return f"{path}: {len(problems)} of {total} {what} ignored ({shown})"


def _read_input(path, argument: str, parse):
    """``parse(text)`` of the file, or (None, the one-line note saying why not)."""
    try:
        return parse(Path(path).read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"{path} not found ({argument})"
    except OSError as exc:
        return None, f"{path} cannot be read ({argument}): {exc.strerror or exc}"
    except UnicodeDecodeError:
        return None, f"{path} is not UTF-8 text ({argument})"
    except (ValueError, RecursionError) as exc:  # tomllib.TOMLDecodeError and JSON errors are ValueErrors
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{path} cannot be parsed ({argument}): {detail}"


def _load_references(path) -> tuple[list[dict] | None, str | None]:
    """The usable [[reference]] tables of references.toml, in file order, and a one-line note
    (or None). (None, note) when the file is missing, unreadable or not TOML; a table that
    rlsuite.scores (the one checker of the file) refuses is left out and named."""
    data, note = _read_input(path, "--references", tomllib.loads)
    if data is None:
        return None, note
    tables = data.get("reference", [])
    if not isinstance(tables, list):
        return None, f"{path}: 'reference' is not a list of [[reference]] tables (--references)"
    if not tables:
        return [], f"{path} holds no [[reference]] tables (--references)"
    problems: list[str] = []
    try:
        refs = score_files.parse_references(data, str(path), problems)
    except ValueError as exc:
        return None, f"{exc} (--references)"
    return [dataclasses.asdict(r) for r in refs], _ignored_note(path, problems, len(tables), "reference(s)")


def _load_random_scores(path) -> tuple[dict | None, str | None]:
    """env id -> {"mean", "std", "episodes", "seed", "command"} from random_scores.json, and a
    one-line note (or None); (None, note) when the file is missing, unreadable or not a JSON
    object. An entry rlsuite.scores refuses is left out and named."""
    data, note = _read_input(path, "--random-scores", json.loads)
    if data is None:
        return None, note
    if not isinstance(data, dict):
        return None, f"{path} is not a JSON object of env id -> score (--random-scores)"
    problems: list[str] = []
    good = score_files.check_random_scores(data, str(path), problems)
    return ({env_id: dict(entry) | {"mean": float(entry["mean"])} for env_id, entry in good.items()},
            _ignored_note(path, problems, len(data), "env(s)"))


def verdict(reference: float, low: float, high: float) -> str:
    """Where a published figure lies against our 95% CI: "below", "inside" or "above" it."""
    if reference < low:
        return "below"
    if reference > high:
        return "above"
    return "inside"


def version_note(env_version: str, env_id: str) -> str:
    """The env a figure was measured on, with the difference from ours spelt out:
    "HalfCheetah-v4 (v4 vs our v5)"."""
    if env_version == env_id:
        return env_version
    theirs, ours = re.fullmatch(r"(.+)-v(\d+)", env_version), re.fullmatch(r"(.+)-v(\d+)", env_id)
    if theirs and ours and theirs.group(1) == ours.group(1):
        return f"{env_version} (v{theirs.group(2)} vs our v{ours.group(2)})"
    return f"{env_version} (vs our {env_id})"


REFERENCE_COLUMNS = ["env_id", "algo", "runs", "budget_min", "budget_max", "final_eval_mean",
                     "final_eval_mean_ci_low", "final_eval_mean_ci_high", "library", "env_version",
                     "ref_mean", "ref_std", "ref_budget", "ref_seeds", "metric", "url", "note",
                     "compare_with", "ours_mean", "ours_ci_low", "ours_ci_high", "verdict"]
OURS_LABEL = {"final_eval_mean": "final eval", "last100_train_return": "last-100 train return"}


def reference_rows(table: pd.DataFrame, runs: pd.DataFrame,
                   references: list[dict] | None, reps: int = 2000) -> pd.DataFrame:
    """Per env x algorithm with runs: our final eval mean with its CI (``table``, from summarize())
    and budget, beside every published figure for that pair; one row without a figure (NaN/None)
    where there is none. Each figure is set beside the figure of ours it measures the same way
    (its ``compare_with``: the final eval mean, or the runs' last-100 training return with its
    own bootstrap CI), and ``verdict`` says where it lies against that CI."""
    out = []
    for r in table.itertuples():
        pair = runs[(runs["env_id"] == r.env_id) & (runs["algo"] == r.algo)]
        ours = {"env_id": r.env_id, "algo": r.algo, "runs": r.runs, "budget_min": int(pair["total_steps"].min()),
                "budget_max": int(pair["total_steps"].max()), "final_eval_mean": r.final_eval_mean,
                "final_eval_mean_ci_low": r.final_eval_mean_ci_low,
                "final_eval_mean_ci_high": r.final_eval_mean_ci_high}
        found = [ref for ref in references or [] if (ref["env"], ref["algo"]) == (r.env_id, r.algo)]
        for ref in found or [None]:
            row = dict.fromkeys(REFERENCE_COLUMNS) | ours
            if ref is not None:
                compare_with = ref.get("compare_with", "final_eval_mean")
                if compare_with == "final_eval_mean":
                    figure = (r.final_eval_mean, r.final_eval_mean_ci_low, r.final_eval_mean_ci_high)
                else:
                    values = pd.to_numeric(pair[compare_with]).dropna().to_numpy(float)
                    figure = bootstrap_ci(values, mean, reps) if values.size else (np.nan,) * 3
                row.update({
                    "library": ref["library"], "env_version": ref["env_version"], "ref_mean": ref["mean"],
                    "ref_std": ref.get("std"), "ref_budget": ref["budget"], "ref_seeds": ref.get("seeds"),
                    "metric": ref["metric"], "url": ref["url"], "note": ref.get("note"),
                    "compare_with": compare_with, "ours_mean": figure[0], "ours_ci_low": figure[1],
                    "ours_ci_high": figure[2],
                    "verdict": verdict(ref["mean"], figure[1], figure[2]) if _given(figure[0]) else None})
            out.append(row)
    return pd.DataFrame(out, columns=REFERENCE_COLUMNS).astype({"ref_budget": "Int64", "ref_seeds": "Int64"})


def url_target(url: str) -> str:
    """A URL as a Markdown link target: a space, parenthesis or bracket would end it early."""
    return urllib.parse.quote(url, safe=":/?#&=%+@~;,!$*'")


def _given(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def references_markdown(rows: pd.DataFrame, note: str | None = None) -> str:
    """One env's reference_rows() as a table, "–" wherever a figure is missing, and the note.
    A figure compared with something other than our final eval says what, beside our number."""
    head = ["algorithm", "runs", "our budget (steps)", "ours [95% CI]: final eval unless named",
            "published mean ± std", "published vs our CI", "source", "measured on", "its budget (steps)",
            "its seeds", "its metric", "note"]
    body = []
    for r in rows.itertuples():
        budget = f"{r.budget_min:,}" if r.budget_min == r.budget_max else f"{r.budget_min:,}–{r.budget_max:,}"
        if not _given(r.ref_mean):
            ours = _ci(r.final_eval_mean, r.final_eval_mean_ci_low, r.final_eval_mean_ci_high, 1)
            body.append([r.algo, r.runs, budget, ours] + ["–"] * 8)
            continue
        ours = _ci(r.ours_mean, r.ours_ci_low, r.ours_ci_high, 1)
        if r.compare_with != "final_eval_mean":
            ours += f" {OURS_LABEL[r.compare_with]}"
        published = _num(r.ref_mean) + (f" ± {_num(r.ref_std)}" if _given(r.ref_std) else "")
        body.append([r.algo, r.runs, budget, ours, published, r.verdict if _given(r.verdict) else "–",
                     f"[{r.library}]({url_target(r.url)})", version_note(r.env_version, r.env_id),
                     f"{int(r.ref_budget):,}", int(r.ref_seeds) if _given(r.ref_seeds) else "–", r.metric,
                     r.note if _given(r.note) else "–"])
    text = markdown_table(head, body)
    return text + (f"\nNote: {note}.\n" if note else "")


# -- tables -------------------------------------------------------------------------

def summarize(runs: pd.DataFrame, reps: int = 2000) -> pd.DataFrame:
    """One row per env x algorithm; CIs from a bootstrap over that pair's runs (seeds)."""
    out = []
    for (env_id, algo), group in runs.groupby(["env_id", "algo"], sort=False):
        scores = group["final_eval_mean"].to_numpy(float)
        solved = group[group["solved"] == True]  # noqa: E712 - None means "no threshold"
        mean_pt, mean_lo, mean_hi = bootstrap_ci(scores, mean, reps)
        iqm_pt, iqm_lo, iqm_hi = bootstrap_ci(scores, iqm, reps)
        ended = group[group["ended_solved"] == True]  # noqa: E712
        row = {"env_id": env_id, "algo": algo, "runs": len(group), "runs_solved": len(solved),
               "runs_ended_solved": len(ended)}
        for col in ("steps_to_solve", "time_to_solve_s"):
            values = solved[col].to_numpy(float)
            q25, med, q75 = np.percentile(values, [25, 50, 75]) if values.size else (np.nan,) * 3
            row.update({f"{col}_median": med, f"{col}_q25": q25, f"{col}_q75": q75})
        row.update({
            "final_eval_mean": mean_pt, "final_eval_mean_ci_low": mean_lo, "final_eval_mean_ci_high": mean_hi,
            "final_eval_iqm": iqm_pt, "final_eval_iqm_ci_low": iqm_lo, "final_eval_iqm_ci_high": iqm_hi,
            "last100_train_return_mean": pd.to_numeric(group["last100_train_return"]).mean(),
        })
        for col in ("min_eval_after_solve", "frac_evals_solved_after_solve"):  # over the solved runs
            values = pd.to_numeric(solved[col]).dropna().to_numpy(float)
            point, low, high = bootstrap_ci(values, mean, reps) if values.size else (np.nan,) * 3
            row.update({f"{col}_mean": point, f"{col}_mean_ci_low": low, f"{col}_mean_ci_high": high})
        out.append(row)
    table = pd.DataFrame(out)
    table["order"] = table["algo"].map(algo_rank)
    return table.sort_values(["env_id", "order"]).drop(columns="order").reset_index(drop=True)


def _num(value, digits: int = 1, thousands: bool = False) -> str:
    if not _given(value):
        return "–"
    return f"{value:,.0f}" if thousands else f"{value:.{digits}f}"


def _ci(point, low, high, digits: int = 2) -> str:
    if not _given(point):
        return "–"
    return f"{_num(point, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def summary_markdown(table: pd.DataFrame) -> str:
    head = ["env", "algorithm", "runs solved", "ended solved", "evals held after solving, mean [95% CI]",
            "worst eval after solving, mean [95% CI]", "steps to solve, median [IQR]",
            "time to solve (s), median [IQR]", "final eval mean [95% CI]", "final eval IQM [95% CI]",
            "last-100 train return"]
    rows = []
    for r in table.itertuples():
        rows.append([
            r.env_id, r.algo, f"{r.runs_solved}/{r.runs}", f"{r.runs_ended_solved}/{r.runs}",
            f"{_num(100 * r.frac_evals_solved_after_solve_mean, 0)}% "
            f"[{_num(100 * r.frac_evals_solved_after_solve_mean_ci_low, 0)}, "
            f"{_num(100 * r.frac_evals_solved_after_solve_mean_ci_high, 0)}]" if r.runs_solved else "–",
            _ci(r.min_eval_after_solve_mean, r.min_eval_after_solve_mean_ci_low,
                r.min_eval_after_solve_mean_ci_high, 1) if r.runs_solved else "–",
            f"{_num(r.steps_to_solve_median, thousands=True)} "
            f"[{_num(r.steps_to_solve_q25, thousands=True)}–{_num(r.steps_to_solve_q75, thousands=True)}]"
            if r.runs_solved else "–",
            f"{_num(r.time_to_solve_s_median)} "
            f"[{_num(r.time_to_solve_s_q25)}–{_num(r.time_to_solve_s_q75)}]"
            if r.runs_solved else "–",
            _ci(r.final_eval_mean, r.final_eval_mean_ci_low, r.final_eval_mean_ci_high, 1),
            _ci(r.final_eval_iqm, r.final_eval_iqm_ci_low, r.final_eval_iqm_ci_high, 1),
            _num(r.last100_train_return_mean),
        ])
    return markdown_table(head, rows)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# -- across environments (Agarwal et al. 2021) ----------------------------------------------

REFERENCE_ALGO = "ppo"
FINAL_SCORES = "Final score per run"
ALL_FINAL_SCORES = "Final scores, every environment"
ALL_PROFILE = "Performance profile, every environment"
REFERENCE_RULE = (
    f"Each env has one reference score, so that every algorithm is measured in the same unit: the "
    f"highest published {REFERENCE_ALGO.upper()} figure for the env in the references file or, where "
    f"it lists no {REFERENCE_ALGO.upper()} figure, the highest figure of any algorithm.")


def reference_score(references: list[dict] | None, env_id: str) -> dict | None:
    """The published figure an env's scores are normalized by (REFERENCE_RULE): the highest
    PPO figure for the env, else the highest of any algorithm, the first in the file on a tie;
    None when the env has none. PPO is the algorithm with published figures on the most envs."""
    found = [ref for ref in references or [] if ref["env"] == env_id]
    pool = [ref for ref in found if ref["algo"] == REFERENCE_ALGO] or found
    return max(pool, key=lambda ref: ref["mean"]) if pool else None


@dataclass
class CrossEnv:
    envs: list[str]
    """every env with runs"""
    normalized: pd.DataFrame
    """one row per run on a normalized env: env_id, algo, seed, final_eval_mean, random, reference,
    normalized_score"""
    anchors: dict = field(default_factory=dict)  # env -> (random score entry, reference entry)
    excluded: list = field(default_factory=list)  # (env, reason)
    aggregates: pd.DataFrame | None = None
    improvement: pd.DataFrame | None = None
    notes: list = field(default_factory=list)  # one line per unusable input file

    @property
    def applies(self) -> bool:
        """Whether there is more than one env to aggregate across."""
        return len(self.envs) >= 2


def normalize_runs(runs: pd.DataFrame, references: list[dict] | None,
                   random_scores: dict | None) -> tuple[pd.DataFrame, dict, list]:
    """(normalized runs, anchors, excluded) as in CrossEnv: each run's final eval mean on its
    env's scale, random -> 0 and reference_score() -> 1. An env without a random score or a
    reference, or whose reference does not exceed random (no scale), is excluded with the reason."""
    parts, anchors, excluded = [], {}, []
    for env_id, group in runs.groupby("env_id", sort=True):
        rnd = (random_scores or {}).get(env_id)
        ref = reference_score(references, env_id)
        reasons = [] if rnd is not None else ["no random score"]
        reasons += [] if ref is not None else ["no published reference"]
        if rnd is not None and ref is not None and not ref["mean"] > rnd["mean"]:
            reasons.append(f"its reference {ref['mean']:g} does not exceed the random score {rnd['mean']:g}")
        if reasons:
            excluded.append((env_id, "; ".join(reasons)))
            continue
        anchors[env_id] = (rnd, ref)
        part = group[["env_id", "algo", "seed", "final_eval_mean"]].assign(random=rnd["mean"],
                                                                             reference=ref["mean"])
        part["normalized_score"] = normalize(part["final_eval_mean"], rnd["mean"], ref["mean"])
        parts.append(part)
    columns = ["env_id", "algo", "seed", "final_eval_mean", "random", "reference", "normalized_score"]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame, anchors, excluded


def cross_env(runs: pd.DataFrame, references: list[dict] | None, random_scores: dict | None,
              reps: int = 2000, notes: list | None = None) -> CrossEnv:
    """Normalized scores and their aggregates across envs, each with a 95% stratified bootstrap CI.

    Per algorithm, over all its runs on the normalized envs pooled: IQM and optimality gap
    (strata: envs). For every ordered pair of algorithms: P(X > Y) over the envs both ran
    (strata: env x algorithm). Nothing is computed with fewer than two envs with runs.
    """
    envs = sorted(runs["env_id"].unique())
    normalized, anchors, excluded = normalize_runs(runs, references, random_scores)
    result = CrossEnv(envs, normalized, anchors, excluded, notes=[n for n in notes or [] if n])
    if not result.applies:
        return result
    rows = []
    for algo in algos_in(runs):
        mine = normalized[normalized["algo"] == algo]
        row = {"algo": algo, "runs": len(mine), "envs": mine["env_id"].nunique()}
        for name, statistic in (("iqm", iqm), ("optimality_gap", optimality_gap)):
            point, low, high = (bootstrap_ci(mine["normalized_score"], statistic, reps, groups=mine["env_id"])
                                if len(mine) else (np.nan,) * 3)
            row.update({name: point, f"{name}_ci_low": low, f"{name}_ci_high": high})
        rows.append(row)
    result.aggregates = pd.DataFrame(rows)
    pairs = []
    ran = [a for a in algos_in(runs) if (normalized["algo"] == a).any()]
    for x in ran:
        for y in ran:
            if x == y:
                continue
            both = set(normalized.loc[normalized["algo"] == x, "env_id"]) \
                & set(normalized.loc[normalized["algo"] == y, "env_id"])
            pair = normalized[normalized["algo"].isin([x, y]) & normalized["env_id"].isin(both)]
            point = low = high = np.nan
            if both:
                algos, envs = pair["algo"].to_numpy(), pair["env_id"].to_numpy()
                statistic = functools.partial(probability_of_improvement, algos=algos, envs=envs, x=x, y=y)
                point, low, high = bootstrap_ci(pair["normalized_score"], statistic, reps,
                                                groups=list(zip(envs, algos)))
            pairs.append({"algo": x, "versus": y, "envs": len(both), "runs": len(pair),
                          "point": point, "ci_low": low, "ci_high": high})
    result.improvement = pd.DataFrame(pairs, columns=["algo", "versus", "envs", "runs", "point", "ci_low",
                                                      "ci_high"])
    return result


def cross_env_table(cx: CrossEnv) -> pd.DataFrame:
    """cross_env.csv: one row per statistic (iqm, optimality_gap: per algorithm;
    probability_of_improvement: per ordered pair, P(algo > versus)) with its CI, runs and envs."""
    columns = ["statistic", "algo", "versus", "point", "ci_low", "ci_high", "runs", "envs"]
    rows = []
    for r in (cx.aggregates.to_dict("records") if cx.aggregates is not None else []):
        for name in ("iqm", "optimality_gap"):
            rows.append({"statistic": name, "algo": r["algo"], "versus": None, "point": r[name],
                         "ci_low": r[f"{name}_ci_low"], "ci_high": r[f"{name}_ci_high"], "runs": r["runs"],
                         "envs": r["envs"]})
    for r in (cx.improvement.to_dict("records") if cx.improvement is not None else []):
        rows.append({"statistic": "probability_of_improvement", **{c: r[c] for c in columns[1:]}})
    return pd.DataFrame(rows, columns=columns)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def anchor(title: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def cross_env_markdown(cx: CrossEnv, reps: int, images: dict | None = None, level: int = 2) -> str:
    """The cross-env page: IQM and optimality gap, the P(X > Y) matrix, the plots named in
    ``images`` (title -> file), the normalization with its sources, the excluded envs."""
    h = "#" * level
    lines = [f"{h} Across environments", ""]
    if not cx.applies:
        only = cx.envs[0] if cx.envs else "none"
        return "\n".join(lines + [f"Only one environment has runs ({only}), so there is nothing to "
                                  "aggregate across environments.", ""])
    used = list(cx.anchors)
    lines += [
        (f"Scores from all {len(used)} environments with runs" if len(used) == len(cx.envs) else
         f"Scores from {len(used)} of the {len(cx.envs)} environments with runs"
         + (f" ({', '.join(used)})" if used else "")) + ", each run's final eval mean normalized as "
        "(score − random) / (reference − random): 0 is a uniformly random policy (its return measured "
        "by the suite, `random_scores.json`), 1 the env's published reference (`references.toml`). "
        f"{REFERENCE_RULE} A reference may come from another env version, budget or metric (below, and "
        "each env's *Published references*), so 1 means matching that figure, not a like-for-like tie.",
        "",
    ]
    head = ["algorithm", "runs", "envs", "IQM [95% CI]", "optimality gap [95% CI]"]
    rows = [[r.algo, r.runs, f"{r.envs}/{len(used)}", _ci(r.iqm, r.iqm_ci_low, r.iqm_ci_high),
             _ci(r.optimality_gap, r.optimality_gap_ci_low, r.optimality_gap_ci_high)]
            for r in cx.aggregates.itertuples()]
    short = [r.algo for r in cx.aggregates.itertuples() if 0 < r.envs < len(used)]
    lines += [markdown_table(head, rows),
              "IQM: the mean of the middle 50% of an algorithm's normalized scores, over all its runs on "
              "the normalized envs pooled (an env with more runs weighs more). Optimality gap: the mean "
              "of max(0, 1 − score), how far runs fall short of the reference (lower is better). "
              f"95% stratified bootstrap CIs: each env's runs resampled on their own ({reps} resamples, "
              f"random state {RANDOM_STATE}; Agarwal et al. 2021)."
              + (f" Not every algorithm ran on every env ({', '.join(short)}): those figures cover "
                 "fewer envs and compare less directly." if short else ""), ""]
    algos = list(dict.fromkeys(cx.improvement["algo"])) if cx.improvement is not None else []
    lines += [f"{h}# Probability of improvement", ""]
    if len(algos) >= 2:
        cell = {(r.algo, r.versus): r for r in cx.improvement.itertuples()}
        matrix = []
        for x in algos:
            row = [x]
            for y in algos:
                r = cell.get((x, y))
                text = "–" if r is None else _ci(r.point, r.ci_low, r.ci_high)
                if r is not None and _given(r.point) and r.envs < len(used):
                    text += f" ({_count(r.envs, 'env')})"
                row.append(text)
            matrix.append(row)
        lines += [markdown_table(["P(row > column)", *algos], matrix),
                  "P(X > Y): per env, the probability that a run of X (row) ends with a higher score than "
                  "a run of Y (column), ties counting ½ (the Mann–Whitney statistic), averaged over the envs "
                  "both ran, each env weighing the same; 95% CIs from resampling each env × algorithm's "
                  "runs on their own (Agarwal et al. 2021). Above 0.5: X tends to do better.", ""]
    else:
        lines += ["–: it needs normalized runs of at least two algorithms.", ""]
    for title, name in (images or {}).items():
        lines += [f"{h}# {title}", "", f"![{title}]({link_target(name)})", ""]
    lines += [f"{h}# Normalization", ""]
    if cx.anchors:
        head = ["env", "runs", "random score (episodes)", "reference score", "from", "measured on",
                "its budget (steps)"]
        rows = []
        for env_id, (rnd, ref) in cx.anchors.items():
            episodes = f" ({rnd['episodes']:,})" if _given(rnd.get("episodes")) else ""
            rows.append([env_id, int((cx.normalized["env_id"] == env_id).sum()),
                         f"{rnd['mean']:.1f}{episodes}", f"{ref['mean']:.1f}",
                         f"{ref['algo']}, [{ref['library']}]({url_target(ref['url'])})",
                         version_note(ref["env_version"], env_id), f"{ref['budget']:,}"])
        lines.append(markdown_table(head, rows))
    else:
        lines += ["–: no environment has both a random score and a published reference.", ""]
    if cx.excluded:
        lines += ["Excluded from the aggregates:", ""]
        lines += [f"- `{env_id}`: {reason}" for env_id, reason in cx.excluded]
        lines.append("")
    lines += ["Machine-readable: [cross_env.csv](cross_env.csv) (every figure above with its CI), "
              "[normalized_scores.csv](normalized_scores.csv) (every run's normalized score).", ""]
    for note in cx.notes:
        lines += [f"Note: {note}.", ""]
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False,
    })
    return plt


def algo_colour(algo: str):
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors
    rank = algo_rank(algo)[0]
    # Names outside the protocol's five get a stable colour of their own (str hash() is salted).
    return palette[rank if rank < len(NAMES) else len(NAMES) + zlib.crc32(algo.encode()) % 5]


def slug(env_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)


def curve_bands(frame: pd.DataFrame, x: str, y: str, reps: int = 1000):
    """Per algorithm: (grid, mean, low, high, n_runs), each run resampled onto the common grid;
    the band is the bootstrap CI of the mean over runs at each grid point."""
    bands = {}
    for algo in algos_in(frame):
        curves = [(g[x].to_numpy(float), g[y].to_numpy(float))
                  for _, g in frame[frame["algo"] == algo].groupby("seed") if len(g) >= 2]
        if not curves:
            continue
        grid = common_grid(curves)
        if grid is None:
            continue
        matrix = np.vstack([resample(cx, cy, grid) for cx, cy in curves])
        bands[algo] = (grid, *bootstrap_ci(matrix, mean, reps), len(curves))
    return bands


def smoothed_training_returns(episodes: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for _, g in episodes.groupby(["algo", "seed"]):
        g = g.sort_values("global_step").copy()
        g["smoothed_return"] = g["return"].rolling(TRAIN_RETURN_WINDOW, min_periods=1).mean()
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else episodes.assign(smoothed_return=[])


def plot_learning_curves(env_id: str, evals: pd.DataFrame, episodes: pd.DataFrame, threshold, reps: int,
                         path: Path):
    plt = _plt()
    train = smoothed_training_returns(episodes)
    panels = [
        (evals, "global_step", "mean_return", "periodic greedy eval vs env steps", "env steps"),
        (evals, "train_time_s", "mean_return", "periodic greedy eval vs train time", "train time (s)"),
        (train, "global_step", "smoothed_return",
         f"training return ({TRAIN_RETURN_WINDOW}-episode mean) vs env steps", "env steps"),
        (train, "train_time_s", "smoothed_return",
         f"training return ({TRAIN_RETURN_WINDOW}-episode mean) vs train time", "train time (s)"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    for ax, (frame, x, y, title, xlabel) in zip(axes.flat, panels):
        for algo, (grid, centre, low, high, n) in curve_bands(frame, x, y, reps).items():
            colour = algo_colour(algo)
            ax.plot(grid, centre, color=colour, lw=1.8, label=f"{algo} (n={n})")
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, lw=0)
        if threshold is not None:
            ax.axhline(threshold, color="0.4", ls="--", lw=1, label=f"solve threshold {threshold:g}")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("return")
    axes.flat[0].legend(loc="lower right", fontsize=9)
    fig.suptitle(f"{env_id}: mean over seeds with 95% bootstrap CI band "
                 "(each run resampled onto a common grid; an ended run keeps its last value)")
    fig.savefig(path)
    plt.close(fig)


def _strip(ax, algos, values_by_algo, jitter_seed: int = RANDOM_STATE):
    rng = np.random.default_rng(jitter_seed)
    for i, algo in enumerate(algos):
        values = values_by_algo[algo]
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=28, color=algo_colour(algo),
                   alpha=0.8, zorder=3)
    ax.set_xticks(range(len(algos)), algos)
    ax.set_xlim(-0.6, len(algos) - 0.4)


def plot_seed_curves(env_id: str, evals: pd.DataFrame, threshold, path: Path):
    """One panel per algorithm: every seed's periodic eval curve thin, the median over seeds thick.

    A mean over seeds hides a run that solves and then collapses; here each run
    is drawn, so a fall after solving is visible as a line of its own.
    """
    plt = _plt()
    algos = algos_in(evals)
    fig, axes = plt.subplots(1, len(algos), figsize=(3.4 * len(algos) + 1, 3.6), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, algo in zip(axes.flat, algos):
        colour = algo_colour(algo)
        frame = evals[evals["algo"] == algo]
        curves = [(g["global_step"].to_numpy(float), g["mean_return"].to_numpy(float))
                  for _, g in frame.groupby("seed") if len(g) >= 1]
        for x, y in curves:
            ax.plot(x, y, color=colour, lw=0.7, alpha=0.45)
        usable = [(x, y) for x, y in curves if len(x) >= 2]
        grid = common_grid(usable) if usable else None
        if grid is not None:
            median = np.nanmedian(np.vstack([resample(x, y, grid) for x, y in usable]), axis=0)
            ax.plot(grid, median, color=colour, lw=2.4, label="median")
        if threshold is not None:
            ax.axhline(threshold, color="0.4", ls="--", lw=1)
        ax.set_title(f"{algo} (n={len(curves)})")
        ax.set_xlabel("env steps")
    axes.flat[0].set_ylabel("periodic greedy eval")
    fig.suptitle(f"{env_id}: every seed (thin) and the median (thick)")
    fig.savefig(path)
    plt.close(fig)


def _final_score_panel(ax, runs: pd.DataFrame, reps: int, marker_size: float = 5) -> None:
    """Every run's final score as a dot per algorithm, and the IQM with its 95% CI beside them."""
    algos = algos_in(runs)
    values = {a: runs.loc[runs["algo"] == a, "final_eval_mean"].to_numpy(float) for a in algos}
    _strip(ax, algos, values)
    for i, algo in enumerate(algos):
        point, low, high = bootstrap_ci(values[algo], iqm, reps)
        ax.errorbar(i + 0.3, point, yerr=[[point - low], [high - point]], fmt="D", color="black",
                    ms=marker_size, capsize=4, zorder=4, label="IQM, 95% CI" if i == 0 else None)


def plot_final_scores(env_id: str, runs: pd.DataFrame, reps: int, path: Path):
    plt = _plt()
    algos = algos_in(runs)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(algos) + 3), 4.5), constrained_layout=True)
    _final_score_panel(ax, runs, reps)
    ax.set_ylabel("final eval return (100 greedy episodes)")
    ax.set_title(f"{env_id}: final score per run")
    ax.legend(loc="lower right")
    fig.savefig(path)
    plt.close(fig)


def plot_final_scores_all_envs(runs: pd.DataFrame, reps: int, path: Path, columns: int = 4):
    """Small multiples: one panel per env (its own return scale), as plot_final_scores() draws it."""
    plt = _plt()
    envs = sorted(runs["env_id"].unique())
    ncols = min(columns, len(envs))
    nrows = math.ceil(len(envs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.4), constrained_layout=True,
                             squeeze=False)
    for ax, env_id in zip(axes.flat, envs):
        _final_score_panel(ax, runs[runs["env_id"] == env_id], reps, marker_size=4)
        ax.set_title(env_id, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes.flat[len(envs):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("final eval return")
    # one line fits three panels or more; a narrower grid breaks it in two instead of cropping it
    fig.suptitle("Final score per run (dots) and IQM with 95% CI (diamonds),"
                 + (" " if ncols >= 3 else "\n") + "each env on its own scale")
    fig.savefig(path)
    plt.close(fig)


def plot_steps_to_solve(env_id: str, runs: pd.DataFrame, path: Path):
    plt = _plt()
    algos = algos_in(runs)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(algos) + 3), 4.5), constrained_layout=True)
    solved = runs[runs["solved"] == True]  # noqa: E712
    values = {a: solved.loc[solved["algo"] == a, "steps_to_solve"].to_numpy(float) for a in algos}
    _strip(ax, algos, values)
    labels = [f"{a}\n{len(values[a])}/{int((runs['algo'] == a).sum())} solved" for a in algos]
    ax.set_xticks(range(len(algos)), labels)
    drawn = [i for i, algo in enumerate(algos) if len(values[algo])]
    for i in drawn:
        ax.hlines(np.median(values[algos[i]]), i - 0.25, i + 0.25, color="black", lw=2, zorder=4,
                  label="median" if i == drawn[0] else None)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("env steps to the first solving evaluation")
    ax.set_title(f"{env_id}: steps to solve per run (unsolved runs not drawn)")
    if len(solved):
        ax.legend(loc="upper right")
    fig.savefig(path)
    plt.close(fig)


def profile_taus(scores, points: int = 101) -> np.ndarray:
    """Thresholds from 0 (or 2% below the lowest score, if that is negative) to 2% above the
    highest score (at least to 1), so returns below zero (Pendulum) still show a profile."""
    scores = np.asarray(scores, dtype=float)
    return np.linspace(min(0.0, scores.min() * 1.02), max(scores.max(), 1.0) * 1.02, points)


def _draw_profiles(ax, runs: pd.DataFrame, column: str, taus, reps: int, strata: str | None = None,
                   label=lambda algo, runs: algo) -> None:
    """Each algorithm's performance profile of ``column`` with its 95% bootstrap band; with
    ``strata`` (a column) the bootstrap resamples the runs of each stratum on their own."""
    for algo in algos_in(runs):
        mine = runs[runs["algo"] == algo]
        profile, low, high = bootstrap_ci(
            mine[column].to_numpy(float), lambda x, axis: performance_profile(np.moveaxis(x, axis, -1), taus),
            reps, groups=None if strata is None else mine[strata].to_numpy())
        colour = algo_colour(algo)
        ax.step(taus, profile, where="post", color=colour, lw=1.8, label=label(algo, mine))
        ax.fill_between(taus, low, high, step="post", color=colour, alpha=0.15, lw=0)
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)


def plot_performance_profile(env_id: str, runs: pd.DataFrame, reps: int, path: Path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    _draw_profiles(ax, runs, "final_eval_mean", profile_taus(runs["final_eval_mean"]), reps)
    ax.set_xlabel("final eval return threshold τ")
    ax.set_title(f"{env_id}: performance profile (95% CI band)")
    ax.legend(loc="lower left")
    fig.savefig(path)
    plt.close(fig)


def plot_performance_profile_all_envs(normalized: pd.DataFrame, reps: int, path: Path):
    """The profile of normalized scores over every env's runs (Agarwal et al. 2021, fig. 5), the
    band from the stratified bootstrap (each env's runs resampled on their own)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    _draw_profiles(ax, normalized, "normalized_score", profile_taus(normalized["normalized_score"]), reps,
                   strata="env_id",
                   label=lambda algo, mine: f"{algo} ({_count(len(mine), 'run')}, "
                                            f"{_count(mine['env_id'].nunique(), 'env')})")
    ax.axvline(1.0, color="0.4", ls="--", lw=1, label="reference score")
    ax.set_xlabel("normalized score threshold τ (0: random policy, 1: reference)")
    ax.set_title("Every env: performance profile of normalized scores (95% stratified CI band)")
    ax.legend(loc="lower left", fontsize=9)
    fig.savefig(path)
    plt.close(fig)


# -- the report ----------------------------------------------------------------------------

def env_threshold(loaded: Loaded, env_id: str):
    """The solve threshold the runs used (config.json), else None."""
    for run_dir in loaded.runs.loc[loaded.runs["env_id"] == env_id, "run_dir"]:
        try:
            value = json.loads((Path(run_dir) / "config.json").read_text())["protocol"]["solve_threshold"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(value, (int, float)):
            return float(value)
    return None


def link_target(path: Path) -> str:
    """A relative path as a Markdown link target: percent-encoded, since a space or a
    parenthesis would end a plain (target) early and break the link."""
    return urllib.parse.quote(Path(path).as_posix(), safe="/")


def video_links(videos_dir: Path, out: Path, env_id: str, algo: str, seed: int) -> str:
    folder = videos_dir / env_id / algo / f"seed_{seed}"
    files = [p for p in folder.glob("episode_*.mp4") if re.fullmatch(r"episode_[0-9]+", p.stem)]
    files.sort(key=lambda p: int(p.stem.removeprefix("episode_")))
    return " ".join(f"[{p.stem.replace('_', ' ')}]({link_target(os.path.relpath(p, out))})"
                    for p in files) or "–"


def runs_markdown(runs: pd.DataFrame, videos_dir: Path, out: Path) -> str:
    head = ["env", "algorithm", "seed", "solved at (steps)", "solved at (s)", "evals held after solving",
            "worst eval after solving", "final eval", "last-100 train return", "train time (s)", "steps",
            "videos"]
    rows = []
    for r in runs.itertuples():
        rows.append([
            r.env_id, r.algo, r.seed,
            _num(r.steps_to_solve, thousands=True) if r.solved
            else ("not solved" if r.solved is False else "–"),
            _num(r.time_to_solve_s) if r.solved else "–",
            f"{_num(100 * r.frac_evals_solved_after_solve, 0)}%" if r.solved else "–",
            _num(r.min_eval_after_solve) if r.solved else "–",
            f"{r.final_eval_mean:.1f} ± {r.final_eval_std:.1f}",
            _num(r.last100_train_return), _num(r.train_time_s), f"{r.total_steps:,}",
            video_links(videos_dir, out, r.env_id, r.algo, r.seed),
        ])
    return markdown_table(head, rows)


def suite_groups(env_ids) -> list[tuple[str, list[str]]]:
    """The envs grouped by the suite of suites.toml that holds them (the largest plain suite, not
    one made of other suites), suites in the file's order and envs in each suite's order; envs of
    no suite last, sorted, as "other envs". A missing or malformed suites file: one sorted group."""
    from rlsuite.suites import load_suites

    env_ids = list(env_ids)
    try:
        plain = [suite for suite in load_suites().values() if not suite.members]
    except UsageError:
        return [("envs", sorted(env_ids))]
    home = {}  # env id -> its suite
    for suite in plain:
        for env_id in suite.envs:
            if env_id not in home or len(suite.envs) > len(home[env_id].envs):
                home[env_id] = suite
    groups = [(suite.name, [e for e in suite.envs if e in env_ids and home[e] is suite]) for suite in plain]
    others = sorted(e for e in env_ids if e not in home)
    return [(name, envs) for name, envs in groups if envs] + ([("other envs", others)] if others else [])


def write_report(loaded: Loaded, table: pd.DataFrame, plots: dict, results_dir: Path,
                 videos_dir: Path, out: Path, reps: int, references: dict | None = None,
                 across: str | None = None) -> Path:
    """report.md: ``across`` (the cross-env section, Markdown) first, then the summary table and
    one section per env, which opens with ``references[env_id]`` (its published references)."""
    n_runs = len(loaded.runs)
    several = len(plots) >= 2
    lines = [
        "# Comparison report", "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `aggregate_results.py` from "
        f"`{results_dir}`: {n_runs} completed run(s) loaded, {len(loaded.skipped)} skipped"
        + (" (listed at the end)." if loaded.skipped else "."), "",
    ]
    if several:  # with a dozen envs the page is long: say where everything is, suite by suite
        lines += ["Sections: [Across environments](#across-environments) · [Summary](#summary) · "
                  "[Runs](#runs)", ""]
        lines += [f"- {group}: " + " · ".join(f"[{env_id}](#{anchor(env_id)})" for env_id in envs)
                  for group, envs in suite_groups(plots)]
        lines.append("")
    if across:
        lines += [across]
    lines += [
        "## Summary", "",
        summary_markdown(table),
        f"Steps and time to solve: the first periodic greedy evaluation whose mean reaches the "
        f"solve threshold, over the solved runs only (median and interquartile range). Final eval: "
        f"100 greedy episodes of the final policy per run; mean and IQM (interquartile mean) "
        f"across runs, with {int(CONFIDENCE * 100)}% percentile bootstrap confidence "
        f"intervals ({reps} resamples, random state {RANDOM_STATE}; Agarwal et al. 2021). "
        f"Train time excludes evaluation. Stability, over the solved runs: *evals held after "
        f"solving* is the share of a run's periodic evaluations, from its first solving one on, "
        f"that reached the threshold (100% for a run that never fell back); *worst eval after "
        f"solving* is the lowest of them; *ended solved* counts the runs whose final evaluation "
        f"reached the threshold. Machine-readable: [summary.csv](summary.csv), "
        f"[runs.csv](runs.csv).", "",
    ]
    for env_id, files in plots.items():
        lines += [f"## {env_id}", ""]
        if references and env_id in references:
            lines += ["### Published references", "", references[env_id]]
        for title, name in files:
            if several and title == FINAL_SCORES:  # drawn once for all envs in the section above
                lines += [f"{title}: with every other env under "
                          f"[{ALL_FINAL_SCORES}](#{anchor(ALL_FINAL_SCORES)}) "
                          f"([this env alone]({link_target(name)})).", ""]
                continue
            lines += [f"### {title}", "", f"![{title}]({link_target(name)})", ""]
    lines += ["## Runs", "", runs_markdown(loaded.runs, videos_dir, out)]
    if loaded.skipped:
        lines += ["## Skipped runs", "", "These runs are not in any table or plot:", ""]
        lines += [f"- `{label}`: {reason}" for label, reason in loaded.skipped]
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# -- the command line -----------------------------------------------------------------------

def reps_count(text: str) -> int:
    """argparse type for --reps: an integer in [MIN_REPS, MAX_REPS]."""
    value = parse_integer(text)
    if value is None or not MIN_REPS <= value <= MAX_REPS:
        raise argparse.ArgumentTypeError(f"expected an integer in [{MIN_REPS}, {MAX_REPS:,}], got {text!r}")
    return value


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0],
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="root of the results tree: DIR/<env>/<algo>/seed_<n>/")
    p.add_argument("--out", default="report", metavar="DIR", help="where report.md, tables and plots go")
    p.add_argument("--videos-dir", default="videos", metavar="DIR",
                   help="root of the videos tree, linked from the report when present")
    p.add_argument("--reps", type=reps_count, default=2000, metavar="N",
                   help=f"bootstrap resamples, {MIN_REPS} to {MAX_REPS:,}")
    p.add_argument("--references", default=str(REFERENCES_FILE), metavar="FILE",
                   help="published figures to compare with: [[reference]] tables (env, algo, library, "
                        "env_version, mean, std, budget, seeds, metric, url, note); missing: columns show –")
    p.add_argument("--random-scores", default=str(RANDOM_SCORES_FILE), metavar="FILE",
                   help="a uniformly random policy's return per env (JSON), the 0 of the normalized "
                        "scores; missing: no cross-env aggregate")
    return p


def check_inputs(args) -> tuple[Path, Path]:
    results_dir, out = Path(args.results_dir), Path(args.out)
    if not results_dir.is_dir():
        raise UsageError(f"argument --results-dir: {results_dir} is not a folder; give the results "
                         "tree written by the runners (run run_all_comparison.py first)")
    if not find_run_dirs(results_dir, []):
        grid = results_dir / "grid"
        hint = (f"; its grid cells are results trees of their own: give --results-dir {grid}/<cell>, "
                "or compare the cells with sensitivity_study.py") if grid.is_dir() else ""
        raise UsageError(f"argument --results-dir: {results_dir} holds no runs "
                         f"(expected {results_dir}/<env>/<algo>/seed_<n>/){hint}")
    check_writable(out, "--out")
    return results_dir, out


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the report in --out may be incomplete", file=sys.stderr)
        return 130


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    try:
        results_dir, out = check_inputs(args)
        loaded = load_results(results_dir)
        for label, reason in loaded.skipped:
            print(f"skipped {label}: {reason}")
        if loaded.runs.empty:
            raise UsageError(f"argument --results-dir: none of the {len(loaded.skipped)} run(s) in "
                             f"{results_dir} could be loaded (reasons above)")
        create_folder(out, "--out")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    videos_dir = Path(args.videos_dir)
    loaded.runs.to_csv(out / "runs.csv", index=False)
    table = summarize(loaded.runs, args.reps)
    table.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text("# Summary\n\n" + summary_markdown(table), encoding="utf-8")
    references, references_note = _load_references(args.references)
    random_scores, random_note = _load_random_scores(args.random_scores)
    for note in (references_note, random_note):
        if note:
            print(f"note: {note}")
    compared = reference_rows(table, loaded.runs, references, args.reps)
    compared.to_csv(out / "references.csv", index=False)
    references_md = {env_id: references_markdown(rows, references_note)
                     for env_id, rows in compared.groupby("env_id", sort=False)}

    plots = {}
    for env_id in [e for _, envs in suite_groups(loaded.runs["env_id"].unique()) for e in envs]:
        runs = loaded.runs[loaded.runs["env_id"] == env_id]
        evals = loaded.evals[loaded.evals["env_id"] == env_id]
        episodes = loaded.episodes[loaded.episodes["env_id"] == env_id]
        name = slug(env_id)
        files = [
            ("Learning curves", f"learning_curves_{name}.png"),
            ("Every seed", f"seed_curves_{name}.png"),
            (FINAL_SCORES, f"final_scores_{name}.png"),
            ("Steps to solve", f"steps_to_solve_{name}.png"),
            ("Performance profile", f"performance_profile_{name}.png"),
        ]
        plot_learning_curves(env_id, evals, episodes, env_threshold(loaded, env_id), args.reps,
                             out / files[0][1])
        plot_seed_curves(env_id, evals, env_threshold(loaded, env_id), out / files[1][1])
        plot_final_scores(env_id, runs, args.reps, out / files[2][1])
        plot_steps_to_solve(env_id, runs, out / files[3][1])
        plot_performance_profile(env_id, runs, args.reps, out / files[4][1])
        plots[env_id] = files
    cx = cross_env(loaded.runs, references, random_scores, args.reps, notes=[references_note, random_note])
    images = {}
    if cx.applies and not cx.normalized.empty:
        plot_performance_profile_all_envs(cx.normalized, args.reps, out / "performance_profile_all_envs.png")
        images[ALL_PROFILE] = "performance_profile_all_envs.png"
    if cx.applies:
        plot_final_scores_all_envs(loaded.runs, args.reps, out / "final_scores_all_envs.png")
        images[ALL_FINAL_SCORES] = "final_scores_all_envs.png"
    cross_env_table(cx).to_csv(out / "cross_env.csv", index=False)
    cx.normalized.to_csv(out / "normalized_scores.csv", index=False)
    (out / "cross_env.md").write_text(cross_env_markdown(cx, args.reps, images, level=1), encoding="utf-8")
    report = write_report(loaded, table, plots, results_dir, videos_dir, out, args.reps, references_md,
                          cross_env_markdown(cx, args.reps, images))
    print(summary_markdown(table), end="")
    print(f"report: {report} ({len(loaded.runs)} run(s) loaded, {len(loaded.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
