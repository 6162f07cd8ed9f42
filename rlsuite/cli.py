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
import types
import typing
from pathlib import Path

# Upper bounds on counts, so a typo (an extra zero, a pasted number) is refused
# up front instead of exhausting memory or processes after files were written.
# Threads and A3C workers past a few per core only queue for the same cores.
THREADS_PER_CORE = 4
MAX_EVAL_EPISODES = 10_000      # episodes run side by side: one env object each
MAX_VIDEO_EPISODES = 1_000
MAX_STEPS = 10**12              # a step budget or interval; beyond any run this suite can hold
EVAL_EVERY = 5000               # the protocol's default interval between periodic evaluations
EVAL_EPISODES = 20              # the protocol's default episodes per periodic evaluation
FINAL_EVAL_EPISODES = 100       # episodes of the final evaluation (docs/protocol.md)
MAX_NUM_ENVS = 4096             # a vector env of 4096 CartPoles is ~100 MB of Python envs
MAX_HIDDEN_SIZE = 65_536        # one 65536x65536 float32 layer is already 16 GiB
MAX_HIDDEN_LAYERS = 16
MAX_EPISODES_PER_UPDATE = 4096
MAX_ITERATIONS = 100_000        # epochs, CG / line-search / value iterations per update


def cpu_cores() -> int:
    return os.cpu_count() or 1


def max_threads() -> int:
    """--threads and A3C's num_workers: at most THREADS_PER_CORE per core of this machine."""
    return THREADS_PER_CORE * cpu_cores()


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


_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_integer(text: str) -> int | None:
    """Decimal digits with an optional sign, else None.

    Python's int() also takes ``1_0`` (as 10) and non-ASCII digits; on a command
    line those are typos, not numbers.
    """
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def integer(text: str) -> int:
    value = parse_integer(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected an integer like 42, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = parse_integer(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer like 42, got {text!r}")
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
    values = tuple(parse_integer(x) for x in text.split(",") if x.strip())
    if None in values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,64, got {text!r}")
    return values


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


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
    if origin in (typing.Union, types.UnionType) and float in args:
        return "optional_float"
    raise TypeError(f"config field type {tp!r} is not supported by the CLI")


COMMON_HELP = {
    "env": "any registered Gymnasium id with a flat Box observation space and Discrete or flat Box "
    "actions; picks the env's preset from --presets, if it has one",
    "seed": "seeds python, numpy, torch and the environments",
    "results_dir": "root of the results tree: DIR/<env>/<algo>/seed_<seed>/",
    "eval_every": "environment steps between periodic greedy evaluations",
    "eval_episodes": f"episodes per periodic evaluation (at most {MAX_EVAL_EPISODES:,})",
    "record_video": "after training, record greedy episodes of the final policy",
    "video_episodes": f"how many episodes to record (at most {MAX_VIDEO_EPISODES:,})",
    "video_dir": "root of the videos tree: DIR/<env>/<algo>/seed_<seed>/episode_<k>.mp4",
    "threads": f"torch.set_num_threads for this run (at most {THREADS_PER_CORE} per core)",
    "stop_when_solved": "end training at the first solving evaluation",
    "solve_threshold": "the return that counts as solved (default: the env's spec.reward_threshold, "
    "475 for CartPole-v1)",
    "overwrite": "replace a run directory that already holds a completed run",
    "evaluate": "no training: load the policy saved in RUN_DIR, run the final 100-episode "
    "evaluation (and --record-video if given), print the figures; RUN_DIR is not changed",
    "progress": "show a progress bar (default: only when stderr is a terminal)",
    "presets": "the per-environment hyperparameter presets, a TOML file with one table "
    "[ALGO.\"ENV\"] per entry (default: presets.toml at the repository root); a flag given "
    "on the command line overrides the preset; an env without an entry runs the defaults "
    "shown below; none: ignore presets",
    "snapshot_every": "environment steps between actor snapshots "
    "(RUN_DIR/snapshots/step_<global_step>.pt, taken at the first update boundary after each "
    "multiple of N, like --eval-every); 0: none",
}
# The flags every runner has besides its config's fields (docs/protocol.md).
COMMON_FLAGS = tuple(COMMON_HELP)


def build_parser(prog: str, algo: str, config_cls, description: str = "") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description=description,
        formatter_class=DefaultsFormatter,
        epilog="Per-environment presets live in presets.toml at the repository root "
        f"(tables [{algo}.\"ENV\"]): --env ENV starts from ENV's entry, flags override it, "
        "and config.json records the entry and every value used. The defaults above are the "
        "dataclass defaults, which an env without an entry (CartPole-v1 among them) runs.",
    )
    common = parser.add_argument_group("common benchmark flags (docs/protocol.md)")

    def add(name, **kwargs):
        common.add_argument(flag(name), help=COMMON_HELP[name], **kwargs)

    add("env", default="CartPole-v1", metavar="ID")
    add("seed", type=integer, default=1, metavar="N")
    add("results_dir", default="results", metavar="DIR")
    add("eval_every", type=integer, default=EVAL_EVERY, metavar="N")
    add("eval_episodes", type=integer, default=EVAL_EPISODES, metavar="N")
    add("record_video", action="store_true")
    add("video_episodes", type=integer, default=3, metavar="N")
    add("video_dir", default="videos", metavar="DIR")
    add("threads", type=integer, default=1, metavar="N")
    add("stop_when_solved", action="store_true")
    add("solve_threshold", type=finite_float, default=None, metavar="X")
    add("overwrite", action="store_true")
    add("evaluate", default=None, metavar="RUN_DIR")
    add("progress", action=argparse.BooleanOptionalAction, default=None)
    add("snapshot_every", type=integer, default=0, metavar="N")
    from rlsuite.presets import PRESETS_FILE  # here: rlsuite.presets imports this module

    add("presets", default=str(PRESETS_FILE), metavar="FILE")

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
        metavar = {"int": "N", "float": "X", "str": "NAME", "optional_float": "X|none",
                   "int_tuple": "N,N"}[kind]
        if kind == "int_tuple":
            help_text = f"{help_text} (default: {','.join(map(str, default))})"
        group.add_argument(flag(f.name), dest=f.name, type=CONVERTERS[kind], default=default,
                           metavar=metavar, help=help_text)
    return parser


CONVERTERS = {"bool": _bool, "int": integer, "float": finite_float, "str": str,
              "optional_float": _optional_float, "int_tuple": _int_tuple}

# Validation by field name: the shared hyperparameter names mean the same in
# every algorithm (CleanRL's convention), so one rule serves all of them.
UNIT_INTERVAL = {"gamma", "gae_lambda"}
STRICTLY_POSITIVE = {"max_grad_norm", "clip_coef", "max_kl", "target_kl", "damping", "obs_clip", "reward_clip"}
# Signed fields and their bounds: log sigma from -10 to 2 is sigma from 4.5e-5 to 7.4 (an action
# space's scale; Box2D and MuJoCo actions lie in [-1, 1] or so).
SIGNED = {"log_std_init": (-10.0, 2.0)}
# Integer fields where 0 means "off" (gSDE: no resampling within a rollout).
ZERO_ALLOWED = {"sde_sample_freq"}


def max_count(name: str) -> int:
    """The largest value an integer config field ``name`` may take (see the bounds at the top)."""
    if name == "num_workers":
        return max_threads()
    if name == "num_envs":
        return MAX_NUM_ENVS
    if name == "episodes_per_update":
        return MAX_EPISODES_PER_UPDATE
    if name.endswith(("_epochs", "_iters", "_iterations")):
        return MAX_ITERATIONS
    return MAX_STEPS


def check_value(name: str, value, kind: str) -> None:
    """Raise UsageError if ``value`` is not acceptable for config field ``name``."""
    opt = flag(name)
    if value is None:
        if kind == "optional_float":
            return
        raise UsageError(f"argument {opt}: a value is required")
    if kind == "int":
        limit = max_count(name)
        if name in ZERO_ALLOWED:
            if not 0 <= value <= limit:
                raise UsageError(f"argument {opt}: must be an integer in [0, {limit:,}], got {value}")
        elif not 1 <= value <= limit:
            raise UsageError(f"argument {opt}: must be a positive integer, at most {limit:,}, got {value}")
    elif kind == "int_tuple":
        if not value or len(value) > MAX_HIDDEN_LAYERS or any(not 1 <= v <= MAX_HIDDEN_SIZE for v in value):
            raise UsageError(f"argument {opt}: must be 1 to {MAX_HIDDEN_LAYERS} integers in "
                             f"[1, {MAX_HIDDEN_SIZE:,}] like 64,64, got {','.join(map(str, value))}")
    elif kind in ("float", "optional_float"):
        if name in SIGNED:
            low, high = SIGNED[name]
            if not low <= value <= high:
                raise UsageError(f"argument {opt}: must be in [{low:g}, {high:g}], got {value}")
            return
        if name in UNIT_INTERVAL and not 0.0 <= value <= 1.0:
            raise UsageError(f"argument {opt}: must be in [0, 1], got {value}")
        if ("learning_rate" in name or name.endswith("_lr") or name in STRICTLY_POSITIVE) and value <= 0:
            raise UsageError(f"argument {opt}: must be > 0, got {value}")
        if value < 0:
            raise UsageError(f"argument {opt}: must be >= 0, got {value}")


def check_choice(name: str, value: str, choices) -> None:
    """A text field that names one of a fixed set (REINFORCE's estimator, A2C's optimizer); for a
    config's ``validate()``, whose ValueError the runner and the presets loader turn into one line."""
    if value not in choices:
        raise ValueError(f"argument {flag(name)}: must be one of {', '.join(choices)}, got {value!r}")


def field_kinds(config_cls) -> dict[str, str]:
    """Config field name -> its CLI kind (int, float, bool, ...), in field order."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: _field_kind(hints[f.name]) for f in dataclasses.fields(config_cls)}


def build_config(config_cls, values: dict):
    """The config from checked field values, with its own cross-field ``validate()`` run."""
    cfg = config_cls(**values)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return cfg


def check_overrides(config_cls, pairs, label: str, argument: str = "--set") -> dict:
    """Field values given as text (``[("learning_rate", "3e-4")]``), parsed and checked exactly
    as the runner parses and checks its flags. Returns {field: value}; UsageError names
    ``argument`` (``--set``, or the orchestrator's ``--grid``) and ``label.field``
    (e.g. ``ppo.learning_rate``)."""
    kinds = field_kinds(config_cls)
    values = {}
    for name, text in pairs:
        where = f"argument {argument}: {label}.{name}"
        if name in COMMON_FLAGS:
            raise UsageError(f"{where}: {flag(name)} is a flag every runner shares, not a hyperparameter; "
                             f"{argument} takes hyperparameters only")
        if name not in kinds:
            raise UsageError(f"{where}: {config_cls.__name__} has no field {name} (the runner has no flag "
                             f"{flag(name)}); its fields: {', '.join(kinds)}")
        try:
            value = CONVERTERS[kinds[name]](text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{where}: {exc}") from None
        try:
            check_value(name, value, kinds[name])
        except UsageError as exc:
            raise UsageError(f"{where}: {str(exc).split(': ', 1)[1]}") from None
        values[name] = value
    defaults = {f.name: getattr(config_cls(), f.name) for f in dataclasses.fields(config_cls)}
    try:
        build_config(config_cls, {**defaults, **values})
    except UsageError as exc:
        raise UsageError(f"argument {argument}: {label}: {exc}") from None
    return values


COMMON_BOUNDS = {  # flag -> (lowest, highest)
    "eval_every": (1, MAX_STEPS),
    "eval_episodes": (1, MAX_EVAL_EPISODES),
    "video_episodes": (1, MAX_VIDEO_EPISODES),
    "snapshot_every": (0, MAX_STEPS),
}


def check_common(args) -> None:
    """The common flags' ranges; UsageError names the flag."""
    for name, (lo, hi) in COMMON_BOUNDS.items():
        value = getattr(args, name)
        if not lo <= value <= hi:
            what = "0 (off) or a positive integer" if lo == 0 else "a positive integer"
            raise UsageError(f"argument {flag(name)}: must be {what}, at most {hi:,}, got {value}")
    check_threads(args.threads)
    if args.seed < 0 or args.seed >= 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")


def check_threads(threads: int) -> None:
    if not 1 <= threads <= max_threads():
        raise UsageError(f"argument --threads: must be an integer in [1, {max_threads()}] "
                         f"({THREADS_PER_CORE} per core on this {cpu_cores()}-core machine), got {threads}")


def parse_args(argv, prog: str, algo: str, config_cls, description: str = ""):
    """Parse and validate. Returns (common namespace, config instance).

    Raises UsageError for values that parse but are not acceptable;
    argparse itself exits 2 with one line for values that do not parse.
    """
    from rlsuite.presets import load_preset

    parser = build_parser(prog, algo, config_cls, description)
    args = parser.parse_args(argv)
    # The env's preset becomes the parser's defaults, and the command line is parsed again:
    # what the user typed wins, everything else comes from the preset or the dataclass.
    args.preset = None
    if args.evaluate is None and args.presets.strip().lower() != "none":
        args.preset = load_preset(args.presets, algo, args.env, config_cls)
        if args.preset is not None:
            parser.set_defaults(**args.preset.values)
            preset = args.preset
            args = parser.parse_args(argv)
            args.preset = preset
    values = {}
    for name, kind in field_kinds(config_cls).items():
        check_value(name, getattr(args, name), kind)
        values[name] = getattr(args, name)
    check_common(args)
    cfg = build_config(config_cls, values)
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
        raise UsageError(f"argument {argument}: {probe} is not a writable folder: "
                         "it exists and is not a folder")
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
            match = re.fullmatch(r"([0-9]+)\s*-\s*([0-9]+)", part)
            if match:
                lo, hi = int(match[1]), int(match[2])
                if lo > hi:
                    raise UsageError(f"argument --seeds: empty range {part!r}; write it low-high like 1-5")
                seeds.extend(range(lo, hi + 1))
            elif re.fullmatch(r"[0-9]+", part):
                seeds.append(int(part))
            else:
                raise UsageError(f"argument --seeds: {part!r} is not a non-negative integer; "
                                 "give integers like 1-5 or 1,2,3")
    if not seeds:
        raise UsageError("argument --seeds: give at least one seed, like 1-5 or 1,2,3")
    if max(seeds) >= 2**31:
        raise UsageError(f"argument --seeds: seeds must be below 2**31, got {max(seeds)}")
    return list(dict.fromkeys(seeds))
