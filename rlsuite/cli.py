"""Command line for every runner: common protocol flags + one flag per config field.

Bad input never reaches a traceback: every check raises ``UsageError`` with
one line naming the argument and what would be accepted; the runner prints
it and exits 2.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import math
import os
import re
import sys
import textwrap
import typing
from pathlib import Path


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append '(default: X)' unless the help text already says what the default is."""

    def _get_help_string(self, action):
        if "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)

    def __init__(self, prog):
        super().__init__(prog, max_help_position=34, width=100)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a parse error is one line on stderr (no usage dump) and exit 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # so that `--learning-rate -1e-3` reaches validation ("must be > 0") instead of
        # being mistaken for an option; argparse's own pattern misses exponents
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def field_docs(config_cls) -> dict[str, str]:
    """Attribute docstrings of a dataclass: the string literal under each field.

    CleanRL and tyro document hyperparameters the same way; we read them with
    ``ast`` so a field's documentation lives next to its default, once.
    """
    docs: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for node, nxt in zip(body, body[1:] + [None]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _optional_float(text: str):
    if text.strip().lower() in ("none", "null", "off"):
        return None
    return finite_float(text)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 64,64, got {text!r}"
        ) from None


def _field_kind(tp) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is float:
        return "float"
    if tp is str:
        return "str"
    if origin is tuple and args and args[0] is int:
        return "int_tuple"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and float in args:
        return "optional_float"
    raise TypeError(f"config field type {tp!r} is not supported by the CLI")


COMMON_HELP = {
    "env": "any registered Gymnasium id with a Box observation space and Discrete actions",
    "seed": "seeds python, numpy, torch and the environments",
    "results_dir": "root of the results tree: DIR/<env>/<algo>/seed_<seed>/",
    "eval_every": "environment steps between periodic greedy evaluations",
    "eval_episodes": "episodes per periodic evaluation",
    "record_video": "after training, record greedy episodes of the final policy",
    "video_episodes": "how many episodes to record",
    "video_dir": "root of the videos tree: DIR/<env>/<algo>/seed_<seed>/episode_<k>.mp4",
    "threads": "torch.set_num_threads for this run",
    "stop_when_solved": "end training at the first solving evaluation",
    "solve_threshold": "the return that counts as solved (default: the env's spec.reward_threshold, "
    "475 for CartPole-v1)",
    "overwrite": "replace a run directory that already holds a completed run",
    "evaluate": "no training: load the policy saved in RUN_DIR, run the final 100-episode "
    "evaluation (and --record-video if given), print the figures; RUN_DIR is not changed",
    "progress": "show a progress bar (default: only when stderr is a terminal)",
    "snapshot_every": "environment steps between actor snapshots (RUN_DIR/snapshots/step_<global_step>.pt, "
    "taken at the first update boundary after each multiple of N, like --eval-every); 0: none",
}


def build_parser(prog: str, algo: str, config_cls, description: str = "") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description=description,
        formatter_class=DefaultsFormatter,
    )
    common = parser.add_argument_group("common benchmark flags (BENCHMARK_PROTOCOL.md)")
    common.add_argument("--env", default="CartPole-v1", metavar="ID", help=COMMON_HELP["env"])
    common.add_argument("--seed", type=_int, default=1, metavar="N", help=COMMON_HELP["seed"])
    common.add_argument("--results-dir", default="results", metavar="DIR", help=COMMON_HELP["results_dir"])
    common.add_argument("--eval-every", type=_int, default=5000, metavar="N", help=COMMON_HELP["eval_every"])
    common.add_argument("--eval-episodes", type=_int, default=20, metavar="N", help=COMMON_HELP["eval_episodes"])
    common.add_argument("--record-video", action="store_true", help=COMMON_HELP["record_video"])
    common.add_argument("--video-episodes", type=_int, default=3, metavar="N", help=COMMON_HELP["video_episodes"])
    common.add_argument("--video-dir", default="videos", metavar="DIR", help=COMMON_HELP["video_dir"])
    common.add_argument("--threads", type=_int, default=1, metavar="N", help=COMMON_HELP["threads"])
    common.add_argument("--stop-when-solved", action="store_true", help=COMMON_HELP["stop_when_solved"])
    common.add_argument("--solve-threshold", type=finite_float, default=None, metavar="X", help=COMMON_HELP["solve_threshold"])
    common.add_argument("--overwrite", action="store_true", help=COMMON_HELP["overwrite"])
    common.add_argument("--evaluate", default=None, metavar="RUN_DIR", help=COMMON_HELP["evaluate"])
    common.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=COMMON_HELP["progress"])
    common.add_argument("--snapshot-every", type=_int, default=0, metavar="N", help=COMMON_HELP["snapshot_every"])

    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    group = parser.add_argument_group(f"{algo} hyperparameters")
    for f in dataclasses.fields(config_cls):
        kind = _field_kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = docs.get(f.name, "")
        if kind == "bool":
            group.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=default, help=help_text)
            continue
        convert = {"int": _int, "float": finite_float, "str": str,
                   "optional_float": _optional_float, "int_tuple": _int_tuple}[kind]
        metavar = {"int": "N", "float": "X", "str": "NAME", "optional_float": "X|none",
                   "int_tuple": "N,N"}[kind]
        if kind == "int_tuple":
            help_text = f"{help_text} (default: {','.join(map(str, default))})"
        group.add_argument(flag(f.name), dest=f.name, type=convert, default=default,
                           metavar=metavar, help=help_text)
    return parser


# Validation by field name: the shared hyperparameter names mean the same in
# every algorithm (CleanRL's convention), so one rule serves all of them.
UNIT_INTERVAL = {"gamma", "gae_lambda"}
STRICTLY_POSITIVE = {"max_grad_norm", "clip_coef", "max_kl", "target_kl", "damping"}


def check_value(name: str, value, kind: str) -> None:
    """Raise UsageError if ``value`` is not acceptable for config field ``name``."""
    opt = flag(name)
    if value is None:
        if kind == "optional_float":
            return
        raise UsageError(f"argument {opt}: a value is required")
    if kind == "int":
        if value < 1:
            raise UsageError(f"argument {opt}: must be a positive integer, got {value}")
    elif kind == "int_tuple":
        if not value or any(v < 1 for v in value):
            raise UsageError(f"argument {opt}: must be positive integers like 64,64, got {value}")
    elif kind in ("float", "optional_float"):
        if name in UNIT_INTERVAL and not 0.0 <= value <= 1.0:
            raise UsageError(f"argument {opt}: must be in [0, 1], got {value}")
        if ("learning_rate" in name or name.endswith("_lr") or name in STRICTLY_POSITIVE) and value <= 0:
            raise UsageError(f"argument {opt}: must be > 0, got {value}")
        if value < 0:
            raise UsageError(f"argument {opt}: must be >= 0, got {value}")


def parse_args(argv, prog: str, algo: str, config_cls, description: str = ""):
    """Parse and validate. Returns (common namespace, config instance).

    Raises UsageError for values that parse but are not acceptable;
    argparse itself exits 2 with one line for values that do not parse.
    """
    parser = build_parser(prog, algo, config_cls, description)
    args = parser.parse_args(argv)
    hints = typing.get_type_hints(config_cls)
    values = {}
    for f in dataclasses.fields(config_cls):
        value = getattr(args, f.name)
        check_value(f.name, value, _field_kind(hints[f.name]))
        values[f.name] = value
    for name in ("eval_every", "eval_episodes", "video_episodes", "threads"):
        if getattr(args, name) < 1:
            raise UsageError(f"argument {flag(name)}: must be a positive integer, got {getattr(args, name)}")
    if args.snapshot_every < 0:
        raise UsageError(f"argument --snapshot-every: must be 0 (off) or a positive integer, got {args.snapshot_every}")
    if args.seed < 0 or args.seed >= 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")
    cfg = config_cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    return args, cfg


def create_folder(path: Path, argument: str) -> None:
    """mkdir -p, with a failure reported as a UsageError naming ``argument``."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"argument {argument}: cannot create {path}: {exc.strerror}") from None


def check_writable(path: Path, argument: str) -> None:
    """The folder can be created and written to; nothing is created here."""
    probe = Path(path).absolute()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"argument {argument}: {probe} is not a writable folder: it exists and is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"argument {argument}: {probe} is not a writable folder: no write permission")


def parse_seeds(items) -> list[int]:
    """``1-5``, ``1,2,3``, ``1 2 3`` or a mix (a string or a list of them); every seed a
    non-negative integer below 2**31. Raises UsageError naming --seeds."""
    if isinstance(items, str):
        items = [items]
    seeds = []
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if match:
                lo, hi = int(match[1]), int(match[2])
                if lo > hi:
                    raise UsageError(f"argument --seeds: empty range {part!r}; write it low-high like 1-5")
                seeds.extend(range(lo, hi + 1))
            elif re.fullmatch(r"\d+", part):
                seeds.append(int(part))
            else:
                raise UsageError(f"argument --seeds: {part!r} is not a non-negative integer; "
                                 "give integers like 1-5 or 1,2,3")
    if not seeds:
        raise UsageError("argument --seeds: give at least one seed, like 1-5 or 1,2,3")
    if max(seeds) >= 2**31:
        raise UsageError(f"argument --seeds: seeds must be below 2**31, got {max(seeds)}")
    return list(dict.fromkeys(seeds))
