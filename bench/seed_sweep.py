"""Run one runner over several seeds and print the protocol's per-seed figures and medians.

    python bench/seed_sweep.py ppo --seeds 1-10
    python bench/seed_sweep.py ppo --seeds 1-10 --results-dir results/zoo -- --num-envs 8 --num-steps 32

ALGO is a runner name from docs/protocol.md (``<algo>_benchmark.py``);
everything after ``--`` goes to the runner unchanged. Seeds run one after the
other (one training process at a time, --threads 1 as the runner defaults).
A seed whose results directory already holds a completed run is read, not
re-run, unless --overwrite is given. Reads only summary.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rlsuite.cli import OneLineParser, UsageError, parse_seeds  # noqa: E402  (needs ROOT on sys.path)



def seeds_arg(text: str) -> list[int]:
    try:
        return sorted(parse_seeds(text))
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("argument --seeds: ")) from None


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec=""):
    return "-" if value is None else format(value, spec)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("algo", help="runner name: <algo>_benchmark.py must exist")
    p.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-10"), help="e.g. 1-10 or 1,3,5")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--results-dir", default="results", help="root of the results tree for these runs")
    p.add_argument("--overwrite", action="store_true", help="re-run seeds that already completed")
    args = p.parse_args(argv)
    script = ROOT / f"{args.algo}_benchmark.py"
    if not script.is_file():
        p.exit(2, f"{p.prog}: error: argument algo: {script.name} not found\n")

    rows = []
    for seed in args.seeds:
        run_dir = Path(args.results_dir) / args.env / args.algo / f"seed_{seed}"
        summary_path = run_dir / "summary.json"
        done = summary_path.is_file() and json.loads(summary_path.read_text()).get("status") == "completed"
        if args.overwrite or not done:
            cmd = [sys.executable, str(script), "--env", args.env, "--seed", str(seed),
                   "--results-dir", args.results_dir, "--overwrite", "--no-progress", *extra]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"seed {seed}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}",
                      file=sys.stderr)
                if not summary_path.is_file():
                    continue
        s = json.loads(summary_path.read_text())
        rows.append(s)
        print(f"seed {seed:>3}  status {s['status']:<9}  steps_to_solve {fmt(s['steps_to_solve']):>7}  "
              f"time_to_solve_s {fmt(s['time_to_solve_s'], '.1f'):>6}  "
              f"final_eval_mean {fmt(s['final_eval_mean'], '.1f'):>6}  "
              f"train_time_s {fmt(s['train_time_s'], '.1f'):>6}", flush=True)

    if not rows:
        return 1
    solved = sum(bool(s["solved"]) for s in rows)
    final_ok = sum(s["final_eval_mean"] is not None and s["final_eval_mean"] >= 475 for s in rows)
    print(f"{args.algo} on {args.env}, {len(rows)} seeds: solved {solved}/{len(rows)}, "
          f"final eval >= 475 on {final_ok}/{len(rows)}")
    print(f"  median steps_to_solve {fmt(median_or_none([s['steps_to_solve'] for s in rows]))}, "
          f"median time_to_solve_s {fmt(median_or_none([s['time_to_solve_s'] for s in rows]), '.1f')}, "
          f"median final_eval_mean {fmt(median_or_none([s['final_eval_mean'] for s in rows]), '.1f')}, "
          f"median train_time_s {fmt(median_or_none([s['train_time_s'] for s in rows]), '.1f')}")
    if solved < len(rows):
        print("  (medians of steps/time to solve are over the solved seeds only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
