"""Tune one algorithm's hyperparameters on one environment with Optuna.

    python tune.py ppo --env CartPole-v1 --trials 50
    python tune.py ppo --env CartPole-v1 --trials 50          # again: resumes, trial count continues
    python tune.py ppo --env Acrobot-v1 --trials 100 --total-steps 200000 \\
        --storage postgresql://USER:PASSWORD@HOST:5432/tuning   # the same line on several machines

Optuna does the search (Akiba et al. 2019, the library rl-zoo uses): a TPE
sampler proposes values from the algorithm's ``SEARCH_SPACE``, declared next
to its config dataclass in the algorithm file, and a median pruner stops
trials that fall behind. Each trial is an ordinary runner process
(``<algo>_benchmark.py``) writing the protocol's files under
``results/tuning/<study>/trial_<n>/``; this process reads the trial's
``evals.csv`` as it grows and reports every periodic greedy evaluation to
the pruner. A pruned trial's runner is stopped with SIGTERM, as the
orchestrator stops one.

Two objectives (``--objective``):

- ``mean-eval`` (the default): the mean over a trial's periodic greedy
  evaluations (the area under its eval curve, per evaluation). It rewards
  solving soon and staying solved, the right aim where the budget is generous
  and speed is what separates settings (CartPole-v1). The value reported at
  step s is the same quantity over the evaluations up to s.
- ``final-eval``: the run's final 100-episode greedy evaluation
  (``final_eval_mean`` of summary.json), the figure the suite compares with
  published scores at a fixed budget (rl-zoo's tuner optimizes the last
  evaluation too). A fast learner that ends lower loses here: on Pendulum-v1
  the best ``mean-eval`` entries learned sooner than the presets and ended
  worse. The value reported at step s is the latest periodic evaluation.

With ``--seeds K`` a trial trains K consecutive seeds one after another and
the objective is the mean over them: one seed's luck then picks no entry;
what the pruner sees mid-seed is that mean with the running seed's value so
far.

The study lives in a database: by default the SQLite file
``results/tuning/<study>.db``, so Ctrl-C loses only the running trial, and
the same command resumes. ``--trials N`` is the study's total: a rerun runs
what is missing, numbering on from the last trial. A trial left running by
an interrupt (this machine, its tune.py gone) is marked failed on resume;
with several machines on one ``--storage postgresql://...`` study, a
heartbeat marks a dead machine's trials failed after a grace period.

At the end the best trial is printed as a preset entry (TOML) whose source
names the study.

Exit status: 0 the study has its trials, 1 no trial completed, 2 bad input
(including a storage that cannot be opened), 130 interrupted.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from rlsuite import algorithms
from rlsuite.cli import (
    COMMON_BOUNDS,
    OneLineParser,
    UsageError,
    check_overrides,
    check_writable,
    field_kinds,
    integer,
    positive_int,
)
from rlsuite.processes import start_runner
from rlsuite.records import read_summary

ROOT = Path(__file__).resolve().parent
PROG = "tune.py"
TUNING_DIR = "tuning"  # under --results-dir
GRACE_S = 10.0         # SIGTERM -> SIGKILL for a pruned or interrupted trial's runner
POLL_S = 0.25
# --objective: what a trial maximizes, as the printed lines name it
OBJECTIVES = {"mean-eval": "mean periodic eval", "final-eval": "final eval"}
HEARTBEAT_S, HEARTBEAT_GRACE_S = 30, 120  # several machines: a trial silent this long has died
SPACE_KINDS = ("log", "float", "int", "choice")


# -- the search space ------------------------------------------------------------------

def search_space(algo: str) -> dict:
    """The algorithm file's SEARCH_SPACE, checked against its config: field names exist,
    every bound and choice is a value the runner accepts."""
    module = algorithms.get(algo).module()
    space = getattr(module, "SEARCH_SPACE", None)
    if not isinstance(space, dict) or not space:
        raise UsageError(f"argument ALGO: {algo}.py declares no SEARCH_SPACE next to its config")
    config_cls = algorithms.get(algo).config_class()
    kinds = field_kinds(config_cls)
    for name, spec in space.items():
        if name not in kinds:
            raise UsageError(f"argument ALGO: {algo}.SEARCH_SPACE names {name!r}, not a field of "
                             f"{config_cls.__name__}")
        if not (isinstance(spec, tuple) and spec and spec[0] in SPACE_KINDS):
            raise UsageError(f"argument ALGO: {algo}.SEARCH_SPACE[{name!r}] must be (kind, ...) with kind "
                             f"one of {', '.join(SPACE_KINDS)}")
        values = spec[1] if spec[0] == "choice" else spec[1:]
        for value in values:
            check_overrides(config_cls, [(name, as_text(value))], algo, "ALGO")
    return space


def suggest(trial, space: dict) -> dict:
    """One value per field, as Optuna's sampler proposes it."""
    params = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "log":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif kind == "float":
            params[name] = trial.suggest_float(name, spec[1], spec[2])
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec[1], spec[2])
        else:
            params[name] = trial.suggest_categorical(name, list(spec[1]))
    return params


def as_text(value) -> str:
    """A value as the runner's flag takes it (booleans: true/false; tuples: 64,64)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- one trial: a runner process, its evals read as they are written --------------------

class TrialFailed(Exception):
    """The trial's runner failed; the study goes on."""


def read_new_evals(path: Path, seen: int) -> list[tuple[int, float]]:
    """(global_step, mean_return) of the complete rows of evals.csv after the first ``seen``.

    Rows are written whole and flushed (docs/protocol.md, section 3); a last line
    without its newline is still being written and is left for the next read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    lines = text.split("\n")[:-1]  # the part after the last newline is incomplete
    if not lines:
        return []
    header = lines[0].split(",")
    step_col, ret_col = header.index("global_step"), header.index("mean_return")
    rows = []
    for line in lines[1 + seen:]:
        cells = line.split(",")
        rows.append((int(float(cells[step_col])), float(cells[ret_col])))
    return rows


def stop_runner(proc: subprocess.Popen) -> None:
    """SIGTERM (the runner writes summary.json 'interrupted'), then SIGKILL of its group."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=GRACE_S)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


SEED_STRIDE = 1_000_000  # pruner step of seed k's i-th evaluation: k * SEED_STRIDE + i


def run_trial(trial, cfg: dict, space: dict, optuna) -> float:
    """Train the suggested values on ``cfg["seeds"]`` consecutive seeds, one runner after another;
    the objective is the mean over the seeds of each run's objective (``cfg["objective"]``)."""
    params = suggest(trial, space)
    algo = cfg["algo"]
    config_cls = algorithms.get(algo).config_class()
    pairs = [(name, as_text(value)) for name, value in params.items()]
    try:
        values = check_overrides(config_cls, pairs, algo)
    except UsageError as exc:  # a combination the config's validate() refuses
        raise optuna.TrialPruned(f"not a valid configuration: {exc}") from None
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial_root = cfg["study_dir"] / f"trial_{trial.number}"
    trial.set_user_attr("run_dir", str(trial_root / cfg["env_id"] / algo / f"seed_{cfg['seed']}"))
    from run_all_comparison import override_flags

    done: list[float] = []  # the objective of each finished seed
    for k in range(cfg["seeds"]):
        seed = cfg["seed"] + k
        cmd = [sys.executable, str(ROOT / algorithms.get(algo).runner), "--env", cfg["env_id"],
               "--seed", str(seed), "--results-dir", str(trial_root), "--no-progress", "--overwrite",
               *cfg["passed"], *override_flags(algo, pairs, values)]
        done.append(run_seed(trial, cmd, trial_root, trial_root / cfg["env_id"] / algo / f"seed_{seed}",
                             seed, k, done, optuna, cfg.get("objective", "mean-eval")))
    return sum(done) / len(done)


def run_seed(trial, cmd: list[str], trial_root: Path, run_dir: Path, seed: int, k: int,
             done: list[float], optuna, objective: str = "mean-eval") -> float:
    """One runner of a trial, its evaluations reported to the pruner as they are written: the
    value is the trial's objective so far (finished seeds, and this seed's value up to now: the mean
    of its evaluations for ``mean-eval``, the latest one for ``final-eval``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    evals: list[float] = []
    with open(trial_root / "runner.log", "a" if k else "w", encoding="utf-8") as log:
        proc = start_runner(cmd, log, ROOT)
        try:
            finished = False
            while not finished:
                finished = proc.poll() is not None  # read once more after the runner ends
                for step, mean_return in read_new_evals(run_dir / "evals.csv", len(evals)):
                    evals.append(mean_return)
                    this_seed = sum(evals) / len(evals) if objective == "mean-eval" else evals[-1]
                    so_far = (sum(done) + this_seed) / (len(done) + 1)
                    # Reported at the evaluation's index, not its global_step: the i-th evaluation
                    # of every trial comes at the first update boundary after i * eval_every, a
                    # step that differs with the rollout size, and the pruner compares equal steps.
                    trial.report(so_far, k * SEED_STRIDE + len(evals))
                    if trial.should_prune():  # the finally below stops the runner
                        raise optuna.TrialPruned(f"at evaluation {len(evals)} of seed {seed} (step {step:,}): "
                                                 f"objective so far {so_far:.1f}, below the median")
                if not finished:
                    time.sleep(POLL_S)
        finally:
            stop_runner(proc)
    error = None
    if proc.returncode != 0:
        error = f"{Path(cmd[1]).name} exited {proc.returncode}; see {trial_root / 'runner.log'}"
    elif not evals or not all(math.isfinite(v) for v in evals):
        error = "no periodic evaluation (give --total-steps above --eval-every)"
    final = None
    if not error and objective == "final-eval":
        final = (read_summary(run_dir) or {}).get("final_eval_mean")
        if not isinstance(final, (int, float)) or not math.isfinite(final):
            error = f"no final evaluation in {run_dir / 'summary.json'}"
    if error:
        trial.set_user_attr("error", error)
        raise TrialFailed(error)
    return sum(evals) / len(evals) if objective == "mean-eval" else float(final)


# -- the study ---------------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def open_storage(url: str, optuna):
    """The study database, or UsageError naming --storage (bad URL, no driver, unreachable)."""
    given = url
    if url.startswith("postgresql://"):
        # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3; requirements-tune.txt pins psycopg2
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_S, grace_period=HEARTBEAT_GRACE_S,
            engine_kwargs={"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else None)
    except ModuleNotFoundError as exc:
        raise UsageError(f"argument --storage: {url.split(':', 1)[0]} needs the {exc.name} module; "
                         "pip install -r requirements-tune.txt") from None
    except Exception as exc:  # sqlalchemy's ArgumentError, OperationalError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"argument --storage: cannot open {redact(given)}: {first[:200]}; give a reachable "
                         "database URL like sqlite:///results/tuning/study.db or "
                         "postgresql://USER:PASSWORD@HOST:5432/DB") from None


def redact(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def fail_abandoned_trials(study, storage, optuna) -> int:
    """Trials still RUNNING that this machine started and whose tune.py is gone: failed."""
    host, n = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and isinstance(pid, int) and not pid_alive(pid):
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            n += 1
    return n


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def preset_entry(study, cfg: dict, optuna) -> str:
    """The best complete trial as a presets-file entry, its source the study."""
    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == states.COMPLETE]
    best = max(done, key=lambda t: t.value)
    counts = ", ".join(f"{sum(t.state == s for t in trials)} {s.name.lower()}"
                       for s in (states.COMPLETE, states.PRUNED, states.FAIL)
                       if any(t.state == s for t in trials))
    over = f" over seeds {cfg['seed']}-{cfg['seed'] + cfg['seeds'] - 1}" if cfg.get("seeds", 1) > 1 else ""
    lines = [f"# best of {len(trials)} trial(s) ({counts}): trial {best.number}, "
             f"{OBJECTIVES[cfg.get('objective', 'mean-eval')]} {best.value:.1f}{over}",
             f'[{cfg["algo"]}."{cfg["env_id"]}"]',
             f'source = {toml_value("optuna study " + study.study_name + " (tune.py, " + cfg["storage_shown"] + ")")}']
    if cfg["total_steps"] is not None:
        lines.append(f"total_steps = {cfg['total_steps']}")
    lines += [f"{name} = {toml_value(value)}" for name, value in best.params.items()]
    # Every trial ran on top of the env's preset: the fields the study did not search keep the
    # preset's values, so the entry repeats them (replacing the entry must not drop, say, norm_obs).
    from rlsuite.presets import PRESETS_FILE, load_preset

    preset = load_preset(PRESETS_FILE, cfg["algo"], cfg["env_id"], algorithms.get(cfg["algo"]).config_class())
    kept = {name: value for name, value in (preset.values if preset else {}).items()
            if name not in best.params and not (name == "total_steps" and cfg["total_steps"] is not None)}
    if kept:
        lines.append(f"# not searched: as in the entry the trials ran on ({preset.source})")
        lines += [f"{name} = {toml_value(value)}" for name, value in kept.items()]
    return "\n".join(lines)


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0],
                      formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30,
                                                                          width=100))
    p.add_argument("algo", metavar="ALGO", help="one of " + ", ".join(algorithms.NAMES))
    p.add_argument("--env", default="CartPole-v1", metavar="ID", help="Gymnasium id (default: CartPole-v1)")
    p.add_argument("--trials", type=positive_int, required=True, metavar="N",
                   help="the study's total of complete and pruned trials; a rerun runs what is missing")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="the study's database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB "
                        "(several machines) (default: sqlite:///<results-dir>/tuning/<study>.db)")
    p.add_argument("--study-name", default=None, metavar="NAME",
                   help="(default: <algo>-<env>); the same name and storage resume the study")
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="trials write DIR/tuning/<study>/trial_<n>/ (default: results)")
    p.add_argument("--total-steps", type=positive_int, default=None, metavar="N",
                   help="each trial's budget (default: the env's preset budget, else the algorithm's "
                        "default)")
    p.add_argument("--eval-every", type=positive_int, default=None, metavar="N",
                   help="steps between the periodic evaluations the pruner sees (runner default 5000)")
    p.add_argument("--eval-episodes", type=positive_int, default=None, metavar="N",
                   help="episodes per periodic evaluation (runner default 20)")
    p.add_argument("--seed", type=integer, default=1, metavar="N",
                   help="the runs' first seed and the sampler's (default: 1)")
    p.add_argument("--seeds", type=positive_int, default=1, metavar="K",
                   help="seeds per trial: SEED, SEED+1, ... trained one after another; the objective is "
                        "their mean, so one lucky seed does not pick the entry (default: 1)")
    p.add_argument("--objective", choices=tuple(OBJECTIVES), default="mean-eval",
                   help="what a trial maximizes: mean-eval, the mean of its periodic greedy evaluations "
                        "(learn soon, stay solved); final-eval, its final 100-episode greedy evaluation "
                        "(the figure compared with published scores) (default: mean-eval)")
    p.add_argument("--startup-trials", type=integer, default=5, metavar="N",
                   help="trials before the pruner prunes and TPE models (default: 5)")
    p.add_argument("--warmup-evals", type=integer, default=3, metavar="N",
                   help="a trial can be pruned from its N-th periodic evaluation on (default: 3)")
    return p


def plan(args) -> dict:
    """Everything checked before anything is written."""
    from rlsuite.envs import EnvError, describe_env

    if args.algo not in algorithms.ALGORITHMS:
        raise UsageError(f"argument ALGO: unknown algorithm {args.algo!r}; choose from "
                         f"{', '.join(algorithms.NAMES)}")
    try:
        env_id = describe_env(args.env).env_id
    except EnvError as exc:
        raise UsageError("argument --env: " + str(exc).removeprefix("--env: ")) from None
    for name in ("eval_every", "eval_episodes"):
        lo, hi = COMMON_BOUNDS[name]
        value = getattr(args, name)
        if value is not None and not lo <= value <= hi:
            raise UsageError(f"argument --{name.replace('_', '-')}: must be in [{lo}, {hi:,}], got {value}")
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")
    for name in ("startup_trials", "warmup_evals"):
        if getattr(args, name) < 0:
            raise UsageError(f"argument --{name.replace('_', '-')}: must be >= 0, got {getattr(args, name)}")
    if args.total_steps is not None:
        check_overrides(algorithms.get(args.algo).config_class(), [("total_steps", str(args.total_steps))],
                        args.algo, "--total-steps")
    space = search_space(args.algo)
    study_name = args.study_name or f"{args.algo}-{env_id}"
    if not study_name.strip():
        raise UsageError("argument --study-name: give a non-empty name")
    results_dir = Path(args.results_dir)
    check_writable(results_dir / TUNING_DIR, "--results-dir")
    passed = []
    for name in ("total_steps", "eval_every", "eval_episodes"):
        if getattr(args, name) is not None:
            passed += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    try:
        import optuna
    except ImportError:
        raise UsageError("argument ALGO: optuna is not installed; "
                         "pip install -r requirements-tune.txt") from None
    return {"algo": args.algo, "env_id": env_id, "space": space, "study_name": study_name,
            "study_dir": (results_dir / TUNING_DIR / slug(study_name)).absolute(), "seed": args.seed,
            "seeds": args.seeds, "objective": args.objective,
            "passed": passed, "total_steps": args.total_steps, "optuna": optuna}


class _Interrupt:
    """SIGTERM and SIGHUP end tune.py the way Ctrl-C does (the running trial is failed)."""

    def __call__(self, signum, frame):
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = plan(args)
        optuna = cfg["optuna"]
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is printed here
        # the heartbeat (several machines) is marked experimental; it has been stable since optuna 2.9
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        url = args.storage
        if url is None:
            db = cfg["study_dir"].parent / f"{slug(cfg['study_name'])}.db"
            db.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{db}"
        storage = open_storage(url, optuna)
        cfg["storage_shown"] = redact(url if args.storage else os.path.relpath(url.removeprefix("sqlite:///")))
        try:
            earlier = len(optuna.load_study(study_name=cfg["study_name"], storage=storage).trials)
        except KeyError:
            earlier = 0
        study = optuna.create_study(
            storage=storage, study_name=cfg["study_name"], direction="maximize", load_if_exists=True,
            # seeded, and on resume seeded afresh: the same seed would propose trial 0's values again
            sampler=optuna.samplers.TPESampler(seed=args.seed + earlier, n_startup_trials=args.startup_trials),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=args.startup_trials,
                                               n_warmup_steps=args.warmup_evals, n_min_trials=1))
        tag = {"algo": cfg["algo"], "env_id": cfg["env_id"], "total_steps": args.total_steps,
               "eval_every": args.eval_every, "seed": args.seed, "seeds": args.seeds,
               "objective": args.objective}
        # a study from before --seeds trained one seed, from before --objective maximized mean-eval
        made = dict({"seeds": 1, "objective": "mean-eval"}, **study.user_attrs)
        if not study.user_attrs:
            for key, value in tag.items():
                study.set_user_attr(key, value)
        elif {k: made.get(k) for k in tag} != tag:
            theirs = ", ".join(f"{k}={made.get(k)}" for k in tag)
            raise UsageError(f"argument --study-name: study {cfg['study_name']!r} in {redact(url)} was "
                             f"made with {theirs}; give the same settings or another --study-name")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    states = optuna.trial.TrialState
    counted = (states.COMPLETE, states.PRUNED)
    failed = fail_abandoned_trials(study, storage, optuna)
    have = len(study.get_trials(deepcopy=False, states=counted))
    print(f"study {cfg['study_name']} ({cfg['storage_shown']}): {have} of {args.trials} trial(s) done"
          + (f", {failed} left running by an interrupt marked failed" if failed else ""))
    cfg["study_dir"].mkdir(parents=True, exist_ok=True)

    def objective(trial):
        return run_trial(trial, cfg, cfg["space"], optuna)

    def report(study, trial):
        if trial.state == states.COMPLETE:
            what = f"complete, {OBJECTIVES[cfg['objective']]} {trial.value:.1f}"
        elif trial.state == states.PRUNED:
            last = max(trial.intermediate_values) if trial.intermediate_values else 0
            # steps are k * SEED_STRIDE + i for the i-th evaluation of the k-th seed
            where = f"{last % SEED_STRIDE} periodic evaluation(s)" + (
                f" of seed {cfg['seed'] + last // SEED_STRIDE}" if cfg["seeds"] > 1 else "")
            what = f"pruned after {where}, value then {trial.intermediate_values.get(last, 0):.1f}"
        else:
            what = "failed: " + trial.user_attrs.get("error", "see its runner.log")
        params = ", ".join(f"{k}={as_text(v) if not isinstance(v, float) else f'{v:.3g}'}"
                           for k, v in trial.params.items())
        print(f"trial {trial.number}: {what} ({params})", flush=True)

    previous = {s: signal.signal(s, _Interrupt()) for s in (signal.SIGTERM, signal.SIGHUP)}
    interrupted = False
    try:
        if have < args.trials:
            study.optimize(objective, n_trials=args.trials - have, catch=(TrialFailed,),
                           callbacks=[optuna.study.MaxTrialsCallback(args.trials, states=counted), report])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    done = len(study.get_trials(deepcopy=False, states=counted))
    if interrupted:
        print(f"{PROG}: interrupted with {done} of {args.trials} trial(s) done; run the same command "
              "to continue", file=sys.stderr)
        return 130
    if not study.get_trials(deepcopy=False, states=(states.COMPLETE,)):
        print(f"{PROG}: no trial completed; see the trials' runner.log under {cfg['study_dir']}",
              file=sys.stderr)
        return 1
    print("\nbest trial as a preset entry:\n")
    print(preset_entry(study, cfg, optuna))
    return 0


if __name__ == "__main__":
    sys.exit(main())
