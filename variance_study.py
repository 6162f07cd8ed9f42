"""Gradient-variance study: how much noise each policy-gradient estimator carries.

REINFORCE (policy_gradient.py) can weight grad log pi(a_t|s_t) by several
Psi_t with the same expectation (Schulman et al. 2016, sec. 2; exactly so for
gamma = 1, see NOTES below); they differ in variance. This script measures it
on the suite's own training run:

1. Train REINFORCE with its default hyperparameters, running
   ``policy_gradient.train`` unchanged, and keep the actor and the value
   baseline at a few steps (initial / early / middle / late).
2. At each snapshot, sample K independent batches of B complete episodes
   with the snapshot's stochastic policy.
3. On each batch compute the policy-gradient estimate for every estimator,
   all on THE SAME episodes (paired comparison):

       total_return   Psi_t = R(tau)
       reward_to_go   Psi_t = G_t
       baseline       Psi_t = G_t - V(s_t)
       advantage      Psi_t = normalize(G_t - V(s_t)) over the batch
       gae            Psi_t = GAE(gamma, lambda) from the same V (the actor-critic methods' choice)

   g_hat = grad_theta mean_t[ log pi(a_t|s_t) Psi_t ], flattened: the exact
   gradient REINFORCE's update follows (``policy_loss_fn``), before clipping.
4. Over the K estimates report: the norm of their mean, the total variance
   tr(Cov), the cosine of their mean to the total-return mean, and the
   signal-to-noise ratio (``gradient_statistics`` defines it).

Outputs variance.csv, variance.md and variance.png in --out, and prints the table.

    python variance_study.py                      # CartPole-v1, about a minute on one core
    python variance_study.py --batches 50 --snapshot-steps 0,5000
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

import policy_gradient
from rlsuite.cli import (
    MAX_EPISODES_PER_UPDATE,
    MAX_STEPS,
    OneLineParser,
    UsageError,
    check_threads,
    check_writable,
    create_folder,
    finite_float,
    integer,
    parse_integer,
)
from rlsuite.envs import EnvError, describe_env, make_env, make_seeded_envs, run_episodes
from rlsuite.returns import gae
from rlsuite.runner import seed_everything

ESTIMATORS = (*policy_gradient.ESTIMATORS, "gae")
CSV_COLUMNS = [
    "env_id", "seed", "snapshot_step", "mean_episode_return", "estimator", "batches",
    "episodes_per_batch", "grad_dim", "mean_grad_norm", "noise_floor_norm", "total_variance",
    "cosine_to_total_return", "cosine_to_baseline", "snr",
]
# Episode seeds of the study's batches: apart from training (seed + i), periodic
# evaluation (10_000 + ...) and final evaluation (1_000_000 + ...) seeds.
STUDY_SEED_BASE = 5_000_000
MAX_BATCHES = 100_000  # every batch's gradient is kept in memory for the variance


# -- the estimators and their statistics (pure; unit-tested in closed form) ----------------

def gae_weights(episodes, gamma: float, gae_lambda: float, critic) -> np.ndarray:
    """GAE(gamma, lambda) advantages of complete episodes, with ``rlsuite.returns.gae``.

    Each episode is one rollout with every step valid; its last step is
    terminated or truncated as the episode ended, and values[T] = V(final
    observation), which ``gae`` bootstraps only on truncation.
    """
    out = []
    for ep in episodes:
        n = len(ep["rewards"])
        obs = torch.as_tensor(np.concatenate([ep["obs"], ep["final_obs"][None]]))
        with torch.no_grad():
            values = critic(obs).squeeze(-1).numpy().astype(np.float64)
        terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        terminated[-1], truncated[-1] = ep["terminated"], ep["truncated"]
        out.append(gae(ep["rewards"], values, terminated, truncated, np.ones(n, dtype=bool),
                       gamma, gae_lambda))
    return np.concatenate(out)


def estimator_weights(episodes, gamma: float, critic, gae_lambda: float) -> dict[str, np.ndarray]:
    """Psi_t of every estimator for one batch of episodes.

    The four REINFORCE weights come from ``policy_gradient.episode_weights``
    exactly as training computes them (the critic only for the two estimators
    that train with one, so only they bootstrap on truncation).
    """
    weights = {}
    for name in policy_gradient.ESTIMATORS:
        uses_critic = name in ("baseline", "advantage")
        weights[name], _ = policy_gradient.episode_weights(
            episodes, name, gamma, critic if uses_critic else None)
    weights["gae"] = gae_weights(episodes, gamma, gae_lambda, critic)
    return weights


def policy_gradient_estimates(actor, obs: torch.Tensor, actions: torch.Tensor,
                              weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """g_hat = grad_theta mean_t[log pi(a_t|s_t) Psi_t] (flattened, float64) for each Psi_t.

    The gradient of minus ``policy_gradient.policy_loss_fn`` (no entropy
    bonus): the direction a REINFORCE update ascends, before norm clipping.
    One forward pass serves all estimators.
    """
    params = list(actor.parameters())
    logp = actor.dist(obs).log_prob(actions)
    out = {}
    for name, psi in weights.items():
        loss = policy_gradient.policy_loss_fn(logp, torch.as_tensor(psi, dtype=torch.float32))
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        out[name] = -torch.cat([g.reshape(-1) for g in grads]).double().numpy()
    return out


def gradient_statistics(grads: np.ndarray, reference_mean: np.ndarray | None = None) -> dict:
    """Statistics of K gradient estimates, ``grads`` of shape (K, P).

    - ``mean_grad_norm``: ||g_bar||, the norm of the average estimate.
    - ``total_variance``: tr(Cov[g_hat]) = E||g_hat - E g_hat||^2, the sum of the
      P per-parameter sample variances (ddof=1).
    - ``noise_floor_norm``: sqrt(tr(Cov)/K), the norm g_bar would have from
      noise alone; a mean_grad_norm near it is mostly noise.
    - ``snr``: ||E g_hat||^2 / tr(Cov[g_hat]), the signal-to-noise ratio of ONE
      batch's estimate as defined by Roberts & Tedrake (2009, "Signal-to-noise
      ratio analysis of policy gradient algorithms", NeurIPS 21, sec. 3).
      Its numerator is estimated without bias as ||g_bar||^2 - tr(Cov)/K
      (E||g_bar||^2 = ||E g_hat||^2 + tr(Cov)/K), floored at 0. It is
      scale-free, so it compares the normalized-advantage estimator fairly.
    - ``cosine_to_reference``: cos(g_bar, reference_mean), None without a reference.
    """
    grads = np.asarray(grads, dtype=np.float64)
    k = len(grads)
    mean = grads.mean(axis=0)
    total_variance = float(grads.var(axis=0, ddof=1).sum())
    mean_sq = float(mean @ mean)
    signal = max(mean_sq - total_variance / k, 0.0)
    cosine = None
    if reference_mean is not None:
        denom = np.linalg.norm(mean) * np.linalg.norm(reference_mean)
        cosine = float(mean @ reference_mean / denom) if denom > 0 else None
    return {
        "mean_grad_norm": float(np.sqrt(mean_sq)),
        "noise_floor_norm": float(np.sqrt(total_variance / k)),
        "total_variance": total_variance,
        "snr": signal / total_variance if total_variance > 0 else None,
        "cosine_to_reference": cosine,
    }


# -- snapshots of one REINFORCE training run -------------------------------------------

class SnapshotRecorder:
    """Stands in for the runner's ``Run`` so ``policy_gradient.train`` runs unchanged.

    It keeps deep copies of the actor and the value baseline at the first
    update boundary at or after each requested step (step 0: as built, before
    any update) and stops training after the last one. Same seed, same
    episodes as ``policy_gradient_benchmark.py --seed N`` up to that point:
    envs are seeded as ``Run.make_envs`` seeds them and nothing here draws
    random numbers.
    """

    def __init__(self, env_id: str, obs_dim: int, n_actions: int, seed: int, snapshot_steps):
        self.env_id, self.obs_dim, self.n_actions, self.seed = env_id, obs_dim, n_actions, seed
        self.pending = sorted(snapshot_steps)
        self.snapshots: list[tuple[int, torch.nn.Module, torch.nn.Module]] = []
        self.actor = self.critic = None

    def make_envs(self, n: int) -> list:
        return make_seeded_envs(self.env_id, n, self.seed)

    def log_episode(self, global_step, ret, length, **extra) -> None:
        pass

    def log_update(self, global_step, **metrics) -> None:
        pass

    def update_boundary(self, global_step: int, actor) -> bool:
        while self.pending and global_step >= self.pending[0]:
            self.pending.pop(0)
            self.snapshots.append((global_step, copy.deepcopy(self.actor), copy.deepcopy(self.critic)))
        return not self.pending


def train_snapshots(env_id: str, obs_dim: int, n_actions: int, seed: int, snapshot_steps):
    cfg = policy_gradient.PolicyGradientConfig()  # the defaults, learning-rate schedule included
    seed_everything(seed)
    recorder = SnapshotRecorder(env_id, obs_dim, n_actions, seed, snapshot_steps)
    # Built in train's own order (actor, then critic) so the initial weights are the benchmark's.
    recorder.actor = policy_gradient.build_actor(obs_dim, n_actions, cfg)
    recorder.critic = policy_gradient.build_critic(obs_dim, cfg)
    recorder.update_boundary(0, recorder.actor)  # step 0: the networks as built
    policy_gradient.train(cfg, recorder, recorder.actor, recorder.critic)
    return cfg, recorder.snapshots


# -- measuring one snapshot --------------------------------------------------------------

def sample_batches(env_id: str, actor, batches: int, episodes_per_batch: int, seed: int, envs: list):
    """K * B complete episodes with the stochastic policy, side by side, split into K batches."""
    n = batches * episodes_per_batch
    while len(envs) < n:
        envs.append(make_env(env_id))

    def act(obs):
        with torch.no_grad():
            return actor.dist(torch.as_tensor(obs)).sample().numpy()

    seeds = [STUDY_SEED_BASE + seed * 100_000 + i for i in range(n)]
    episodes = run_episodes(envs[:n], act, seeds)
    return [episodes[k * episodes_per_batch:(k + 1) * episodes_per_batch] for k in range(batches)]


def measure_snapshot(actor, critic, batches_of_episodes, gamma: float, gae_lambda: float) -> dict:
    """Per estimator: the (K, P) array of per-batch gradient estimates."""
    grads = {name: [] for name in ESTIMATORS}
    for episodes in batches_of_episodes:
        weights = estimator_weights(episodes, gamma, critic, gae_lambda)
        obs = torch.as_tensor(np.concatenate([ep["obs"] for ep in episodes]))
        actions = torch.as_tensor(np.concatenate([ep["actions"] for ep in episodes]))
        for name, g in policy_gradient_estimates(actor, obs, actions, weights).items():
            grads[name].append(g)
    return {name: np.stack(g) for name, g in grads.items()}


# -- output ---------------------------------------------------------------------------------

def _fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def markdown_table(rows: list[dict]) -> str:
    head = ("| step | mean return | estimator | ‖mean g‖ | noise floor | tr(Cov) | cos to total_return "
            "| cos to baseline | SNR |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
    lines = [
        f"| {r['snapshot_step']:,} | {r['mean_episode_return']:.1f} | {r['estimator']} | "
        f"{r['mean_grad_norm']:.3g} | {r['noise_floor_norm']:.3g} | {r['total_variance']:.3g} | "
        f"{_fmt(r['cosine_to_total_return'], '.3f')} | {_fmt(r['cosine_to_baseline'], '.3f')} | "
        f"{_fmt(r['snr'], '.3g')} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


NOTES = """\
Each row: K = {batches} batches of B = {episodes} episodes sampled with the policy
saved at that training step; every estimator is evaluated on the same batches.
g_hat = grad mean_t[log pi(a_t|s_t) Psi_t] over a batch's steps, before clipping.

- ‖mean g‖: norm of the average of the K estimates; noise floor: sqrt(tr(Cov)/K),
  the norm pure noise would give that average.
- tr(Cov): total variance of one batch's estimate (sum of per-parameter variances).
- cos to total_return: cosine between this estimator's mean and the total-return
  estimator's mean; near 1 = the same expected direction, up to the noise left in
  both means. Where total_return's ‖mean g‖ is near its noise floor its mean is
  mostly noise and this cosine says little; cos to baseline (the mean of the
  lowest-variance raw estimator) is the steadier reference.
- SNR = ‖E g_hat‖² / tr(Cov) for one batch (Roberts & Tedrake 2009), with
  ‖E g_hat‖² estimated without bias as ‖mean g‖² − tr(Cov)/K (floored at 0).
- `advantage` divides Psi_t by the batch's standard deviation, so its gradients
  live on a different scale: compare its tr(Cov) with the others only through
  SNR and cosine. Normalizing per batch also makes it (slightly) biased in
  scale, not in sign.
- `gae` (lambda = {gae_lambda}) uses the same learned V as `baseline`; with lambda < 1
  and an imperfect V it trades bias for variance.
- gamma = {gamma}: R(tau) is discounted from the episode's start, so total_return
  estimates the gradient of the discounted objective, which weights step t by
  gamma^t; the reward-to-go family drops that gamma^t factor, as REINFORCE
  implementations do (Nota & Thomas 2020, "Is the policy gradient a gradient?").
  With gamma < 1 their expectations therefore differ, most for long episodes;
  with gamma = 1 they coincide and total_return, reward_to_go and baseline are
  unbiased estimates of one gradient (tests/test_variance_study.py checks this
  against the closed form).
"""


def plot(rows: list[dict], path: Path, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted({r["snapshot_step"] for r in rows})
    returns = {r["snapshot_step"]: r["mean_episode_return"] for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=90)
    width = 0.8 / len(ESTIMATORS)
    x = np.arange(len(steps))
    for ax, key, title in ((axes[0], "total_variance", "total variance tr(Cov) of one batch's gradient"),
                           (axes[1], "snr", "signal-to-noise ratio (higher is better)")):
        for i, name in enumerate(ESTIMATORS):
            values = [next(r[key] for r in rows if r["snapshot_step"] == s and r["estimator"] == name)
                      for s in steps]
            values = [np.nan if v is None or v <= 0 else v for v in values]
            # advantage is rescaled by the batch std: its variance is not on the others' scale
            hatch = "//" if name == "advantage" and key == "total_variance" else None
            ax.bar(x + (i - (len(ESTIMATORS) - 1) / 2) * width, values, width, label=name, hatch=hatch)
        ax.set_yscale("log")
        ax.set_xticks(x, [f"step {s:,}\nreturn {returns[s]:.0f}" for s in steps])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[0].set_xlabel("(hatched: advantage is normalized, another scale)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(ESTIMATORS), fontsize=9, frameon=False)
    fig.suptitle(f"REINFORCE gradient estimators on {env_id} (same batches for every estimator)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def write_csv(rows: list[dict], path: Path) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in CSV_COLUMNS})


# -- command line ---------------------------------------------------------------------------

def _steps(text: str) -> tuple[int, ...]:
    steps = tuple(parse_integer(x) for x in text.split(",") if x.strip())
    if None in steps:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,3000,10000, got {text!r}")
    return steps


def parse_args(argv):
    parser = OneLineParser(prog="variance_study.py", description=__doc__.splitlines()[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", metavar="ID",
                        help="Gymnasium id with a Box observation space and Discrete actions")
    parser.add_argument("--seed", type=integer, default=1, metavar="N",
                        help="seeds training (as policy_gradient_benchmark.py --seed N) "
                             "and the sampled batches")
    parser.add_argument("--snapshot-steps", type=_steps, default=(0, 3000, 10000, 40000), metavar="S,S,...",
                        help="training steps at which the policy is measured (the first update boundary at "
                             "or after each; 0 = untrained). Defaults on CartPole-v1, seed 1: untrained, "
                             "learning (eval ~140), nearly solved (eval ~330), solved since ~16k")
    parser.add_argument("--batches", type=integer, default=200, metavar="K",
                        help="independent batches per snapshot (at least 2)")
    parser.add_argument("--episodes-per-batch", type=integer, default=8, metavar="B",
                        help="episodes per batch (8: REINFORCE's default episodes_per_update)")
    parser.add_argument("--gae-lambda", type=finite_float, default=0.95, metavar="LAMBDA",
                        help="lambda of the GAE row, in [0, 1] (0.95: the PPO/A2C default)")
    parser.add_argument("--gamma", type=finite_float, default=None, metavar="GAMMA",
                        help="discount in Psi_t when measuring, in [0, 1] (default: REINFORCE's, 0.99; "
                             "training always uses REINFORCE's defaults)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: results/studies/variance/<env>/)")
    parser.add_argument("--threads", type=integer, default=1, metavar="N", help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if not args.snapshot_steps or any(s < 0 for s in args.snapshot_steps):
        raise UsageError(f"argument --snapshot-steps: must be non-negative integers, "
                         f"got {args.snapshot_steps}")
    if list(args.snapshot_steps) != sorted(set(args.snapshot_steps)):
        raise UsageError(f"argument --snapshot-steps: must be strictly increasing, got {args.snapshot_steps}")
    if not 2 <= args.batches <= MAX_BATCHES:
        raise UsageError(f"argument --batches: must be in [2, {MAX_BATCHES:,}] (a variance needs two "
                         f"batches), got {args.batches}")
    if not 1 <= args.episodes_per_batch <= MAX_EPISODES_PER_UPDATE:
        raise UsageError(f"argument --episodes-per-batch: must be in [1, {MAX_EPISODES_PER_UPDATE}], "
                         f"got {args.episodes_per_batch}")
    if max(args.snapshot_steps) > MAX_STEPS:
        raise UsageError(f"argument --snapshot-steps: must be at most {MAX_STEPS:,}, "
                         f"got {max(args.snapshot_steps)}")
    check_threads(args.threads)
    if not 0.0 <= args.gae_lambda <= 1.0:
        raise UsageError(f"argument --gae-lambda: must be in [0, 1], got {args.gae_lambda}")
    if args.gamma is not None and not 0.0 <= args.gamma <= 1.0:
        raise UsageError(f"argument --gamma: must be in [0, 1], got {args.gamma}")
    if args.seed < 0 or args.seed >= 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")
    return args


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("variance_study.py: interrupted", file=sys.stderr)
        return 130


def _main(argv) -> int:
    started = time.perf_counter()
    try:
        args = parse_args(argv)
        info = describe_env(args.env)
        out = Path(args.out) if args.out is not None else Path("results/studies/variance") / info.env_id
        check_writable(out, "--out")
        create_folder(out, "--out")
    except (UsageError, EnvError) as exc:
        print(f"variance_study.py: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)

    cfg, snapshots = train_snapshots(info.env_id, info.obs_dim, info.n_actions, args.seed,
                                     args.snapshot_steps)
    gamma = cfg.gamma if args.gamma is None else args.gamma
    if len(snapshots) < len(args.snapshot_steps):
        print(f"note: training ended at {cfg.total_steps:,} steps; "
              f"{len(args.snapshot_steps) - len(snapshots)} later snapshot(s) skipped", file=sys.stderr)
    rows, envs = [], []
    for index, (step, actor, critic) in enumerate(snapshots):
        torch.manual_seed(args.seed * 1_000 + index)  # the sampled actions, reproducibly
        batches = sample_batches(info.env_id, actor, args.batches, args.episodes_per_batch, args.seed, envs)
        grads = measure_snapshot(actor, critic, batches, gamma, args.gae_lambda)
        mean_return = float(np.mean([ep["rewards"].sum() for b in batches for ep in b]))
        reference = grads["total_return"].mean(axis=0)
        low_noise_reference = grads["baseline"].mean(axis=0)
        for name in ESTIMATORS:
            stats = gradient_statistics(grads[name], reference)
            versus_baseline = gradient_statistics(grads[name], low_noise_reference)["cosine_to_reference"]
            rows.append({
                "env_id": info.env_id, "seed": args.seed, "snapshot_step": step,
                "mean_episode_return": mean_return, "estimator": name, "batches": args.batches,
                "episodes_per_batch": args.episodes_per_batch, "grad_dim": grads[name].shape[1],
                "mean_grad_norm": stats["mean_grad_norm"], "noise_floor_norm": stats["noise_floor_norm"],
                "total_variance": stats["total_variance"],
                "cosine_to_total_return": stats["cosine_to_reference"],
                "cosine_to_baseline": versus_baseline, "snr": stats["snr"],
            })
    for env in envs:
        env.close()

    write_csv(rows, out / "variance.csv")
    table = markdown_table(rows)
    notes = NOTES.format(batches=args.batches, episodes=args.episodes_per_batch,
                         gae_lambda=args.gae_lambda, gamma=gamma)
    wall = time.perf_counter() - started
    (out / "variance.md").write_text(
        f"# Policy-gradient variance on {info.env_id} (REINFORCE defaults, seed {args.seed})\n\n"
        f"{table}\n{notes}\nWall time: {wall:.0f} s with {args.threads} thread(s).\n", encoding="utf-8")
    plot(rows, out / "variance.png", info.env_id)
    print(table)
    print(f"wall time {wall:.1f} s; wrote {out}/variance.csv, variance.md, variance.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
