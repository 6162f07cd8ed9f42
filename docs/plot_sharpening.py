"""Plot how a REINFORCE policy sharpens during training, from one run's CSV files.

    python docs/plot_sharpening.py --run-dir results/CartPole-v1/policy_gradient/seed_1

Reads the run's updates.csv (greedy_action_prob, entropy, batch_mean_return)
and evals.csv (mean_return) and writes docs/img/reinforce_sharpening.png. Nothing is
trained here: the figure shows exactly what the run logged.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "img" / "reinforce_sharpening.png"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="plot_sharpening.py", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, metavar="DIR",
                        help="a run folder results/<env>/policy_gradient/seed_<n>/")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="PNG", help="where to write the figure")
    parser.add_argument("--max-step", type=int, default=None, metavar="N",
                        help="plot only global_step <= N (default: the whole run)")
    args = parser.parse_args(argv)

    run = Path(args.run_dir)
    for name in ("updates.csv", "evals.csv"):
        if not (run / name).is_file():
            print(f"plot_sharpening.py: error: argument --run-dir: {run / name} not found", file=sys.stderr)
            return 2

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    updates = pd.read_csv(run / "updates.csv")
    evals = pd.read_csv(run / "evals.csv")
    if args.max_step is not None:
        updates = updates[updates.global_step <= args.max_step]
        evals = evals[evals.global_step <= args.max_step]
    if "greedy_action_prob" not in updates:
        print(f"plot_sharpening.py: error: argument --run-dir: {run / 'updates.csv'} has no "
              "greedy_action_prob column (not a policy_gradient run?)", file=sys.stderr)
        return 2

    fig, axes = plt.subplots(3, 1, figsize=(7, 6.5), sharex=True)
    ax = axes[0]
    ax.plot(updates.global_step, updates.greedy_action_prob, lw=1)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylabel("mean P(greedy action)")
    ax.set_ylim(0.45, 1.02)
    ax = axes[1]
    ax.plot(updates.global_step, updates.entropy, lw=1, color="tab:orange")
    ax.axhline(math.log(2), color="grey", ls=":", lw=1)
    ax.set_ylabel("entropy (nats)")
    ax.set_ylim(bottom=0)
    ax = axes[2]
    ax.plot(updates.global_step, updates.batch_mean_return, lw=1, color="tab:grey",
            label="training batch (sampled actions)")
    ax.plot(evals.global_step, evals.mean_return, marker=".", lw=1, color="tab:green",
            label="periodic evaluation (greedy actions)")
    ax.set_ylabel("episode return")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("environment steps")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run.parent.parent.name}, {run.parent.name}, {run.name}: the policy sharpens", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
