"""Run the full comparison: algorithms x seeds x envs, each run its own process.

    python run_all_comparison.py                          # 5 algorithms x seeds 1-5 on CartPole-v1
    python run_all_comparison.py --algos ppo,a2c --seeds 1-10 --jobs 2
    python run_all_comparison.py --set ppo.learning_rate=3e-4 --total-steps 200000
    python run_all_comparison.py --backend ray --address HOST:6379 --results-dir /shared/results
    python run_all_comparison.py --algos ppo --seeds 1-3 --grid learning_rate=1e-4,1e-3 --grid gamma=0.9,0.99
    python run_all_comparison.py --suite classic --dry-run   # the plan and its estimated wall time

A suite (suites.toml: cartpole, classic, box2d, mujoco, overnight) names the
envs and each env's seeds; every env runs at its preset's budget
(presets.toml), and --algos, --seeds, --envs and --total-steps still override;
a suite may spread a set number of periodic evaluations over each run's budget
(evals_per_run), which --evals-per-run or --eval-every overrides. Without --suite and --envs the
matrix is the cartpole suite. The estimated wall time of --dry-run, and the ETA
while the matrix runs, come from timed runs per (algorithm, env): a training
rate, a cost per periodic evaluation and a fixed cost per run (rlsuite/suites.py,
throughput.json), which every finished run updates.

Every run is ``<algo>_benchmark.py --env E --seed S --results-dir DIR ...``
started as a child process in its own session (so a timeout or Ctrl-C can
end the runner and any worker processes it spawned), with its output in
``DIR/<env>/<algo>/seed_<n>/runner.log``. The matrix is resumable: a run
whose summary.json says ``completed`` is skipped, anything else is redone,
so after Ctrl-C the same command continues where it stopped. At the end the
aggregator writes the report (``--no-aggregate`` to skip it).

A grid sweeps hyperparameters: ``--grid ppo.learning_rate=1e-4,1e-3`` (one
algorithm) or ``--grid gamma=0.9,0.99`` (every selected algorithm that has the
field; the others are left out of the run), repeatable; each algorithm runs
the cross product of its axes x seeds. A cell is an ordinary results tree of
its own, named from its overrides (docs/protocol.md, section 3):
``DIR/grid/<field>=<value>__<field>=<value>/<env>/<algo>/seed_<n>/``.

With ``--backend ray`` the same command lines run as Ray tasks on a cluster
(see RayBackend); the local process pool is the default and Ray an optional
install (requirements-ray.txt).

Exit status: 0 every run completed, 1 some run failed, 2 bad input,
130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rlsuite import algorithms
from rlsuite.cli import (
    COMMON_BOUNDS,
    EVAL_EVERY,
    MAX_STEPS,
    OneLineParser,
    UsageError,
    check_overrides,
    check_threads,
    check_writable,
    field_kinds,
    finite_float,
    parse_seeds,
    positive_int,
)
from rlsuite.processes import start_runner
from rlsuite.records import is_completed, read_summary
from rlsuite.suites import Throughput, format_duration, get_suite, spread_evals

ROOT = Path(__file__).resolve().parent
PROG = "run_all_comparison.py"

# How long a runner gets between SIGTERM (it writes summary.json "interrupted"
# and stops its workers) and SIGKILL of its whole process group.
DEFAULT_GRACE_S = 10.0
FAILURES_FILE = "failures.txt"


# -- parsing the matrix -------------------------------------------------------

def parse_algos(items: list[str]) -> list[str]:
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    if not names:
        raise UsageError("argument --algos: give at least one of " + ", ".join(algorithms.NAMES))
    for name in names:
        if name not in algorithms.ALGORITHMS:
            raise UsageError(f"argument --algos: unknown algorithm {name!r}; "
                             f"choose from {', '.join(algorithms.NAMES)}")
    return list(dict.fromkeys(names))


def parse_envs(items: list[str]) -> list[str]:
    from rlsuite.envs import EnvError, describe_env

    envs = list(dict.fromkeys(n.strip() for item in items for n in item.split(",") if n.strip()))
    if not envs:
        raise UsageError("argument --envs: give at least one Gymnasium id, like CartPole-v1")
    for env_id in envs:
        try:
            describe_env(env_id)
        except EnvError as exc:
            raise UsageError("argument --envs: " + str(exc).removeprefix("--env: ")) from None
    return envs


def parse_overrides(items: list[str], algos: list[str]) -> dict[str, list[tuple[str, str]]]:
    """``--set ppo.learning_rate=3e-4`` -> {"ppo": [("learning_rate", "3e-4")]}.

    Only the shape and the algorithm are checked here; ``check_override_values``
    checks each field and value against the algorithm's config.
    """
    overrides: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        match = re.fullmatch(r"([A-Za-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)=(.*)", item.strip())
        if not match:
            raise UsageError(f"argument --set: expected ALGO.FIELD=VALUE like ppo.learning_rate=3e-4, "
                             f"got {item!r}")
        algo, name, value = match[1], match[2].replace("-", "_"), match[3]
        if algo not in algorithms.ALGORITHMS:
            raise UsageError(f"argument --set: unknown algorithm {algo!r} in {item!r}; "
                             f"choose from {', '.join(algorithms.NAMES)}")
        if algo not in algos:
            raise UsageError(f"argument --set: {algo} is not in --algos ({','.join(algos)}); "
                             f"drop {item!r} or add {algo} to --algos")
        if value == "":
            raise UsageError(f"argument --set: {item!r} has no value")
        overrides.setdefault(algo, []).append((name, value))
    return overrides


def check_override_values(overrides: dict[str, list[tuple[str, str]]]) -> dict[str, dict]:
    """Every --set value parsed and checked as its runner would (rlsuite.cli), up front.

    A runner's flags are the common ones plus one per field of its config
    dataclass, so the config class from the registry says which names exist;
    the runner script itself is never asked. Returns {algo: {field: value}}.
    """
    checked = {}
    for algo, pairs in overrides.items():
        try:
            config_cls = algorithms.get(algo).config_class()
        except ImportError as exc:
            raise UsageError(f"argument --set: cannot read {algo}'s hyperparameters: {exc}") from None
        checked[algo] = check_overrides(config_cls, pairs, algo)
    return checked


GRID_DIR = "grid"  # under --results-dir: one results tree per grid cell


@dataclass(frozen=True)
class GridAxis:
    algo: str | None  # None: every selected algorithm that has the field
    field: str
    values: tuple[str, ...]  # as typed, duplicates dropped


def parse_grid(items: list[str], algos: list[str]) -> list[GridAxis]:
    """``--grid ppo.learning_rate=1e-4,1e-3`` or ``--grid gamma=0.9,0.99``; shape and names only."""
    axes = []
    for item in items:
        match = re.fullmatch(r"(?:([A-Za-z0-9_]+)\.)?([A-Za-z_][A-Za-z0-9_-]*)=(.*)", item.strip())
        if not match:
            raise UsageError(f"argument --grid: expected [ALGO.]FIELD=V1,V2,... like "
                             f"learning_rate=1e-4,1e-3 or ppo.gamma=0.9,0.99, got {item!r}")
        algo, name = match[1], match[2].replace("-", "_")
        values = tuple(dict.fromkeys(v.strip() for v in match[3].split(",") if v.strip()))
        if algo is not None and algo not in algorithms.ALGORITHMS:
            raise UsageError(f"argument --grid: unknown algorithm {algo!r} in {item!r}; "
                             f"choose from {', '.join(algorithms.NAMES)}")
        if algo is not None and algo not in algos:
            raise UsageError(f"argument --grid: {algo} is not in --algos ({','.join(algos)}); "
                             f"drop {item!r} or add {algo} to --algos")
        if not values:
            raise UsageError(f"argument --grid: {item!r} is an empty grid; give values like {name}=V1,V2")
        axes.append(GridAxis(algo, name, values))
    return axes


def value_name(value) -> str:
    """A checked value as it appears in a cell's folder name: one spelling per value
    (1e-3 and 0.001 are the same cell), no characters a path cannot hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(value))


def cell_name(pairs: list[tuple[str, object]]) -> str:
    """``learning_rate=0.001__gamma=0.9``: the cell's folder, its overrides in --grid order."""
    return "__".join(f"{name}={value_name(value)}" for name, value in pairs)


@dataclass(frozen=True)
class Cell:
    """One grid cell of one algorithm, checked once: its gridded (field, text) pairs in --grid
    order, the runner's pairs (the algorithm's --set pairs, then the grid's) as typed and as
    parsed and checked, and the cell's folder name."""
    grid: tuple
    pairs: list
    values: dict
    name: str


def grid_cells(axes: list[GridAxis], algos: list[str], overrides: dict) -> dict[str, list[Cell]]:
    """{algo: [Cell, ...]}; every value checked with the runner's rules (together with the
    algorithm's --set values), and every algorithm that has none of the grid's fields left out."""
    cells = {}
    for algo in algos:
        config_cls = algorithms.get(algo).config_class()
        kinds = field_kinds(config_cls)
        mine = [ax for ax in axes if ax.algo == algo or (ax.algo is None and ax.field in kinds)]
        if not mine:
            continue
        names = [ax.field for ax in mine]
        for name in names:
            if names.count(name) > 1:
                raise UsageError(f"argument --grid: {algo}.{name} is gridded twice; give its values once")
            if name in dict(overrides.get(algo, [])):
                raise UsageError(f"argument --grid: {algo}.{name} is also given with --set; "
                                 "give it in one of the two")
        for ax in mine:  # each value alone first, so the error names the value
            for text in ax.values:
                check_overrides(config_cls, [(ax.field, text)], algo, "--grid")
        cells[algo] = []
        for combo in itertools.product(*(ax.values for ax in mine)):
            pairs = overrides.get(algo, []) + list(zip(names, combo))
            values = check_overrides(config_cls, pairs, algo, "--grid")
            cells[algo].append(Cell(tuple(zip(names, combo)), pairs, values,
                                    cell_name([(n, values[n]) for n in names])))
    for ax in axes:
        if ax.algo is None and not any(ax.field in dict(c[0].grid) for c in cells.values()):
            raise UsageError(f"argument --grid: no algorithm in --algos ({','.join(algos)}) has a "
                             f"field {ax.field}; check the name with <algo>_benchmark.py --help")
    return cells


def override_flags(algo: str, pairs: list[tuple[str, str]], values: dict) -> list[str]:
    """Config field -> the runner's flag (rlsuite.cli: underscores become dashes).

    Booleans are BooleanOptionalAction flags there: ``field=true`` becomes
    ``--field`` and ``field=false`` becomes ``--no-field``. Other values go as
    typed, so the runner's log shows what the user wrote.
    """
    kinds = field_kinds(algorithms.get(algo).config_class()) if pairs else {}
    flags = []
    for name, text in pairs:
        opt = "--" + name.replace("_", "-")
        if kinds[name] == "bool":
            flags.append(opt if values[name] else "--no-" + name.replace("_", "-"))
        else:
            flags.extend([opt, text.strip()])
    return flags


# -- the runs -----------------------------------------------------------------

@dataclass
class RunSpec:
    algo: str
    env_id: str
    seed: int
    run_dir: Path
    cmd: list[str]
    slots: int = 1
    missing_runner: str | None = None
    cell: str | None = None  # a grid cell's name, None outside a grid
    steps: int | None = None  # the run's training budget, as the runner will resolve it
    eval_every: int = EVAL_EVERY  # its interval between periodic evaluations
    timeout_s: float | None = None  # its wall-time limit (run_timeout); None: none

    @property
    def label(self) -> str:
        where = f" [{self.cell}]" if self.cell else ""
        return f"{self.algo}{where} {self.env_id} seed {self.seed}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "runner.log"


@dataclass
class Outcome:
    spec: RunSpec
    status: str  # completed | failed | interrupted | skipped (completed by another orchestrator)
    wall_s: float = 0.0
    summary: dict | None = None
    error: str | None = None


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def a3c_slots(env_id: str, values: dict, jobs: int) -> int:
    """An A3C run occupies one core per worker: its num_workers from --set/--grid, else the env's
    preset, else the config default (the machine's core count)."""
    workers = values.get("num_workers", _default_value("a3c", env_id, "num_workers"))
    return max(1, min(workers, jobs))


# Common protocol flags passed through to every runner, when given.
PASS_VALUE = ("total_steps", "eval_every", "eval_episodes", "video_episodes", "threads", "solve_threshold")
PASS_SWITCH = ("record_video", "stop_when_solved", "overwrite")


def run_budget(algo: str, env_id: str, values: dict, total_steps: int | None) -> int:
    """The training budget a runner will resolve: --total-steps, else a --set/--grid value,
    else the env's preset, else the config default (rlsuite/cli.py resolves it the same way)."""
    if total_steps is not None:
        return total_steps
    if "total_steps" in values:
        return values["total_steps"]
    return _default_value(algo, env_id, "total_steps")


@functools.lru_cache(maxsize=None)
def _default_value(algo: str, env_id: str, field: str):
    """The env preset's value of a config field, else the config default (presets.toml read once
    per algorithm, env and field)."""
    from rlsuite.presets import PRESETS_FILE, load_preset

    config_cls = algorithms.get(algo).config_class()
    preset = load_preset(PRESETS_FILE, algo, env_id, config_cls)
    if preset is not None and field in preset.values:
        return preset.values[field]
    return getattr(config_cls(), field)


def build_specs(args, algos, env_seeds: dict, overrides, values, runner_dir: Path, jobs: int,
                cells: dict | None = None) -> list[RunSpec]:
    """The matrix in run order, each env with its own seeds (``env_seeds``: env id -> seeds).
    With a grid (``cells``, from grid_cells), each algorithm
    runs each of its cells, and a cell's runs get --results-dir and --video-dir of the
    cell's own tree (GRID_DIR/<cell name>/ under each root)."""
    results_dir = Path(args.results_dir).absolute()
    video_dir = Path(args.video_dir).absolute()
    common = ["--no-progress"]
    for name in PASS_VALUE:
        value = getattr(args, name)
        if value is not None:
            common += ["--" + name.replace("_", "-"), str(value)]
    for name in PASS_SWITCH:
        if getattr(args, name):
            common.append("--" + name.replace("_", "-"))

    suite = get_suite(args.suite or "cartpole")
    specs = []
    # Seed-major order: a study stopped part-way holds every algorithm's (and cell's) first seeds.
    for env_id, seeds in env_seeds.items():
        for seed in seeds:
            for algo in algos:
                runner = runner_dir / f"{algo}_benchmark.py"
                if cells is None:
                    algo_cells = [(None, overrides.get(algo, []), values.get(algo, {}))]
                else:
                    algo_cells = [(c.name, c.pairs, c.values) for c in cells.get(algo, [])]
                for name, pairs, checked in algo_cells:
                    root = results_dir if name is None else results_dir / GRID_DIR / name
                    videos = video_dir if name is None else video_dir / GRID_DIR / name
                    extra = override_flags(algo, pairs, checked)
                    steps = run_budget(algo, env_id, checked, args.total_steps)
                    if args.max_total_steps is not None and steps > args.max_total_steps:
                        steps = args.max_total_steps
                        extra += ["--total-steps", str(steps)]
                    eval_every = args.eval_every
                    if eval_every is None:
                        eval_every = (suite.eval_every(env_id, steps) if args.evals_per_run is None
                                      else spread_evals(steps, args.evals_per_run))
                        if eval_every is not None:
                            extra += ["--eval-every", str(eval_every)]
                    cmd = [sys.executable, str(runner), "--env", env_id, "--seed", str(seed),
                           "--results-dir", str(root), "--video-dir", str(videos), *common, *extra]
                    slots = a3c_slots(env_id, checked, jobs) if algo == "a3c" else 1
                    specs.append(RunSpec(
                        algo, env_id, seed, root / env_id / algo / f"seed_{seed}", cmd, slots,
                        missing_runner=None if runner.is_file() else f"{runner.name} not found in {runner_dir}",
                        cell=name, steps=steps, eval_every=eval_every or EVAL_EVERY,
                    ))
    return specs


# -- process handling -----------------------------------------------------------

def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def ray_run(cmd: list[str], log_path: str, cwd: str, timeout: float | None, grace: float,
            stop_flag) -> dict:
    """Body of a Ray task: run one runner to the end, with the local backend's signal discipline.

    It polls ``stop_flag`` (an actor the driver sets on Ctrl-C or --strict)
    rather than relying on ray.cancel, whose KeyboardInterrupt does not reach
    a task blocked in waitpid; if the driver is gone the flag cannot be read,
    which also means stop.
    """
    import ray

    start = time.monotonic()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = start_runner(cmd, log, cwd)
        timed_out = stopped = False
        try:
            while proc.poll() is None:
                timed_out = bool(timeout) and time.monotonic() - start > timeout
                try:
                    stopped = ray.get(stop_flag.is_set.remote(), timeout=30)
                except Exception:
                    stopped = True
                if timed_out or stopped:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        pass
                    break
                time.sleep(0.5)
        finally:
            _kill_group(proc.pid)
            proc.wait()
    return {"returncode": proc.returncode, "timed_out": timed_out, "stopped": stopped,
            "wall_s": time.monotonic() - start}


class StopFlag:
    """A one-bit Ray actor: set by the driver, read by every running task."""

    def __init__(self):
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class LocalBackend:
    """Runs as child processes of this one, each in its own session and process group."""

    name = "local"

    def __init__(self, grace: float):
        self.grace = grace
        self.stop_wait = grace

    def start(self, spec: RunSpec) -> dict:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(spec.log_path, "w", encoding="utf-8")
        proc = start_runner(spec.cmd, log, ROOT)
        return {"proc": proc, "log": log, "start": time.monotonic(), "term_at": None, "timed_out": False,
                "timeout": spec.timeout_s}

    def poll(self, handle: dict) -> dict | None:
        proc = handle["proc"]
        now = time.monotonic()
        if proc.poll() is None:
            if handle["term_at"] is None and handle["timeout"] and now - handle["start"] > handle["timeout"]:
                handle["timed_out"] = True
                self.terminate(handle)
            elif handle["term_at"] is not None and now - handle["term_at"] > self.grace:
                _kill_group(proc.pid)
            return None
        _kill_group(proc.pid)  # worker processes the runner left behind, if any
        handle["log"].close()
        return {"returncode": proc.returncode, "timed_out": handle["timed_out"],
                "wall_s": now - handle["start"]}

    def terminate(self, handle: dict) -> None:
        """SIGTERM to the runner only: it stops its own workers and writes its summary."""
        if handle["term_at"] is None:
            handle["term_at"] = time.monotonic()
            try:
                handle["proc"].send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self, handle: dict) -> None:
        _kill_group(handle["proc"].pid)
        handle["proc"].wait()
        handle["log"].close()

    def close(self) -> None:
        pass


@contextlib.contextmanager
def captured_fd2():
    """Everything written to file descriptor 2 (C++ logging included) goes to a temporary file.

    Its text is the context value's ``text`` once the block has ended.
    """
    captured = argparse.Namespace(text="")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode("utf-8", "replace")


AUTH_MARKERS = ("InvalidAuthToken", "Unauthenticated", "AuthenticationError", "authentication token",
                "RAY_AUTH_TOKEN")


def ray_auth_problem(exc: BaseException) -> str | None:
    """What is wrong with this driver's Ray auth token, or None if ``exc`` is not about it.

    A token cluster refuses a driver that sends no token or another one; Ray's
    ConnectionError says only "Failed to connect", the reason (InvalidAuthToken)
    is in the exceptions it chains and in the C++ client's log lines (its notes).
    """
    texts, seen = [], exc
    while seen is not None:
        texts += [type(seen).__name__, str(seen), *getattr(seen, "__notes__", [])]
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(texts)
    if not any(marker in text for marker in AUTH_MARKERS):
        return None
    m = re.search(r"RAY_AUTH_TOKEN_PATH is set but[^\n]*?(?=\. Ensure|$)", text, re.MULTILINE)
    if m:  # Ray's own sentence names the file
        return m.group(0)
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return "the cluster wants an auth token and this driver sent none (RAY_AUTH_MODE is not 'token')"
    if "no authentication token was found" in text:
        return "RAY_AUTH_MODE is 'token' but this driver has no auth token"
    source = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN")
              else os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token")
    return f"the cluster refused the auth token from {source} (not the token its nodes were started with)"


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once when nothing listens at an explicit HOST:PORT: Ray itself retries a dead
    address for many minutes before it gives up. ``auto`` and addresses without a port are
    left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc.strerror or exc})") from None


class RayBackend:
    """The same runner command lines as Ray tasks on an existing cluster.

    Each task runs ``python <repo>/<algo>_benchmark.py ...`` with subprocess
    on whichever node Ray picks, so every node needs this checkout and its
    virtualenv at the same paths and the results (and videos) folder on a
    shared filesystem. A task asks for one CPU (an A3C run: its slots). A runner
    inherits the environment of ``ray start`` on its node, not the driver's.
    With token authentication (Ray 2.60's default once a token exists) an
    explicit --address needs RAY_AUTH_MODE=token and the nodes' token in this
    process's environment: Ray picks the token up by itself only for ``auto``.
    """

    name = "ray"

    def __init__(self, address: str, grace: float, jobs: int | None):
        import ray

        self.ray = ray
        kwargs = dict(log_to_driver=False, logging_level="ERROR", include_dashboard=False)
        if address == "local":
            ray.init(num_cpus=jobs or os.cpu_count(), **kwargs)
        else:
            check_reachable(address)
            # Ray's C++ client logs a warning per failed attempt (about 20, one a second) to
            # fd 2: held back, shown if the connection succeeds, a note of the error if not.
            failure = None
            with captured_fd2() as captured:
                try:
                    ray.init(address=address, **kwargs)
                except Exception as exc:
                    failure = exc
            if failure is not None:
                if captured.text:
                    failure.add_note(captured.text)
                raise failure
            sys.stderr.write(captured.text)
        self.grace = grace
        self.stop_wait = grace + 5  # tasks notice the flag within a poll, then give the runner `grace`
        self._task = ray.remote(ray_run)
        self._flag = ray.remote(num_cpus=0)(StopFlag).remote()

    def cluster_cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def start(self, spec: RunSpec) -> dict:
        ref = self._task.options(num_cpus=spec.slots).remote(
            spec.cmd, str(spec.log_path), str(ROOT), spec.timeout_s, self.grace, self._flag)
        return {"ref": ref, "start": time.monotonic()}

    def poll(self, handle: dict) -> dict | None:
        ready, _ = self.ray.wait([handle["ref"]], timeout=0)
        if not ready:
            return None
        try:
            return self.ray.get(handle["ref"])
        except Exception as exc:  # the worker or its node died
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return {"returncode": None, "timed_out": False, "wall_s": time.monotonic() - handle["start"],
                    "error": f"ray task failed: {type(exc).__name__}: {first}"}

    def terminate(self, handle: dict) -> None:
        """Ctrl-C and --strict stop the whole matrix: one flag for every task."""
        self._flag.set.remote()

    def kill(self, handle: dict) -> None:
        try:
            self.ray.cancel(handle["ref"], force=True)
        except Exception:
            pass

    def close(self) -> None:
        self.ray.shutdown()


def outcome_of(spec: RunSpec, result: dict) -> Outcome:
    summary = read_summary(spec.run_dir)
    wall = result.get("wall_s", 0.0)
    if result.get("timed_out"):
        limit = "" if spec.timeout_s is None else f", over its limit of {spec.timeout_s:.0f} s"
        return Outcome(spec, "failed", wall, summary, f"timed out after {wall:.0f} s{limit} (--timeout)")
    if summary is not None and summary.get("status") == "completed" and result.get("returncode") == 0:
        return Outcome(spec, "completed", wall, summary)
    error = result.get("error")
    if summary is not None and summary.get("error"):
        error = f"{summary.get('status')}: {summary['error']}"
    if not error:
        tail = log_tail(spec.log_path, 1)
        error = f"exit status {result.get('returncode')}" + (f": {tail}" if tail else "")
    return Outcome(spec, "failed", wall, summary, error)


# -- the terminal -----------------------------------------------------------------

def fmt_outcome(o: Outcome) -> str:
    if o.status != "completed":
        return f"FAILED  {o.spec.label}: {o.error} (log: {o.spec.log_path})"
    s = o.summary
    if s.get("solved"):
        solved = f"solved at {s['steps_to_solve']:,} steps / {s['time_to_solve_s']:.1f} s"
    elif s.get("solved") is False:
        solved = "not solved"
    else:
        solved = "no solve threshold"
    final = "n/a" if s.get("final_eval_mean") is None else \
        f"{s['final_eval_mean']:.1f} ± {s.get('final_eval_std') or 0:.1f}"
    return f"done    {o.spec.label}: {solved}, final eval {final}, wall {o.wall_s:.0f} s"


def periodic_evals(run_dir: Path) -> int | None:
    """How many periodic evaluations a finished run made: the rows of its evals.csv."""
    try:
        with open(Path(run_dir) / "evals.csv", encoding="utf-8") as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)
    except OSError:
        return None


class Estimator:
    """Wall time of the runs left, from the timed runs per (algorithm, env) (rlsuite.suites).

    A run takes its slots for its estimated time, so the matrix needs about the sum of
    slots x time over the slots there are. The ratio of measured to estimated time of
    this matrix's finished runs corrects the runs still to come (a busier or faster
    machine than the table's). That ratio scales the estimates the table gave when the
    matrix started: each finished run also goes into the table, and scaling an estimate
    that already holds this machine's runs would count the difference twice. A pair the
    table had not timed at the start takes the table's estimate as it is now, measured
    here.
    """

    def __init__(self, specs: list[RunSpec], throughput: Throughput, jobs: int):
        self.left = {id(s): s for s in specs}
        self.throughput, self.jobs = throughput, jobs
        self.at_start = {id(s): self._table_s(s) for s in specs}
        self.measured_s = self.estimated_s = 0.0
        self.walls: list[float] = []

    def _table_s(self, spec: RunSpec) -> float | None:
        return self.throughput.estimate_s(spec.algo, spec.env_id, spec.steps, spec.eval_every)

    def finished(self, outcome: Outcome) -> None:
        spec = outcome.spec
        self.left.pop(id(spec), None)
        if outcome.status != "completed" or outcome.wall_s <= 0:
            return
        estimate = self.at_start.get(id(spec))
        if estimate is not None:
            self.measured_s += outcome.wall_s
            self.estimated_s += estimate
        self.walls.append(outcome.wall_s)
        summary = outcome.summary or {}
        self.throughput.add(spec.algo, spec.env_id, summary.get("total_steps"), outcome.wall_s,
                            periodic_evals(spec.run_dir), summary.get("train_time_s"))

    def run_s(self, spec: RunSpec) -> float | None:
        """One run's estimated wall time, corrected by this matrix's runs so far; None if untimed."""
        estimate = self.at_start.get(id(spec))
        if estimate is None:
            return self._table_s(spec)
        return estimate * (self.measured_s / self.estimated_s if self.estimated_s > 0 else 1.0)

    def remaining_s(self) -> float | None:
        """Seconds until the runs left are done, or None while a run has no estimate at all."""
        total = 0.0
        for spec in self.left.values():
            estimate = self.run_s(spec)
            if estimate is None:
                if not self.walls:
                    return None
                estimate = sum(self.walls) / len(self.walls)
            total += estimate * spec.slots
        return total / self.jobs


# A run's default wall-time limit: a multiple of its estimate, so that a 5M-step Box2D run on a
# busy or slower machine is not cut short (a flat hour stopped PPO BipedalWalker-v3 at 90% of
# its budget beside two other runs), while a hung run is still stopped.
TIMEOUT_FACTOR = 4.0
MIN_TIMEOUT_S = 3600.0


def run_timeout(spec: RunSpec, throughput: Throughput, given: float | None) -> float:
    """The run's wall-time limit: ``--timeout`` if given, else TIMEOUT_FACTOR x its estimated wall
    time (the timing table, as --dry-run prints it), at least MIN_TIMEOUT_S; MIN_TIMEOUT_S untimed."""
    if given is not None:
        return given
    estimate = None if spec.steps is None else throughput.estimate_s(spec.algo, spec.env_id, spec.steps,
                                                                     spec.eval_every)
    return MIN_TIMEOUT_S if estimate is None else max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * estimate)


def estimate_text(specs: list[RunSpec], throughput: Throughput, jobs: int) -> str:
    """One line: the estimated wall time of ``specs`` on ``jobs`` slots, and what is not timed yet."""
    if not specs:
        return "estimated wall time: nothing to run"
    estimates = [(s, throughput.estimate_s(s.algo, s.env_id, s.steps, s.eval_every)) for s in specs]
    known = [(s, e) for s, e in estimates if e is not None]
    slot_s = sum(e * s.slots for s, e in known)
    text = f"estimated wall time on {jobs} slot(s): {format_duration(slot_s / jobs)}"
    if len(known) < len(specs):
        pairs = sorted({f"{s.algo}/{s.env_id}" for s, e in estimates if e is None})
        shown = ", ".join(pairs[:4]) + (f" and {len(pairs) - 4} more" if len(pairs) > 4 else "")
        text += (f" for {len(known)} of {len(specs)} runs; {len(pairs)} algorithm/env pair(s) not timed "
                 f"yet: {shown}")
    return text + " (timed runs: throughput.json)"


class Progress:
    """One bar for the matrix (tqdm, with ETA) and one line per finished run above it."""

    def __init__(self, total: int, done: int, show_bar: bool, estimator: Estimator | None = None):
        self.estimator = estimator
        self.total, self.done = total, done
        self.start = time.monotonic()
        self.finished_here = 0
        self.bar = None
        if show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="run", desc="comparison", file=sys.stderr,
                            dynamic_ncols=True, bar_format="{l_bar}{bar}| {n}/{total} runs "
                            "[{elapsed}{postfix}]")

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def advance(self, text: str, outcome: Outcome | None = None) -> None:
        self.done += 1
        self.finished_here += 1
        if self.estimator is not None and outcome is not None:
            self.estimator.finished(outcome)
        left = self.total - self.done
        remaining = self.estimator.remaining_s() if self.estimator is not None else None
        if remaining is None:
            remaining = (time.monotonic() - self.start) / self.finished_here * left
        if self.bar is not None:
            self.bar.set_postfix_str(f"ETA {format_duration(remaining)}" if left else "", refresh=False)
            self.bar.update(1)
            self.line(text)
        else:
            eta = f", ETA {format_duration(remaining)}" if left else ""
            self.line(f"[{self.done}/{self.total}{eta}] {text}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the scheduler -----------------------------------------------------------------

class StopRequest:
    """Signal handler for Ctrl-C and SIGTERM that only records the request.

    The scheduler checks it between steps, so a signal never lands between
    starting a child and recording it (no orphan), and children start with
    the default handlers and an unblocked signal mask.
    """

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame):
        self.signum = signum


def _shadow_time(waiting: RunSpec, free: int, running: dict, started: dict, run_s, now: float) -> float | None:
    """When enough slots for ``waiting`` will be free, by the running runs' estimated ends;
    None if a running run has no estimate."""
    ends = []
    for key, (spec, _) in running.items():
        estimate = run_s(spec)
        if estimate is None:
            return None
        ends.append((max(now, started[key] + estimate), spec.slots))
    for end, slots in sorted(ends):
        free += slots
        if free >= waiting.slots:
            return end
    return None


def schedule(specs: list[RunSpec], backend, jobs: int, strict: bool, progress: Progress,
             poll_s: float = 0.2, recheck: bool = True,
             clock=time.monotonic) -> tuple[list[Outcome], bool]:
    """Keep up to ``jobs`` slots busy, starting runs in matrix order. Returns (outcomes, interrupted).

    With ``recheck`` (not under --overwrite), a run found completed when its turn comes
    (another orchestrator sharing the results tree finished it after this one planned) is
    not started again: its outcome is "skipped".

    A run that does not fit yet (an A3C run wants a slot per worker) keeps its
    place: it starts as soon as the runs ahead of it have freed its slots. First
    fit would let one-slot runs take every freed slot and start the A3C runs
    only when nothing else is left, so a study stopped part-way would hold
    later seeds of the others and not the first seeds of A3C. Meanwhile a slot
    it leaves idle is lent to a later run only if that run's estimated wall
    time (the progress estimator's) ends before the waiting run could start
    anyway, by the running runs' estimates: backfilling, as batch schedulers do
    it (EASY backfilling), so the waiting run is not delayed as far as the
    estimates hold. Without estimates nothing is lent.
    """
    run_s = progress.estimator.run_s if progress.estimator is not None else (lambda spec: None)
    pending = list(specs)
    running: dict[int, tuple[RunSpec, dict]] = {}
    started: dict[int, float] = {}
    outcomes: list[Outcome] = []
    stop_reason = None
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            if stop.signum is not None:
                progress.line(f"interrupted: stopping {len(running)} running run(s) ...")
                _stop_all(running, backend)
                outcomes += [Outcome(spec, "interrupted", error="interrupted by Ctrl-C / SIGTERM")
                             for spec, _ in running.values()]
                return outcomes, True
            free = jobs - sum(spec.slots for spec, _ in running.values())
            shadow = None  # once a run does not fit: when it can start, by the estimates
            for spec in list(pending):
                if stop_reason or free <= 0:
                    break
                if spec.slots > free:
                    if shadow is None:
                        shadow = _shadow_time(spec, free, running, started, run_s, clock())
                        if shadow is None:
                            break
                    continue
                if shadow is not None:
                    estimate = run_s(spec)
                    if estimate is None or clock() + estimate > shadow:
                        continue
                completed = is_completed(spec.run_dir)
                if recheck and completed:
                    pending.remove(spec)
                    outcome = Outcome(spec, "skipped", summary=read_summary(spec.run_dir))
                    outcomes.append(outcome)
                    progress.advance(f"skipped {spec.label}: completed meanwhile (another orchestrator "
                                     "shares this results tree)", outcome)
                    continue
                # A failed or interrupted attempt's summary must not be read as this attempt's
                # outcome if the runner dies before replacing it.
                if not completed:
                    (spec.run_dir / "summary.json").unlink(missing_ok=True)
                running[id(spec)] = (spec, backend.start(spec))
                started[id(spec)] = clock()
                pending.remove(spec)
                free -= spec.slots
            for key, (spec, handle) in list(running.items()):
                result = backend.poll(handle)
                if result is None:
                    continue
                del running[key]
                started.pop(key, None)
                outcome = outcome_of(spec, result)
                outcomes.append(outcome)
                progress.advance(fmt_outcome(outcome), outcome)
                if strict and outcome.status != "completed" and stop_reason is None:
                    stop_reason = "strict"
                    progress.line(f"--strict: stopping after the failure of {spec.label}")
                    for _, other in running.values():
                        backend.terminate(other)
            if stop_reason and not running:
                break
            time.sleep(poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return outcomes, False


def _stop_all(running: dict, backend) -> None:
    """SIGTERM every runner, give them the grace period together, then SIGKILL what is left."""
    for _, handle in running.values():
        backend.terminate(handle)
    deadline = time.monotonic() + backend.stop_wait
    left = dict(running)
    while left and time.monotonic() < deadline:
        for key, (_, handle) in list(left.items()):
            if backend.poll(handle) is not None:
                del left[key]
        time.sleep(0.1)
    for _, handle in left.values():
        backend.kill(handle)


def write_failures(path: Path, failures: list[Outcome]) -> None:
    """A plain-text list a person reads: which run, why, and the end of its log."""
    blocks = []
    for o in failures:
        tail = log_tail(o.spec.log_path, 20)
        block = [o.spec.label, f"  error: {o.error}",
                 f"  run dir: {o.spec.run_dir}"]
        if tail:
            block.append(f"  last lines of {o.spec.log_path}:")
            block += ["    " + line for line in tail.splitlines()]
        blocks.append("\n".join(block))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


# -- the command line -------------------------------------------------------------

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def build_parser() -> OneLineParser:
    # Defaults are written in words in each help text: several are "decided later"
    # (None), which argparse's own "(default: None)" would not explain.
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0],
                      formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=34,
                                                                          width=100))
    m = p.add_argument_group("the matrix")
    m.add_argument("--algos", nargs="+", default=[",".join(algorithms.NAMES)], metavar="ALGO",
                   help="algorithms, comma- or space-separated (default: all five: "
                        + ", ".join(algorithms.NAMES) + ")")
    m.add_argument("--suite", default=None, metavar="NAME",
                   help="a named suite of envs and their seeds from suites.toml: cartpole, classic, box2d, "
                        "mujoco, overnight (default: cartpole, unless --envs is given)")
    m.add_argument("--seeds", nargs="+", default=None, metavar="SEEDS",
                   help="seeds: a range 1-5, a list 1,2,3, or both, for every env (default: the suite's; "
                        "1-5 with --envs and no --suite)")
    m.add_argument("--envs", nargs="+", default=None, metavar="ID",
                   help="Gymnasium ids with Box observations and Discrete or Box actions (default: the suite's envs)")
    m.add_argument("--set", dest="overrides", action="append", default=[], metavar="ALGO.FIELD=VALUE",
                   help="per-algorithm hyperparameter, passed to that runner as --field VALUE "
                        "(repeatable), e.g. ppo.learning_rate=3e-4; checked before anything runs "
                        "(default: each algorithm's own defaults)")
    m.add_argument("--grid", action="append", default=[], metavar="[ALGO.]FIELD=V1,V2,...",
                   help="sweep a hyperparameter (repeatable; the cross product of every --grid x seeds): "
                        "ppo.learning_rate=1e-4,1e-3 for one algorithm, gamma=0.9,0.99 for every selected "
                        "algorithm with that field (the others are not run); each cell writes its own tree "
                        f"DIR/{GRID_DIR}/<field>=<value>__.../ (default: no grid)")
    m.add_argument("--max-total-steps", type=positive_int, default=None, metavar="N",
                   help="cap every run's budget at N steps (a run whose budget is smaller keeps it): the "
                        "budget cut that fits a suite into a night, e.g. --suite overnight --seeds 1-3 "
                        "--max-total-steps 1000000 --evals-per-run 25 (default: no cap)")
    m.add_argument("--evals-per-run", type=positive_int, default=None, metavar="N",
                   help="spread N periodic evaluations over every run's budget (--eval-every = budget / N, "
                        "at least 5000), whatever its suite sets (suites.toml: evals_per_run; default: "
                        "the suite's, else one per 5000 steps)")
    x = p.add_argument_group("execution")
    x.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="runs at a time; an A3C run takes as many slots as it has workers "
                        "(default: the number of cores; with --backend ray: the cluster's CPUs)")
    x.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help="per-run wall-time limit; the run is stopped and listed as failed (default: "
                        f"{TIMEOUT_FACTOR:g}x the run's estimated wall time from the timing table, at least "
                        f"{format_duration(MIN_TIMEOUT_S)}; {format_duration(MIN_TIMEOUT_S)} for a run it has "
                        "not timed)")
    x.add_argument("--strict", action="store_true", help="stop the whole matrix at the first failed run")
    x.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine; ray: tasks on a Ray cluster "
                        "(pip install -r requirements-ray.txt), results dir on a shared filesystem "
                        "(default: local)")
    x.add_argument("--address", default="auto",
                   help="Ray cluster address for --backend ray; 'local' starts a throwaway one here; "
                        "a cluster with token auth also needs RAY_AUTH_MODE=token and its token in the "
                        "environment, see README (default: auto, the cluster `ray start` made on this machine)")
    x.add_argument("--dry-run", action="store_true", help="print the runs and their commands, run nothing")
    x.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="matrix progress bar (default: only when stderr is a terminal)")
    x.add_argument("--no-aggregate", action="store_true", help="do not run aggregate_results.py at the end")
    x.add_argument("--report-dir", default="report", metavar="DIR",
                   help="where the aggregator writes report.md, tables and plots (default: report)")
    # Undocumented: tests point these at fake runners and short grace periods.
    x.add_argument("--runner-dir", default=str(ROOT), help=argparse.SUPPRESS)
    x.add_argument("--grace", type=_positive_float, default=DEFAULT_GRACE_S, help=argparse.SUPPRESS)

    c = p.add_argument_group("passed to every runner (docs/protocol.md)")
    c.add_argument("--results-dir", default="results", metavar="DIR",
                   help="root of the results tree (default: results)")
    c.add_argument("--video-dir", default="videos", metavar="DIR",
                   help="root of the videos tree (default: videos)")
    c.add_argument("--total-steps", type=positive_int, default=None, metavar="N",
                   help="every run's training budget (default: the env's preset budget, else the algorithm's default)")
    c.add_argument("--eval-every", type=positive_int, default=None, metavar="N",
                   help="steps between periodic evaluations (default: the suite's evals_per_run spread "
                        "over each budget where it sets one, e.g. box2d and mujoco; else the runner's 5000)")
    c.add_argument("--eval-episodes", type=positive_int, default=None, metavar="N",
                   help="episodes per periodic evaluation (runner default 20)")
    c.add_argument("--record-video", action="store_true", help="record greedy episodes after training")
    c.add_argument("--video-episodes", type=positive_int, default=None, metavar="N",
                   help="episodes to record (runner default 3)")
    c.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch threads per run (runner default 1)")
    c.add_argument("--stop-when-solved", action="store_true",
                   help="end each run at its first solving evaluation")
    c.add_argument("--solve-threshold", type=finite_float, default=None, metavar="X",
                   help="return that counts as solved (default: the env's reward_threshold)")
    c.add_argument("--overwrite", action="store_true",
                   help="redo runs that already completed (default: skip them)")
    return p


def suite_plan(suite_name: str | None, env_items: list[str] | None, seeds: list[int] | None) -> dict:
    """env id -> seeds: the suite's envs (or --envs) with the suite's seeds for each (or --seeds).

    An env given with --envs that the suite does not hold runs the suite's most common
    seed list; without --suite, --envs alone runs seeds 1-5 as before suites existed.
    """
    suite = get_suite(suite_name or "cartpole")
    envs = parse_envs(env_items) if env_items is not None else suite.envs
    if seeds is not None:
        return {env_id: seeds for env_id in envs}
    if suite_name is None and env_items is not None:
        return {env_id: parse_seeds("1-5") for env_id in envs}
    lists = list(suite.env_seeds.values())
    usual = max(lists, key=lists.count)
    return {env_id: suite.env_seeds.get(env_id, usual) for env_id in envs}


def plan(args):
    """Validate everything before anything is written.

    Returns (algos, env_seeds, overrides, values, runner_dir, cells): env id -> its seeds
    (--suite, --envs and --seeds combined), the --set
    pairs as typed per algorithm, the same values parsed and checked, and the
    grid's cells per algorithm (None without --grid; algos then holds only the
    algorithms the grid applies to).
    """
    algos = parse_algos(args.algos)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    overrides = parse_overrides(args.overrides, algos)
    values = check_override_values(overrides)
    cells = None
    if args.grid:
        cells = grid_cells(parse_grid(args.grid, algos), algos, overrides)
        algos = [a for a in algos if a in cells]
    for name, (lo, hi) in COMMON_BOUNDS.items():
        value = getattr(args, name, None)
        if value is not None and not lo <= value <= hi:
            raise UsageError(f"argument --{name.replace('_', '-')}: must be an integer in [{lo}, {hi:,}], "
                             f"got {value}")
    if args.max_total_steps is not None:
        if args.max_total_steps > MAX_STEPS:
            raise UsageError(f"argument --max-total-steps: must be an integer in [1, {MAX_STEPS:,}], "
                             f"got {args.max_total_steps}")
    if args.eval_every is not None and args.evals_per_run is not None:
        raise UsageError("give --eval-every (steps between evaluations) or --evals-per-run (evaluations "
                         "per run), not both")
    if args.threads is not None:
        check_threads(args.threads)
    env_seeds = suite_plan(args.suite, args.envs, seeds)
    envs = list(env_seeds)
    runner_dir = Path(args.runner_dir).absolute()
    check_writable(Path(args.results_dir), "--results-dir")
    if args.record_video:
        # each run's own folder, as the runner will check it: one may exist and be unwritable
        roots = [Path(args.video_dir)]
        if cells is not None:
            roots = [Path(args.video_dir) / GRID_DIR / c.name for a in algos for c in cells[a]]
        for root in dict.fromkeys(roots):
            for env_id in envs:
                for algo in algos:
                    for seed in env_seeds[env_id]:
                        check_writable(root / env_id / algo / f"seed_{seed}", "--video-dir")
    if not args.no_aggregate:
        check_writable(Path(args.report_dir), "--report-dir")
    present = [a for a in algos if (runner_dir / f"{a}_benchmark.py").is_file()]
    if not present:
        missing = ", ".join(f"{a}_benchmark.py" for a in algos)
        raise UsageError(f"argument --algos: no runner found ({missing} not found in {runner_dir})")
    return algos, env_seeds, overrides, values, runner_dir, cells


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        algos, env_seeds, overrides, values, runner_dir, cells = plan(args)
        backend = None
        if args.backend == "ray" and not args.dry_run:
            try:
                import ray  # noqa: F401
            except ImportError:
                raise UsageError("argument --backend: ray is not installed; "
                                 "pip install -r requirements-ray.txt, or use --backend local") from None
            try:
                backend = RayBackend(args.address, args.grace, args.jobs)
            except Exception as exc:
                problem = ray_auth_problem(exc)
                if problem:
                    raise UsageError(
                        f"argument --address: cannot connect to Ray at {args.address!r}: {problem}; "
                        "run with RAY_AUTH_MODE=token and the token the nodes were started with in "
                        "RAY_AUTH_TOKEN, in a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token "
                        "(`ray get-auth-token` on the head node prints it)") from None
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"argument --address: cannot connect to Ray at {args.address!r} ({first}); "
                                 "start a cluster with `ray start --head`, or pass --address local "
                                 "for a throwaway one on this machine") from None
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted while planning; nothing was started", file=sys.stderr)
        return 130

    if backend is None:
        backend = LocalBackend(args.grace)
        jobs = args.jobs or os.cpu_count() or 1
    else:
        jobs = args.jobs or backend.cluster_cpus()
    try:
        specs = build_specs(args, algos, env_seeds, overrides, values, runner_dir, jobs, cells)
        throughput = Throughput(Path(args.results_dir))
        for spec in specs:
            spec.timeout_s = run_timeout(spec, throughput, args.timeout)
    except KeyboardInterrupt:
        backend.close()
        print(f"{PROG}: interrupted while planning; nothing was started", file=sys.stderr)
        return 130
    missing = [s for s in specs if s.missing_runner]
    todo = [s for s in specs if not s.missing_runner and (args.overwrite or not is_completed(s.run_dir))]
    already = len(specs) - len(missing) - len(todo)

    if cells is not None:
        left_out = [a for a in parse_algos(args.algos) if a not in cells]
        per_algo = ", ".join(f"{a} {len(cells[a])}" for a in algos)
        print(f"grid: cells per algorithm: {per_algo}"
              + (f"; not run (no --grid field): {', '.join(left_out)}" if left_out else ""))
        what = f"{sum(len(cells[a]) for a in algos)} (algorithm, cell) pair(s)"
    else:
        what = f"{len(algos)} algorithm(s)"
    counts = sorted({len(v) for v in env_seeds.values()})
    seed_text = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    print(f"{what} x {seed_text} seed(s) x {len(env_seeds)} env(s) = {len(specs)} runs; "
          f"{already} already completed, {len(todo)} to run, {jobs} slot(s), backend {args.backend}")
    for algo in dict.fromkeys(s.algo for s in missing):
        print(f"warning: {next(s.missing_runner for s in missing if s.algo == algo)}; "
              f"its runs are listed as failed", file=sys.stderr)
    if args.dry_run:
        for spec in todo:
            estimate = throughput.estimate_s(spec.algo, spec.env_id, spec.steps, spec.eval_every)
            guess = "no measurement" if estimate is None else f"~{format_duration(estimate)}"
            limit = f"limit {format_duration(spec.timeout_s)}"
            print(f"{spec.label} [{spec.slots} slot(s), {spec.steps:,} steps, {guess}, {limit}]: "
                  f"{' '.join(spec.cmd)}")
        print(estimate_text(todo, throughput, jobs))
        return 0

    started = time.monotonic()
    show_bar = args.progress if args.progress is not None else sys.stderr.isatty()
    print(estimate_text(todo, throughput, jobs))
    progress = Progress(len(specs), already, show_bar, Estimator(todo, throughput, jobs))
    outcomes = [Outcome(s, "failed", error=s.missing_runner) for s in missing]
    for o in outcomes:
        progress.advance(fmt_outcome(o))
    try:
        ran, interrupted = schedule(todo, backend, jobs, args.strict, progress, recheck=not args.overwrite)
    finally:
        progress.close()
        backend.close()
    outcomes += ran
    wall = time.monotonic() - started

    failures = [o for o in outcomes if o.status == "failed"]
    failures_path = Path(args.results_dir) / FAILURES_FILE
    if failures:
        write_failures(failures_path, failures)
    elif failures_path.exists():
        failures_path.unlink()
    completed = sum(o.status == "completed" for o in outcomes)
    already += sum(o.status == "skipped" for o in outcomes)
    print(f"\n{completed} run(s) completed now, {already} skipped as already completed, "
          f"{len(failures)} failed; wall time {wall / 60:.1f} min ({wall:.0f} s)")
    if failures:
        print(f"failed runs ({failures_path}):")
        for o in failures:
            print(f"  {o.spec.label}: {o.error}")
    if interrupted:
        left = len(specs) - already - completed - len(failures)
        print(f"interrupted: {left} run(s) not finished; run the same command again to continue",
              file=sys.stderr)
        return 130
    if not args.no_aggregate and cells is not None:
        print(f"grid: each cell is a results tree of its own; aggregate one with "
              f"python aggregate_results.py --results-dir {args.results_dir}/{GRID_DIR}/<cell>")
    elif not args.no_aggregate:
        import aggregate_results

        status = aggregate_results.main(["--results-dir", args.results_dir, "--out", args.report_dir,
                                         "--videos-dir", args.video_dir])
        if status != 0:
            print(f"{PROG}: the aggregator exited with status {status}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
