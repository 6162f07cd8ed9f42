"""Scores a run is measured against: published reference figures and a random policy's.

    python -m rlsuite.scores --envs CartPole-v1 Hopper-v5 --episodes 100 --out random_scores.json

``references.toml`` (repository root) holds the published figures, one
``[[reference]]`` table each, copied with their source; ``load_references``
checks every entry and ``reference_for`` picks the one to compare a run with.
``random_scores.json`` holds what a uniformly random policy scores on each env (on a
run's final-evaluation start states),
the floor of any normalized score; the command above measures it and merges
the result into the file. Only the registry's names are read here
(``rlsuite.algorithms.NAMES``); no algorithm module is imported.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np

from rlsuite.algorithms import NAMES
from rlsuite.cli import MAX_EVAL_EPISODES, OneLineParser, UsageError, check_writable, create_folder, integer
from rlsuite.envs import EnvError, describe_env
from rlsuite.records import read_toml, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent
REFERENCES_FILE = ROOT / "references.toml"
RANDOM_SCORES_FILE = ROOT / "random_scores.json"
PROG = "python -m rlsuite.scores"


@dataclass(frozen=True, kw_only=True)
class Reference:
    """One published figure (references.toml explains each field)."""

    env: str
    algo: str
    library: str
    env_version: str
    mean: float
    std: float | None = None
    budget: int
    seeds: int | None = None
    metric: str
    url: str
    note: str | None = None
    compare_with: str = "final_eval_mean"


FIELDS = tuple(f.name for f in dataclasses.fields(Reference))
OPTIONAL = frozenset({"std", "seeds", "note", "compare_with"})
# Which of our per-run figures a published one is set beside: the final greedy evaluation, or
# the mean of the last 100 training episodes (what CleanRL's tables report).
COMPARABLE = ("final_eval_mean", "last100_train_return")
TEXT_FIELDS = frozenset({"env", "algo", "library", "env_version", "metric", "url", "note"})


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(name: str, value):
    """The field's value as the dataclass types it; ValueError saying what was expected."""
    if name in TEXT_FIELDS:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
        if name == "url" and not value.startswith("https://"):
            raise ValueError(f"url: expected an https:// address, got {value!r}")
        if name == "algo" and value not in NAMES:
            raise ValueError(f"algo: unknown algorithm {value!r}; known: {', '.join(NAMES)}")
        return value.strip()
    if name == "compare_with":
        if value not in COMPARABLE:
            raise ValueError(f"compare_with: expected one of {', '.join(COMPARABLE)}, got {value!r}")
        return value
    if name in ("mean", "std"):
        if not _number(value):
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
        if name == "std" and value < 0:
            raise ValueError(f"std: must be >= 0, got {value!r}")
        return float(value)
    # budget, seeds
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def parse_references(data: dict, source: str = "references.toml",
                     problems: list | None = None) -> list[Reference]:
    """The checked entries of a parsed references file; ValueError names the entry and the problem.

    With ``problems`` (a list; the aggregator's tolerant reading), a bad entry is left out and
    its one-line message appended there instead; a file-level problem still raises."""
    unknown = set(data) - {"reference"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(sorted(map(repr, unknown)))}; "
                         "every figure is a [[reference]] table")
    tables = data.get("reference", [])
    if not isinstance(tables, list):
        raise ValueError(f"{source}: 'reference' must be an array of tables, written [[reference]]")
    refs, seen = [], {}
    for index, table in enumerate(tables, start=1):
        try:
            ref = _check_reference(table, f"{source} [[reference]] #{index}", seen, index)
        except ValueError as exc:
            if problems is None:
                raise
            problems.append(str(exc).removeprefix(f"{source} "))
            continue
        refs.append(ref)
    return refs


def _check_reference(table, where: str, seen: dict, index: int) -> Reference:
    """One [[reference]] table as a Reference; ValueError naming ``where`` and the problem."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table of fields")
    if isinstance(table.get("env"), str) and isinstance(table.get("algo"), str):
        where += f" ({table['env']}, {table['algo']})"
    for name in table:
        if name not in FIELDS:
            raise ValueError(f"{where}: unknown field {name!r}; fields: {', '.join(FIELDS)}")
    missing = [name for name in FIELDS if name not in OPTIONAL and name not in table]
    if missing:
        raise ValueError(f"{where}: missing required field {missing[0]!r}")
    values = {}
    for name, value in table.items():
        try:
            values[name] = _check_value(name, value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    ref = Reference(**values)
    key = (ref.env, ref.algo, ref.library, ref.budget)
    if key in seen:
        raise ValueError(f"{where}: the same env, algo, library and budget as entry #{seen[key]}")
    seen[key] = index
    return ref


def load_references(path=REFERENCES_FILE) -> list[Reference]:
    """Every entry of the references file, checked; one ValueError line for the first problem."""
    return parse_references(read_toml(path), str(path))


def reference_for(refs: list[Reference], env: str, algo: str, budget: int | None = None) -> Reference | None:
    """The figure to compare a run of ``algo`` on ``env`` with, or None if there is none.

    An entry with the run's ``budget`` wins; otherwise the entry whose budget is closest
    (by ratio); ties, and ``budget=None``, go to the entry listed first in the file.
    """
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be a positive number of steps, got {budget!r}")
    candidates = [r for r in refs if r.env == env and r.algo == algo]
    if not candidates:
        return None
    if budget is None:
        return candidates[0]
    return min(candidates, key=lambda r: abs(math.log(r.budget / budget)))  # min keeps the first of ties


# -- random-policy scores ------------------------------------------------------

def measure_random(env_id: str, episodes: int = 100, seed: int = 0) -> dict:
    """Mean and std of the return of a uniformly random policy over ``episodes`` episodes.

    Played by the suite's evaluator on the start states of a run's final evaluation
    (``final_eval_seeds(seed, episodes)``), so the floor of a normalized score faces what the
    runs faced; actions are uniform over the Discrete actions or the Box bounds, drawn from a
    generator seeded with ``seed``. EnvError for an id the suite cannot run.
    """
    from rlsuite.evaluation import evaluate_policy, final_eval_seeds  # torch: only when measuring

    info = describe_env(env_id)
    rng = np.random.default_rng(seed)
    if info.n_actions is not None:
        def act(obs):
            return rng.integers(info.n_actions, size=len(obs))
    else:
        low, high = np.asarray(info.action_low), np.asarray(info.action_high)

        def act(obs):
            return rng.uniform(low, high, size=(len(obs), info.action_dim))
    values = evaluate_policy(env_id, act, final_eval_seeds(seed, episodes))
    return {"mean": float(values.mean()), "std": float(values.std()), "episodes": episodes, "seed": seed}


def check_random_scores(data, source: str = "random_scores.json",
                        problems: list | None = None) -> dict[str, dict]:
    """A random-scores mapping, env id -> {mean, std, episodes, seed, ...}; ValueError names the env.

    With ``problems`` (a list), a bad entry is left out and its message appended there instead."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected an object mapping env ids to scores")
    good = {}
    for env_id, entry in data.items():
        try:
            _check_random_entry(env_id, entry, f"{source}: entry {env_id!r}")
        except ValueError as exc:
            if problems is None:
                raise
            problems.append(str(exc).removeprefix(f"{source}: "))
            continue
        good[env_id] = entry
    return good


def _check_random_entry(env_id: str, entry, where: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object with mean, std, episodes, seed")
    for name in ("mean", "std", "episodes", "seed"):
        if name not in entry:
            raise ValueError(f"{where}: missing {name!r}")
    if not _number(entry["mean"]) or not _number(entry["std"]) or entry["std"] < 0:
        raise ValueError(f"{where}: mean and std must be finite numbers, std >= 0")
    for name, low in (("episodes", 1), ("seed", 0)):
        value = entry[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{where}: {name} must be an integer >= {low}, got {value!r}")


def load_random_scores(path=RANDOM_SCORES_FILE) -> dict[str, dict]:
    """The random-policy scores file, checked; ValueError (one line) if it is unreadable or malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    return check_random_scores(data, str(path))


def save_random_scores(scores: dict[str, dict], path=RANDOM_SCORES_FILE) -> None:
    """Write the scores, envs in sorted order, atomically (a reader never sees half a file)."""
    check_random_scores(scores, str(path))
    write_json_atomic(Path(path), {env_id: scores[env_id] for env_id in sorted(scores)})


def reproduce_command(env_id: str, episodes: int, seed: int) -> str:
    """The command that measures this one entry again."""
    return f"{PROG} --envs {env_id} --episodes {episodes} --seed {seed}"


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROG,
        description="Measure the return of a uniformly random policy on each env and merge it "
        "into a JSON file (the floor of a normalized score).",
    )
    parser.add_argument("--envs", nargs="+", required=True, metavar="ID",
                        help="registered Gymnasium ids the suite can run, e.g. CartPole-v1 Hopper-v5")
    parser.add_argument("--episodes", type=integer, default=100, metavar="N",
                        help=f"episodes per env (at most {MAX_EVAL_EPISODES:,}; default: 100)")
    parser.add_argument("--seed", type=integer, default=0, metavar="N",
                        help="seeds the first reset and the action space (default: 0)")
    parser.add_argument("--out", default=str(RANDOM_SCORES_FILE), metavar="FILE",
                        help="the JSON file to update; entries of other envs are kept "
                        "(default: random_scores.json at the repository root)")
    return parser


def check_args(args) -> dict[str, dict]:
    """Every input checked before anything is measured; returns the scores already in --out."""
    if not 1 <= args.episodes <= MAX_EVAL_EPISODES:
        raise UsageError(f"argument --episodes: must be a positive integer, at most "
                         f"{MAX_EVAL_EPISODES:,}, got {args.episodes}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")
    for env_id in args.envs:
        try:
            describe_env(env_id)
        except EnvError as exc:
            raise UsageError(f"argument --envs: {str(exc).removeprefix('--env: ')}") from None
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"argument --out: {out} is a folder; give a file name like random_scores.json")
    check_writable(out.parent, "--out")
    scores = {}
    if out.exists():
        try:
            scores = load_random_scores(out)
        except ValueError as exc:
            raise UsageError(f"argument --out: {exc}; not overwritten") from None
    create_folder(out.parent, "--out")
    return scores


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        scores = check_args(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        for env_id in dict.fromkeys(args.envs):
            result = measure_random(env_id, args.episodes, args.seed)
            result["command"] = reproduce_command(env_id, args.episodes, args.seed)
            result["gymnasium"] = gymnasium.__version__
            scores[env_id] = result
            save_random_scores(scores, args.out)  # after each env: an interrupt keeps the ones done
            print(f"{env_id}: {result['mean']:.2f} ± {result['std']:.2f} over {args.episodes} "
                  f"random episodes (seed {args.seed})")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {args.out} holds the envs finished so far", file=sys.stderr)
        return 130
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
