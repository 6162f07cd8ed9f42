"""Per-seed sweep: run one algorithm's runner on several seeds, one at a time, and tabulate summary.json.

    python bench/sweep_seeds.py trpo --seeds 1-10 [extra runner flags, e.g. --max-kl 0.01]

Runs sequentially (one training process at a time, --threads 1 as the runner
defaults), then prints steps_to_solve, time_to_solve_s and final_eval_mean per
seed with their medians, read from each run's summary.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    return seeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", help="algorithm name, e.g. trpo or a3c")
    parser.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,3,5")
    parser.add_argument("--results-dir", default="results/sweep", help="results root for the sweep's runs")
    args, extra = parser.parse_known_args()  # unknown flags go to the runner
    extra = [a for a in extra if a != "--"]
    runner = ROOT / f"{args.algo}_benchmark.py"
    rows = []
    for seed in parse_seeds(args.seeds):
        cmd = [sys.executable, str(runner), "--seed", str(seed), "--results-dir", args.results_dir,
               "--overwrite", "--no-progress", *extra]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        env_id = next((extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--env"), "CartPole-v1")
        summary_path = Path(args.results_dir) / env_id / args.algo / f"seed_{seed}" / "summary.json"
        if not summary_path.is_absolute():
            summary_path = ROOT / summary_path
        if proc.returncode != 0 or not summary_path.is_file():
            print(f"seed {seed}: runner exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
            continue
        s = json.loads(summary_path.read_text())
        rows.append(s)
        print(f"seed {seed:>3}  solved={s['solved']!s:5}  steps_to_solve={s['steps_to_solve']!s:>7}  "
              f"time_to_solve_s={s['time_to_solve_s']!s:>8}  final_eval_mean={s['final_eval_mean']:.1f}  "
              f"train_time_s={s['train_time_s']:.1f}", flush=True)
    solved = [s for s in rows if s["solved"]]
    print(f"{args.algo}: solved {len(solved)}/{len(rows)}; "
          f"final eval >= 475 on {sum(s['final_eval_mean'] >= 475 for s in rows)}/{len(rows)}")
    if solved:
        print(f"median steps_to_solve {statistics.median(s['steps_to_solve'] for s in solved):.0f}, "
              f"median time_to_solve_s {statistics.median(s['time_to_solve_s'] for s in solved):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
