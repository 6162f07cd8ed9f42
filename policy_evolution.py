"""Policy evolution: how a run's action distribution sharpens and its weights move.

Reads one run folder of the results tree (docs/protocol.md) and draws:

- policy_sharpening.png  the probability of the greedy action (updates.csv
  ``greedy_action_prob``, the batch mean of max_a pi(a|s)) and the policy
  entropy over training;
- probe_probabilities.png  pi(a|s) at fixed probe states for the early, middle
  and late snapshots;
- weights.png  per-layer weight norms, and the norm of each layer's change
  between consecutive snapshots, over training.

The last two need actor snapshots: train with ``--snapshot-every N``. Numbers
behind the figures go to probe_probabilities.csv and weights.csv.

    python policy_gradient_benchmark.py --snapshot-every 5000
    python policy_evolution.py results/CartPole-v1/policy_gradient/seed_1

Probe states. On CartPole-v1, five hand-picked states whose right action is
plain physics (push the cart under the pole: right when the pole leans or
falls right) plus three states visited by a uniformly random policy; on any
other environment, eight states from random-policy episodes. The random
episodes are seeded, so every snapshot is probed on the same states.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rlsuite import algorithms
from rlsuite.cli import (
    OneLineParser,
    UsageError,
    check_value,
    check_writable,
    create_folder,
    field_kinds,
    integer,
)
from rlsuite.envs import EnvError, describe_env, make_env
from rlsuite.evaluation import config_from_dict, read_run_config
from rlsuite.runner import SNAPSHOT_DIR
# (x, x_dot, theta, theta_dot); theta > 0 is the pole leaning right, action 1 pushes right
CARTPOLE_PROBES = {
    "upright, still": [0.0, 0.0, 0.0, 0.0],
    "leaning left": [0.0, 0.0, -0.1, 0.0],
    "leaning right": [0.0, 0.0, 0.1, 0.0],
    "falling left": [0.0, 0.0, 0.0, -1.0],
    "falling right": [0.0, 0.0, 0.0, 1.0],
}
CARTPOLE_ACTIONS = ["push left", "push right"]
PROBE_SEED_BASE = 7_000_000  # episode seeds of the random-policy probe episodes
MAX_RANDOM_PROBES = 100  # one bar per probe state: more would not fit on a figure


# -- loading --------------------------------------------------------------------------------

def snapshot_files(run_dir: Path) -> list[tuple[int, Path]]:
    files = []
    for path in (run_dir / SNAPSHOT_DIR).glob("step_*.pt"):
        match = re.fullmatch(r"step_(\d+)\.pt", path.name)
        if match:
            files.append((int(match.group(1)), path))
    return sorted(files)


def load_snapshots(run_dir: Path, config: dict) -> list[tuple[int, torch.nn.Module]]:
    """(step, actor) for every snapshot, each actor rebuilt with the algorithm's ``build_actor``."""
    entry = algorithms.get(config["algo"])
    module = entry.module()
    try:
        cfg = config_from_dict(entry.config_class(), config["hyperparameters"])
    except (TypeError, ValueError) as exc:
        raise UsageError(f"argument RUN_DIR: hyperparameters in config.json do not fit "
                         f"{entry.config}: {exc}") from None
    out = []
    for step, path in snapshot_files(run_dir):
        actor = module.build_actor(config["obs_dim"], config["n_actions"], cfg)
        try:
            actor.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # a corrupt file or another network's weights
            raise UsageError(f"argument RUN_DIR: cannot load {path}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        actor.eval()
        out.append((step, actor))
    return out


# -- probe states and measurements (pure) ---------------------------------------------------

def probe_states(env_id: str, n_random: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Names and observations of the probe states (see the module docstring)."""
    names, states = [], []
    if env_id == "CartPole-v1":
        names += list(CARTPOLE_PROBES)
        states += list(CARTPOLE_PROBES.values())
    env = make_env(env_id)
    env.action_space.seed(seed)
    for i in range(n_random):
        obs, _ = env.reset(seed=PROBE_SEED_BASE + seed * 1_000 + i)
        # a few random steps in, so the state is one an agent actually meets, not a reset state
        for _ in range(5 + 3 * i):
            next_obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
            obs = next_obs
        names.append(f"random-policy state {i + 1}")
        states.append(obs)
    env.close()
    return names, np.asarray(states, dtype=np.float32)


def action_probabilities(actor, states: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(actor(torch.as_tensor(states)), dim=-1).double().numpy()


def layer_parameters(actor) -> dict[str, torch.Tensor]:
    """Each layer's weights and biases as one flat vector, named "<module> (in->out)"."""
    layers: dict[str, list[torch.Tensor]] = {}
    shapes: dict[str, str] = {}
    for name, p in actor.named_parameters():
        module = name.rsplit(".", 1)[0]
        layers.setdefault(module, []).append(p.detach().reshape(-1))
        if p.dim() == 2:
            shapes[module] = f" ({p.shape[1]}->{p.shape[0]})"
    return {f"{module}{shapes.get(module, '')}": torch.cat(ps) for module, ps in layers.items()}


def weight_evolution(snapshots, update_steps) -> pd.DataFrame:
    """Per snapshot and layer: ||theta_l||, ||theta_l(k) - theta_l(k-1)||, and that change
    divided by the number of updates between the two snapshots (``update_steps``: the
    global_step of every update, from updates.csv). Snapshots come at the first update
    boundary after each multiple of N, so one interval may hold one update more than the
    next; per update, the intervals compare. Empty at the first snapshot."""
    update_steps = np.asarray(update_steps)
    rows, previous, previous_step = [], None, None
    for step, actor in snapshots:
        params = layer_parameters(actor)
        n_updates = (None if previous is None
                     else int(((update_steps > previous_step) & (update_steps <= step)).sum()))
        for layer, theta in params.items():
            update = None if previous is None else float(torch.linalg.vector_norm(theta - previous[layer]))
            rows.append({"global_step": step, "layer": layer, "norm": float(torch.linalg.vector_norm(theta)),
                         "update_norm": update, "updates_between": n_updates,
                         "update_norm_per_update": update / n_updates if n_updates else None})
        previous, previous_step = params, step
    table = pd.DataFrame(rows, columns=["global_step", "layer", "norm", "update_norm", "updates_between",
                                        "update_norm_per_update"])
    return table.astype({"updates_between": "Int64"})


def pick_snapshots(snapshots, show_steps=None):
    """The snapshots nearest ``show_steps``; by default first, middle and last, the middle
    taken on a log scale of steps (sqrt(first * last)) because a policy changes fastest early."""
    if not snapshots:
        return []
    steps = np.array([s for s, _ in snapshots], dtype=np.float64)
    if show_steps is None:
        first, last = max(steps[0], 1.0), steps[-1]
        show_steps = [steps[0], np.sqrt(first * last), last]
    chosen = sorted({int(np.argmin(np.abs(steps - target))) for target in show_steps})
    return [snapshots[i] for i in chosen]


# -- figures --------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sharpening(updates: pd.DataFrame, n_actions: int, title: str, path: Path) -> str | None:
    """Greedy-action probability and entropy vs steps; returns a note if a column is missing."""
    plt = _plt()
    has_greedy = "greedy_action_prob" in updates and updates["greedy_action_prob"].notna().any()
    panels = [("entropy", "policy entropy (nats)")]
    if has_greedy:
        panels.insert(0, ("greedy_action_prob", "P(greedy action), batch mean"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), dpi=90, squeeze=False)
    window = len(updates) // 50  # smooth only when there are many updates to smooth
    for ax, (column, label) in zip(axes[0], panels):
        steps, values = updates["global_step"], updates[column]
        if window >= 3:
            ax.plot(steps, values, color="0.75", lw=0.8, label="per update")
            ax.plot(steps, values.rolling(window, min_periods=1).mean(), lw=1.8,
                    label=f"rolling mean ({window} updates)")
        else:
            ax.plot(steps, values, lw=1.5, label="per update")
        first, last = values.dropna().iloc[0], values.dropna().iloc[-1]
        ax.set_title(f"{label}: {first:.2f} at first update, {last:.2f} at last", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    if has_greedy:
        axes[0][0].axhline(1 / n_actions, ls=":", color="k", lw=1, label="uniform policy")
        axes[0][0].set_ylim(1 / n_actions - 0.05, 1.02)
    axes[0][-1].axhline(np.log(n_actions), ls=":", color="k", lw=1, label="uniform policy")
    axes[0][-1].set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    if not has_greedy:
        return "updates.csv has no greedy_action_prob for this algorithm: plotted the entropy only"
    return None


def plot_probes(chosen, names, probs_by_step: dict, action_names, title: str, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen) + 1.5, 0.45 * len(names) + 1.6),
                             dpi=90, sharey=True, squeeze=False)
    y = np.arange(len(names))
    for ax, (step, _) in zip(axes[0], chosen):
        probs = probs_by_step[step]
        left = np.zeros(len(names))
        for a, label in enumerate(action_names):
            ax.barh(y, probs[:, a], left=left, label=label)
            for yi, (l, p) in enumerate(zip(left, probs[:, a])):
                if p >= 0.12:
                    ax.text(l + p / 2, yi, f"{p:.2f}", ha="center", va="center", fontsize=7, color="white")
            left += probs[:, a]
        ax.axvline(0.5 if len(action_names) == 2 else 1 / len(action_names), color="k", lw=0.6, ls=":")
        ax.set_xlim(0, 1)
        ax.set_title(f"step {step:,}", fontsize=9)
        ax.set_xlabel("pi(a | s)")
    axes[0][0].set_yticks(y, names, fontsize=8)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.08), ncol=len(action_names))
    fig.suptitle(title, fontsize=10, x=0.02, ha="left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_weights(weights: pd.DataFrame, title: str, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), dpi=90)
    marker = "." if weights["global_step"].nunique() <= 80 else None
    for layer, group in weights.groupby("layer", sort=False):
        axes[0].plot(group["global_step"], group["norm"], marker=marker, label=f"layer {layer}")
        moved = group.dropna(subset=["update_norm_per_update"])
        axes[1].plot(moved["global_step"], moved["update_norm_per_update"], marker=marker)
    axes[0].set_title("weight norm ||theta_l|| (weights and bias of layer l)", fontsize=9)
    axes[1].set_title("||theta_l(k) - theta_l(k-1)|| between snapshots, per update in between", fontsize=9)
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- command line ---------------------------------------------------------------------------

def check_config(run_dir: Path, config: dict) -> None:
    """The fields this script uses, with the types and ranges the runner wrote them with."""
    where = f"argument RUN_DIR: {run_dir / 'config.json'}"
    if config["algo"] not in algorithms.ALGORITHMS:
        raise UsageError(f"{where}: unknown algo {config['algo']!r}; "
                         f"expected one of {', '.join(algorithms.NAMES)}")
    if not isinstance(config["env_id"], str):
        raise UsageError(f"{where}: env_id must be a Gymnasium id, got {config['env_id']!r}")
    try:
        info = describe_env(config["env_id"])
    except EnvError as exc:
        raise UsageError(f"{where}: env_id {config['env_id']!r}: {str(exc).split(': ', 1)[-1]}") from None
    for key, expected in (("obs_dim", info.obs_dim), ("n_actions", info.n_actions)):
        value = config[key]
        if value != expected or not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{where}: {key} is {value!r} but {info.env_id} has {expected} here")
    saved = config["hyperparameters"]
    if not isinstance(saved, dict):
        raise UsageError(f"{where}: hyperparameters must be an object of config fields, got {saved!r}")
    for name, kind in field_kinds(algorithms.get(config["algo"]).config_class()).items():
        value = saved.get(name)
        if kind in ("int", "int_tuple") and value is not None:
            items = value if kind == "int_tuple" and isinstance(value, list) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise UsageError(f"{where}: hyperparameters.{name} has the wrong type: {value!r}")
            try:
                check_value(name, tuple(items) if kind == "int_tuple" else value, kind)
            except UsageError as exc:
                raise UsageError(f"{where}: hyperparameters.{name}: {str(exc).split(': ', 1)[-1]}") from None


def read_run(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    config = read_run_config(run_dir, "RUN_DIR", ("config.json", "updates.csv"),
                             ("algo", "env_id", "obs_dim", "n_actions", "hyperparameters"))
    check_config(run_dir, config)
    try:
        updates = pd.read_csv(run_dir / "updates.csv")
    except (OSError, ValueError, pd.errors.ParserError):
        raise UsageError(f"argument RUN_DIR: {run_dir / 'updates.csv'} is not a readable CSV") from None
    if not {"global_step", "entropy"} <= set(updates.columns):
        raise UsageError(f"argument RUN_DIR: {run_dir / 'updates.csv'} lacks the protocol's "
                         "global_step and entropy columns")
    if updates.empty:
        raise UsageError(f"argument RUN_DIR: {run_dir / 'updates.csv'} has no rows yet")
    for column in ("global_step", "entropy"):
        values = pd.to_numeric(updates[column], errors="coerce")
        if values.isna().all():
            raise UsageError(f"argument RUN_DIR: {run_dir / 'updates.csv'} has no numeric {column} values")
        updates[column] = values
    return config, updates


def _steps(text: str) -> list[int]:
    try:
        steps = [integer(x) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 1000,20000,300000, got {text!r}") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return steps


def parse_args(argv):
    parser = OneLineParser(prog="policy_evolution.py", description=__doc__.splitlines()[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder: results/<env>/<algo>/seed_<n>/")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: RUN_DIR/policy_evolution/)")
    parser.add_argument("--random-probes", type=integer, default=None, metavar="N",
                        help="probe states from random-policy episodes (default: 3 on CartPole-v1, else 8)")
    parser.add_argument("--probe-seed", type=integer, default=0, metavar="N",
                        help="seed of the random-policy probe episodes")
    parser.add_argument("--show-steps", type=_steps, default=None, metavar="S,S,...",
                        help="steps whose nearest snapshots the probe plot shows (default: first, "
                             "sqrt(first*last), last)")
    args = parser.parse_args(argv)
    if args.random_probes is not None and not 0 <= args.random_probes <= MAX_RANDOM_PROBES:
        raise UsageError(f"argument --random-probes: must be in [0, {MAX_RANDOM_PROBES}], "
                         f"got {args.random_probes}")
    if not 0 <= args.probe_seed < 1_000:
        raise UsageError(f"argument --probe-seed: must be in [0, 1000), got {args.probe_seed}")
    return args


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("policy_evolution.py: interrupted", file=sys.stderr)
        return 130


def _main(argv) -> int:
    try:
        args = parse_args(argv)
        run_dir = Path(args.run_dir)
        config, updates = read_run(run_dir)
        out = Path(args.out) if args.out is not None else run_dir / "policy_evolution"
        check_writable(out, "--out")
        torch.set_num_threads(1)
        snapshots = load_snapshots(run_dir, config)
        create_folder(out, "--out")
    except UsageError as exc:
        print(f"policy_evolution.py: error: {exc}", file=sys.stderr)
        return 2

    env_id, algo = config["env_id"], config["algo"]
    title = f"{algo} on {env_id}, seed {config.get('seed')}"
    written = [out / "policy_sharpening.png"]
    note = plot_sharpening(updates, config["n_actions"], title, written[0])
    if note:
        print(f"note: {note}")

    if not snapshots:
        print(f"note: no snapshots in {run_dir / SNAPSHOT_DIR}: train with --snapshot-every N "
              "for the probe-state and weight plots")
    else:
        n_random = args.random_probes
        if n_random is None:
            n_random = 3 if env_id == "CartPole-v1" else 8
        names, states = probe_states(env_id, n_random, args.probe_seed)
        action_names = (CARTPOLE_ACTIONS if env_id == "CartPole-v1"
                        else [f"action {a}" for a in range(config["n_actions"])])
        probs = {step: action_probabilities(actor, states) for step, actor in snapshots}
        rows = [{"global_step": step, "probe": name, **{f"p_{a}": p[i, a] for a in range(p.shape[1])}}
                for step, p in probs.items() for i, name in enumerate(names)]
        pd.DataFrame(rows).to_csv(out / "probe_probabilities.csv", index=False)
        chosen = pick_snapshots(snapshots, args.show_steps)
        if names:
            written.append(out / "probe_probabilities.png")
            plot_probes(chosen, names, probs, action_names, f"{title}: pi(a|s) at probe states", written[-1])
        weights = weight_evolution(snapshots, updates["global_step"])
        weights.to_csv(out / "weights.csv", index=False)
        written.append(out / "weights.png")
        plot_weights(weights, f"{title}: actor weights over {len(snapshots)} snapshots", written[-1])
        for step, _ in chosen:
            cells = ", ".join(f"{name}: {probs[step][i].max():.2f} ({action_names[probs[step][i].argmax()]})"
                              for i, name in enumerate(names))
            print(f"step {step:>8,}  max_a pi(a|s) at probes -> {cells}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
