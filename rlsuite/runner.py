"""The one benchmark runner behind every ``*_benchmark.py``.

An algorithm supplies its config dataclass and ``train(cfg, run)`` (and, for
``--evaluate``, the ``build_actor`` the registry finds in its module); this
module does the rest of the
protocol: CLI, validation, seeding, the results tree, periodic and final
evaluation, solved detection, video, progress bar, summary, and clean
handling of Ctrl-C, SIGTERM and SIGHUP (a closed terminal).

The contract for ``train(cfg, run)``:

- build the actor with ``build_actor(run.obs_dim, run.n_actions, cfg, action_dim=run.action_dim)``
  (``n_actions`` for Discrete actions, ``action_dim`` for Box ones, the other None);
- build envs with ``run.make_vec_env(n)`` or ``run.make_envs(n)`` (seeded, normalized as
  the config's ``norm_obs``/``norm_reward`` say; the runner reads their observation
  statistics for every evaluation and saves them with the model);
- call ``run.log_episode(global_step, ret, length)`` per finished episode;
- call ``run.log_update(global_step, **metrics)`` once per parameter update;
- call ``run.update_boundary(global_step, actor)`` after each update and stop
  if it returns True (``--stop-when-solved``) or the budget is spent;
- return the trained actor (``rlsuite.distributions.Actor``).
"""
from __future__ import annotations

import dataclasses
import fcntl
import math
import os
import random
import shutil
import signal
import sys
import time
import traceback
from collections import deque
from pathlib import Path

import numpy as np
import torch

from rlsuite.cli import (
    UsageError,
    check_value,
    check_writable,
    create_folder,
    field_kinds,
    parse_args,
)
from rlsuite.envs import (
    EnvError,
    EnvInfo,
    Normalization,
    ObsNormalization,
    describe_env,
    make_seeded_envs,
    make_vec_env,
)
from rlsuite.evaluation import (
    action_bounds,
    evaluate_policy,
    final_eval_seeds,
    greedy_policy,
    load_actor,
    load_obs_normalization,
    periodic_eval_seeds,
    read_run_config,
    record_video,
)
from rlsuite.processes import stop_with_parent
from rlsuite.records import (
    EPISODE_COLUMNS,
    EVAL_COLUMNS,
    UPDATE_COLUMNS,
    CsvLog,
    git_commit,
    is_completed,
    library_versions,
    write_json_atomic,
)

RUN_FILES = ("config.json", "episodes.csv", "updates.csv", "evals.csv", "summary.json", "model.pt",
             ObsNormalization.FILE)
SNAPSHOT_DIR = "snapshots"
LOCK_FILE = ".lock"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def saved_state(actor: torch.nn.Module) -> dict:
    """The actor's state dict with every tensor in a storage of its own: a parameter may be a
    view of a larger buffer (A3C keeps actor and critic in one shared tensor), and torch.save
    writes a view's whole storage."""
    return {k: v.detach().clone() for k, v in actor.state_dict().items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_dir_for(results_dir, env_id: str, algo: str, seed: int) -> Path:
    return Path(results_dir) / env_id / algo / f"seed_{seed}"


def _next_multiple(step: int, every: int) -> int:
    """The first multiple of ``every`` after ``step``: when the next evaluation or snapshot is due."""
    return (step // every + 1) * every


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled exactly like Ctrl-C."""


class _StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP all stop the run once, the same way.

    The first signal raises KeyboardInterrupt where the run is; later ones are
    ignored, so a second Ctrl-C or a supervisor's repeated SIGTERM cannot cut
    the shutdown short (the summary still says interrupted, exit 130).
    """

    def __init__(self):
        self.stopping = False
        self.received = False
        self._previous = {}

    def __call__(self, signum, frame):
        if self.stopping:
            return
        self.stopping = self.received = True
        raise _Terminated() if signum != signal.SIGINT else KeyboardInterrupt()

    def __enter__(self):
        self._previous = {s: signal.signal(s, self) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc):
        # Once a signal came, signals stay ignored to the end of the process: one arriving
        # while the summary is printed or the interpreter shuts down (torch takes a
        # while) must not turn exit 130 into death by signal (143). SIG_IGN, not a
        # Python handler, because finalization resets Python handlers to the default.
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_IGN if self.received else handler)
        return False

    def shutting_down(self) -> None:
        """From here on every stop signal is ignored."""
        self.stopping = True


def lock_run_dir(run_dir: Path):
    """Hold an exclusive lock on ``run_dir`` for this process's lifetime, or raise UsageError.

    flock on a file inside the folder: the kernel drops it when the process
    dies, however it dies, so a crashed run never leaves the folder locked.
    """
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"argument --results-dir: cannot create {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UsageError(f"argument --results-dir: another process is writing to {run_dir} "
                         "(it holds the run folder's lock); wait for it to end, or give another "
                         "--seed or --results-dir") from None
    return fd


class Run:
    """What a training function sees of the benchmark: envs, logs, evaluation, clock."""

    def __init__(self, algo, cfg, args, info: EnvInfo, run_dir: Path,
                 update_columns=(), episode_columns=()):
        self.algo = algo
        self.cfg = cfg
        self.args = args
        self.env_id = info.env_id
        self.seed = args.seed
        self.obs_dim = info.obs_dim
        self.n_actions = info.n_actions
        self.action_dim = info.action_dim
        self.action_bounds = action_bounds(dataclasses.asdict(info))
        self.norm = Normalization.of(cfg)
        self._obs_source = None  # () -> ObsNormalization | None: the training statistics now
        self.total_steps = cfg.total_steps
        self.run_dir = run_dir
        self.threshold = args.solve_threshold if args.solve_threshold is not None else info.reward_threshold

        self.episodes = CsvLog(run_dir / "episodes.csv", EPISODE_COLUMNS + list(episode_columns))
        self.updates = CsvLog(run_dir / "updates.csv", UPDATE_COLUMNS + list(update_columns))
        self.evals = CsvLog(run_dir / "evals.csv", EVAL_COLUMNS)

        self.global_step = 0
        self.n_episodes = 0
        self.n_updates = 0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.next_eval = args.eval_every
        self.next_snapshot = args.snapshot_every if args.snapshot_every > 0 else None
        self.solved_step = None
        self.solved_time = None
        self.last_eval = None
        self.actor = None

        self._start = None
        self._stop = None
        self._paused = 0.0
        self._pbar = None
        self._last_bar_step = 0

    # -- clock ------------------------------------------------------------
    def start_clock(self) -> None:
        self._start = time.perf_counter()

    def stop_clock(self) -> None:
        """Training is over: the final evaluation, saving and video after it are not training time."""
        if self._start is not None and self._stop is None:
            self._stop = time.perf_counter()

    @property
    def train_time_s(self) -> float:
        """Wall time since training started, minus evaluation time, up to ``stop_clock``."""
        if self._start is None:
            return 0.0
        end = time.perf_counter() if self._stop is None else self._stop
        return end - self._start - self._paused

    # -- environments -----------------------------------------------------
    def make_vec_env(self, num_envs: int):
        """Seeded vector env (next-step autoreset), normalized as the config says; pair with
        ``AutoresetTracker``. Its observation statistics are the ones every evaluation uses."""
        envs = make_vec_env(self.env_id, num_envs, self.seed, self.norm)
        self.set_obs_source(lambda: ObsNormalization.of(envs, self.norm))
        return envs

    def make_envs(self, n: int) -> list:
        """``n`` single envs, env i seeded with seed + i (SyncVectorEnv's convention),
        normalized as the config says, with one shared set of running statistics."""
        envs = make_seeded_envs(self.env_id, n, self.seed, self.norm)
        self.set_obs_source(lambda: ObsNormalization.of(envs[0], self.norm))
        return envs

    def set_obs_source(self, source) -> None:
        """Where the observation statistics come from: a function returning a frozen
        ``ObsNormalization`` of the training statistics now, or None (A3C: worker 0's)."""
        self._obs_source = source

    def obs_normalization(self) -> ObsNormalization | None:
        """The training observation statistics, frozen now; None without ``norm_obs``."""
        if not self.norm.obs:
            return None
        if self._obs_source is None:
            raise RuntimeError("norm_obs is on but train() built no env through run.make_vec_env/make_envs")
        return self._obs_source()

    def policy(self, actor, obs_normalization: ObsNormalization | None):
        """The greedy policy every evaluation runs: raw observations in, normalized with the
        given frozen statistics, clipped mean (Box) or argmax (Discrete) out."""
        return greedy_policy(actor, obs_normalization, self.action_bounds)

    # -- logging ----------------------------------------------------------
    def log_episode(self, global_step: int, ret: float, length: int, **extra) -> None:
        self.n_episodes += 1
        self.global_step = max(self.global_step, int(global_step))
        self.recent_returns.append(float(ret))
        self.episodes.write(global_step=int(global_step), train_time_s=round(self.train_time_s, 4),
                            episode=self.n_episodes, **{"return": float(ret)}, length=int(length), **extra)

    def log_update(self, global_step: int, **metrics) -> None:
        self.n_updates += 1
        metrics = {k: (v.detach().item() if isinstance(v, torch.Tensor) else
                       float(v) if isinstance(v, np.floating) else v) for k, v in metrics.items()}
        self.updates.write(update=self.n_updates, global_step=int(global_step),
                           train_time_s=round(self.train_time_s, 4), **metrics)

    # -- the update boundary: progress, periodic evaluation, early stop ---
    def eval_due(self, global_step: int) -> bool:
        """Whether an update boundary at ``global_step`` runs a periodic evaluation (protocol:
        the first boundary after each multiple of --eval-every). A3C asks, to pause its workers."""
        return global_step >= self.next_eval

    def update_boundary(self, global_step: int, actor: torch.nn.Module) -> bool:
        """Call after each update. Returns True when training should stop early."""
        self.global_step = int(global_step)
        self.actor = actor
        if self.eval_due(self.global_step):
            self._periodic_eval(actor)
            self.next_eval = _next_multiple(self.global_step, self.args.eval_every)
        if self.next_snapshot is not None and self.global_step >= self.next_snapshot:
            self._save_snapshot(actor)
            self.next_snapshot = _next_multiple(self.global_step, self.args.snapshot_every)
        self._refresh_bar()
        return bool(self.args.stop_when_solved and self.solved_step is not None)

    def _periodic_eval(self, actor) -> None:
        train_time = self.train_time_s  # the training that made this policy, not its evaluation
        t0 = time.perf_counter()
        returns = evaluate_policy(self.env_id, self.policy(actor, self.obs_normalization()),
                                  periodic_eval_seeds(self.seed, self.args.eval_episodes))
        mean, std = float(returns.mean()), float(returns.std())
        self.evals.write(global_step=self.global_step, train_time_s=round(train_time, 4),
                         mean_return=mean, std_return=std, episodes=len(returns))
        self.last_eval = mean
        if self.solved_step is None and self.threshold is not None and mean >= self.threshold:
            self.solved_step = self.global_step
            self.solved_time = train_time
        self._paused += time.perf_counter() - t0

    def _save_snapshot(self, actor) -> None:
        """The actor's weights now, for analyses of how a policy changes (policy_evolution.py).

        Written to a temporary name and renamed, so a run killed mid-write
        leaves no half-written snapshot; the clock is paused, as for evaluation.
        """
        t0 = time.perf_counter()
        folder = self.run_dir / SNAPSHOT_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"step_{self.global_step}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(saved_state(actor), tmp)
        os.replace(tmp, path)
        self._paused += time.perf_counter() - t0

    def _refresh_bar(self) -> None:
        if self._pbar is None:
            return
        step = min(self.global_step, self.total_steps)
        self._pbar.update(step - self._last_bar_step)
        self._last_bar_step = step
        post = {}
        if self.recent_returns:
            post["return"] = f"{np.mean(list(self.recent_returns)[-20:]):.1f}"
        if self.last_eval is not None:
            post["eval"] = f"{self.last_eval:.1f}"
        if self.solved_step is not None:
            post["solved@"] = self.solved_step
        self._pbar.set_postfix(post, refresh=False)

    def close(self) -> None:
        for log in (self.episodes, self.updates, self.evals):
            log.close()
        if self._pbar is not None:
            self._pbar.close()


def _write_config(run: Run, algo: str, cfg, args, info: EnvInfo) -> None:
    write_json_atomic(run.run_dir / "config.json", {
        "algo": algo,
        "env_id": info.env_id,
        "seed": args.seed,
        "total_steps": cfg.total_steps,
        "hyperparameters": dataclasses.asdict(cfg),
        # the preset entry that set the defaults (null: none, the dataclass defaults ran);
        # "hyperparameters" above holds every value finally used, flags included
        "preset": None if args.preset is None else args.preset.record(),
        "protocol": {
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "solve_threshold": run.threshold,
            "stop_when_solved": args.stop_when_solved,
            "threads": args.threads,
            "snapshot_every": args.snapshot_every,
        },
        "obs_dim": info.obs_dim,
        "n_actions": info.n_actions,
        "action_dim": info.action_dim,
        "action_low": None if info.action_low is None else list(info.action_low),
        "action_high": None if info.action_high is None else list(info.action_high),
        "versions": library_versions(),
        "git_commit": git_commit(),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def _save_obs_normalization(run: Run) -> ObsNormalization | None:
    """Freeze the training observation statistics into obs_rms.npz beside model.pt; the final
    evaluation, --evaluate and load_policy() all read these same numbers."""
    obs_normalization = run.obs_normalization()
    if obs_normalization is not None:
        obs_normalization.save(run.run_dir / ObsNormalization.FILE)
    return obs_normalization


def _summary(run: Run, status: str, final=None, error=None) -> dict:
    solved = None if run.threshold is None else run.solved_step is not None
    last100 = float(np.mean(run.recent_returns)) if run.recent_returns else None
    return {
        "algo": run.algo,
        "env_id": run.env_id,
        "seed": run.seed,
        "status": status,
        "total_steps": run.global_step,
        "train_time_s": round(run.train_time_s, 4),
        "solved": solved,
        "steps_to_solve": run.solved_step,
        "time_to_solve_s": None if run.solved_time is None else round(run.solved_time, 4),
        "final_eval_mean": None if final is None else float(final.mean()),
        "final_eval_std": None if final is None else float(final.std()),
        "final_eval_episodes": None if final is None else int(len(final)),
        "last100_train_return": last100,
        "error": error,
    }


def _check_saved_config(run_dir: Path, config: dict, config_cls) -> EnvInfo:
    """A run's config.json against this machine and this algorithm, before anything is loaded.

    Every value that reaches an env, a network or a seed is checked here with the
    rules the runner's own flags follow, so a hand-edited or foreign config is
    one line, not a traceback (or a 10**9-unit layer) half-way through loading.
    """
    where = f"argument --evaluate: {run_dir / 'config.json'}"
    env_id, seed = config["env_id"], config["seed"]
    if not isinstance(env_id, str):
        raise UsageError(f"{where}: env_id must be a Gymnasium id, got {env_id!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise UsageError(f"{where}: seed must be an integer in [0, 2**31), got {seed!r}")
    try:
        info = describe_env(env_id)
    except EnvError as exc:
        raise UsageError(f"{where}: env_id {env_id!r}: {str(exc).split(': ', 1)[-1]}") from None
    for key, expected in (("obs_dim", info.obs_dim), ("n_actions", info.n_actions),
                          ("action_dim", info.action_dim)):
        value = config.get(key)
        if value != expected or isinstance(value, bool):
            raise UsageError(f"{where}: {key} is {value!r} but {env_id} has {expected} here; "
                             "the policy does not fit this environment")
    saved = config.get("hyperparameters")
    if not isinstance(saved, dict):
        raise UsageError(f"{where}: hyperparameters must be an object of {config_cls.__name__} fields")
    for name, kind in field_kinds(config_cls).items():
        if name not in saved:
            continue
        value = saved[name]
        ok = {
            "bool": lambda v: isinstance(v, bool),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
            "optional_float": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       and math.isfinite(v)),
            "str": lambda v: isinstance(v, str),
            "int_tuple": lambda v: isinstance(v, list) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in v),
        }[kind](value)
        if not ok:
            raise UsageError(f"{where}: hyperparameters.{name} has the wrong type: {value!r}")
        try:
            check_value(name, tuple(value) if kind == "int_tuple" else value, kind)
        except UsageError as exc:
            raise UsageError(f"{where}: hyperparameters.{name}: {str(exc).split(': ', 1)[-1]}") from None
    return info


def _evaluate_only(algo, config_cls, args) -> int:
    run_dir = Path(args.evaluate)
    config = read_run_config(run_dir, "--evaluate", ("config.json", "model.pt"), ("algo", "env_id", "seed"))
    saved_algo = config["algo"]
    if saved_algo != algo:
        raise UsageError(f"argument --evaluate: {run_dir} holds a {saved_algo!r} run; "
                         f"use {saved_algo}_benchmark.py" if isinstance(saved_algo, str) else
                         f"argument --evaluate: {run_dir / 'config.json'} names no algorithm")
    info = _check_saved_config(run_dir, config, config_cls)
    env_id, seed = info.env_id, config["seed"]
    video_out = run_dir_for(args.video_dir, env_id, algo, seed)
    if args.record_video:
        check_writable(video_out, "--video-dir")
    try:
        actor, _ = load_actor(run_dir)
    except Exception as exc:  # corrupt model.pt, another network's weights
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"argument --evaluate: cannot load {run_dir / 'model.pt'} as this run's "
                         f"network: {type(exc).__name__}: {first}") from None
    try:
        obs_normalization = load_obs_normalization(run_dir, config)
    except Exception as exc:  # norm_obs run without (or with a corrupt) obs_rms.npz
        raise UsageError(f"argument --evaluate: the run normalized observations but "
                         f"{run_dir / ObsNormalization.FILE} cannot be read: {type(exc).__name__}") from None
    torch.set_num_threads(args.threads)
    act = greedy_policy(actor, obs_normalization, action_bounds(config))
    returns = evaluate_policy(env_id, act, final_eval_seeds(seed))
    print(f"{algo} on {env_id}, seed {seed} ({run_dir}): final evaluation, "
          f"{len(returns)} greedy episodes: {returns.mean():.1f} ± {returns.std():.1f}")
    if args.record_video:
        paths = record_video(env_id, act, final_eval_seeds(seed, args.video_episodes), video_out)
        print(f"videos: {', '.join(str(p) for p in paths)}")
    return 0


def _preload_lazy_imports() -> None:
    """Load what torch imports lazily on first use, so that train_time_s is training.

    The first ``torch.optim`` optimizer imports ``torch._dynamo``: about 3 s of
    CPU on the 2-core benchmark machine, once per process, paid inside the
    first update otherwise. Done here, after argument validation, so bad input
    and --help stay fast.
    """
    import torch._dynamo  # noqa: F401


def _check_inputs(algo, config_cls, argv, prog, description):
    """Everything a run needs, checked before anything is written. Returns (args, cfg, info, run_dir)."""
    args, cfg = parse_args(argv, prog, algo, config_cls, description)
    if args.evaluate is not None:
        return args, cfg, None, None
    info = describe_env(args.env)
    if getattr(cfg, "use_sde", False) and info.action_dim is None:
        raise UsageError(f"argument --use-sde: gSDE perturbs continuous actions; {info.env_id} has "
                         "Discrete actions")
    run_dir = run_dir_for(args.results_dir, info.env_id, algo, args.seed)
    check_writable(run_dir, "--results-dir")
    if args.record_video:
        # the per-run folder, not just the root: it may exist already, unwritable
        check_writable(run_dir_for(args.video_dir, info.env_id, algo, args.seed), "--video-dir")
    if is_completed(run_dir) and not args.overwrite:
        raise UsageError(f"{run_dir} already holds a completed run; pass --overwrite to replace it")
    return args, cfg, info, run_dir


def main(algo: str, config_cls, train, *, update_columns=(), episode_columns=(),
         description: str = "", argv=None) -> int:
    """Parse, validate, train, evaluate, write the protocol's files. Returns the exit status."""
    prog = f"{algo}_benchmark.py"
    try:
        with _StopSignals():
            stop_with_parent()  # started by the orchestrator: do not outlive it
            args, cfg, info, run_dir = _check_inputs(algo, config_cls, argv, prog, description)
            if args.evaluate is not None:
                return _evaluate_only(algo, config_cls, args)
            create_folder(run_dir, "--results-dir")
            lock_run_dir(run_dir)  # held until this process exits
            # checked again under the lock: another runner may have completed it meanwhile
            if is_completed(run_dir) and not args.overwrite:
                raise UsageError(f"{run_dir} already holds a completed run; pass --overwrite to replace it")
    except (UsageError, EnvError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130

    # Everything below writes. An interrupted or failed run in run_dir is replaced.
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / SNAPSHOT_DIR, ignore_errors=True)  # an old run's snapshots would mix in

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    run = Run(algo, cfg, args, info, run_dir, update_columns, episode_columns)
    _write_config(run, algo, cfg, args, info)

    status, error, final, exit_code = "completed", None, None, 0
    videos = []
    with _StopSignals() as stop:
        try:
            if args.progress:
                from tqdm import tqdm

                run._pbar = tqdm(total=cfg.total_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                                 desc=f"{algo} {info.env_id} seed {args.seed}", file=sys.stderr)
            _preload_lazy_imports()
            run.start_clock()
            actor = train(cfg, run)
            run.stop_clock()
            run.actor = actor
            run._refresh_bar()
            if run._pbar is not None:
                run._pbar.close()
                run._pbar = None
            torch.save(saved_state(actor), run_dir / "model.pt")
            obs_normalization = _save_obs_normalization(run)
            act = run.policy(actor, obs_normalization)
            final = evaluate_policy(info.env_id, act, final_eval_seeds(args.seed))
            if args.record_video:
                out = run_dir_for(args.video_dir, info.env_id, algo, args.seed)
                videos = record_video(info.env_id, act, final_eval_seeds(args.seed, args.video_episodes), out)
        except KeyboardInterrupt:
            status, error, exit_code = "interrupted", "interrupted by signal", 130
        except Exception as exc:  # the run failed: record why, keep the rows
            status, exit_code = "failed", 1
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            run.stop_clock()  # an interrupted or failed run: training ended here
            stop.shutting_down()
            if run._pbar is not None:
                run._pbar.close()
                run._pbar = None
            if status != "completed" and run.actor is not None:
                try:
                    torch.save(saved_state(run.actor), run_dir / "model.pt")
                    _save_obs_normalization(run)
                except Exception:
                    pass
            summary = _summary(run, status, final, error)
            run.close()
            write_json_atomic(run_dir / "summary.json", summary)

    _print_summary(summary, run_dir, videos if status == "completed" else [])
    return exit_code


def _print_summary(s: dict, run_dir: Path, videos) -> None:
    head = f"{s['algo']} on {s['env_id']}, seed {s['seed']}: {s['status']}"
    print(f"{head} after {s['total_steps']:,} steps, {s['train_time_s']:.1f} s train time")
    if s["solved"]:
        print(f"  solved at step {s['steps_to_solve']:,} ({s['time_to_solve_s']:.1f} s)")
    elif s["solved"] is False:
        print("  not solved")
    if s["final_eval_mean"] is not None:
        print(f"  final eval ({s['final_eval_episodes']} greedy episodes): "
              f"{s['final_eval_mean']:.1f} ± {s['final_eval_std']:.1f}")
    if s["error"] and s["status"] == "failed":
        print(f"  error: {s['error']}")
    print(f"  files: {run_dir}/")
    for v in videos:
        print(f"  video: {v}")
