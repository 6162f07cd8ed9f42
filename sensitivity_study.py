"""Hyperparameter sensitivity of all five algorithms on CartPole-v1: which settings diverge, which are slow.

    python sensitivity_study.py --jobs 2          # run both sweeps (resumable), then the report
    python sensitivity_study.py --report-only     # the report from the runs already there
    python docs/generate.py --sensitivity-dir report/sensitivity   # the docs' sections

The exercise that closes the REINFORCE lesson, for five algorithms side by side:

- step size x discount: learning_rate {1e-4, 1e-3, 1e-2, 1e-1} x gamma {0.9, 0.95,
  0.99} x 3 seeds for REINFORCE, A2C, A3C and PPO. TRPO's policy has no learning
  rate: its step is set by the KL bound, so its rows sweep max_kl over the same
  four values (its critic's value_learning_rate would not touch the policy
  update at all). 60 cells, 180 runs.
- entropy bonus: ent_coef {0, 0.001, 0.01, 0.1} x 3 seeds for the four
  algorithms that have one (TRPO has none). 16 cells, 48 runs.

Each sweep is one ``run_all_comparison.py --grid`` command (printed by
``--dry-run``), so the study is resumable, parallel and Ray-capable like any
matrix; every run uses its algorithm's default budget and the protocol's
default evaluation. The report (``--out``) holds a heat map per algorithm
(rows step size, columns gamma; colour the IQM of the final evaluation;
each cell annotated with its runs solved and median steps to solve), one for
the entropy sweep, the classification table (classification.csv / .md),
report.md, and the Markdown sections docs/generate.py pastes into the docs.

Classification of a run (CLASS_RULE below, stated in the report and docs):
diverged, unstable, slow or solved; a cell takes its runs' most common class,
a tie going to the worse one.

Exit status: 0 report written, 1 some run failed (report still written),
2 bad input, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import aggregate_results as agg
import run_all_comparison
from rlsuite import algorithms
from rlsuite.cli import OneLineParser, UsageError, check_writable, create_folder, positive_int

PROG = "sensitivity_study.py"
ENV_ID = "CartPole-v1"
SEEDS = "1-3"
STEP_SIZES = "0.0001,0.001,0.01,0.1"
GAMMAS = "0.9,0.95,0.99"
ENT_COEFS = "0,0.001,0.01,0.1"
# The field each algorithm's rows sweep: its policy's step size.
STEP_FIELD = {name: "learning_rate" for name in algorithms.NAMES} | {"trpo": "max_kl"}

CLASSES = ("diverged", "unstable", "slow", "solved")  # worst first: a tie goes to the first
HEATMAP_NOTE = (
    "Each heat map cell: colour and first line, the IQM of the runs' final evaluations (100 greedy "
    "episodes each; with fewer than 4 seeds the IQM trims nothing and is their mean); then runs "
    "solved, the median steps to the first solving evaluation over the solved runs, the late policy "
    "entropy, and the class.")
ENTROPY_NOTE = ("Late policy entropy: the mean of updates.csv's `entropy` over each run's last 10% of "
                "updates, averaged over the cell's runs; what the entropy bonus keeps of exploration.")
CLASS_RULE = (
    "A run is **diverged** if it failed (NaN or an exception) or its final evaluation (100 greedy "
    "episodes) is no better than a uniformly random policy's return on the same start states; "
    "**unstable** if a periodic evaluation reached the solve threshold but the final evaluation is "
    "below it (solved, then lost); **slow** if no evaluation reached the threshold but the final "
    "policy beats the random one (every policy starts near-uniform, so it improved, just not "
    "enough in the budget); **solved** if it reached the threshold and ends at or above it. "
    "A cell takes its runs' most common class; a tie goes to the worse class "
    "(diverged, unstable, slow, solved, in that order).")


def sweeps(seeds: str = SEEDS) -> dict[str, list[str]]:
    """The orchestrator arguments of each sweep (without results, jobs and backend flags)."""
    return {
        "step size x gamma": ["--envs", ENV_ID, "--seeds", seeds,
                              "--grid", f"learning_rate={STEP_SIZES}", "--grid", f"gamma={GAMMAS}",
                              "--grid", f"trpo.max_kl={STEP_SIZES}"],
        "entropy bonus": ["--envs", ENV_ID, "--seeds", seeds, "--grid", f"ent_coef={ENT_COEFS}"],
    }


# -- classification --------------------------------------------------------------------------

def classify_run(summary: dict, evals: pd.DataFrame | None, threshold: float, random_return: float) -> str:
    """One run's class by CLASS_RULE. ``summary`` is the run's summary.json (any status)."""
    if summary.get("status") == "failed":
        return "diverged"
    final = summary.get("final_eval_mean")
    returns = [] if evals is None else list(evals["mean_return"])
    if final is None or not math.isfinite(final) or not all(math.isfinite(r) for r in returns):
        return "diverged"
    if final <= random_return:
        return "diverged"
    if not summary.get("solved"):
        return "slow"
    # the aggregator's stability measure: did the final 100-episode evaluation hold the threshold?
    steps = [] if evals is None else list(evals["global_step"])
    held = agg.stability(steps, returns, summary.get("steps_to_solve"), threshold, final)["ended_solved"]
    return "solved" if held else "unstable"


def classify_cell(classes: list[str]) -> str:
    """Most common class; a tie goes to the worse (CLASSES order)."""
    counts = {c: classes.count(c) for c in CLASSES}
    top = max(counts.values())
    return next(c for c in CLASSES if counts[c] == top)


# -- reading the grid ------------------------------------------------------------------------------

def parse_cell(name: str) -> dict[str, float]:
    """``learning_rate=0.001__gamma=0.9`` -> {"learning_rate": 0.001, "gamma": 0.9}."""
    out = {}
    for part in name.split("__"):
        key, _, value = part.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def load_grid(results_dir: Path, env_id: str = ENV_ID) -> tuple[pd.DataFrame, list]:
    """One row per run found under results_dir/grid/<cell>/<env>/<algo>/seed_<n>/ (completed or
    failed; interrupted and unreadable runs are listed as skipped)."""
    rows, skipped = [], []
    for run_dir in sorted((results_dir / run_all_comparison.GRID_DIR).glob(f"*/{env_id}/*/seed_*")):
        cell, algo, seed = run_dir.parts[-4], run_dir.parts[-2], run_dir.parts[-1]
        if not agg.CANONICAL_SEED.fullmatch(seed):
            continue
        label = f"{cell}/{env_id}/{algo}/{seed}"
        try:
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            if summary.get("status") == "completed":
                agg.read_summary_checked(run_dir)
                evals = agg.read_csv_checked(run_dir / "evals.csv", agg.EVAL_COLUMNS)
            elif summary.get("status") == "failed":
                evals = None
            else:
                skipped.append((label, f"status {summary.get('status')!r}"))
                continue
            threshold = json.loads((run_dir / "config.json").read_text())["protocol"]["solve_threshold"]
            entropy = late_entropy(run_dir / "updates.csv")
        except (OSError, ValueError, KeyError, agg.RunError) as exc:
            skipped.append((label, str(exc) or type(exc).__name__))
            continue
        rows.append({"algo": algo, "cell": cell, **{f"p_{k}": v for k, v in parse_cell(cell).items()},
                     "seed": int(seed.removeprefix("seed_")), "status": summary.get("status"),
                     "solved": bool(summary.get("solved")), "steps_to_solve": summary.get("steps_to_solve"),
                     "final_eval_mean": summary.get("final_eval_mean"), "threshold": float(threshold),
                     "final_entropy": entropy, "evals": evals, "summary": summary})
    return pd.DataFrame(rows), skipped


def late_entropy(path: Path) -> float:
    """Mean policy entropy (updates.csv ``entropy``, nats) over the last 10% of a run's updates:
    how much the final policy still explores. NaN when the file or column is missing."""
    try:
        column = pd.read_csv(path, usecols=["entropy"])["entropy"].dropna().to_numpy(float)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return float("nan")
    if not len(column):
        return float("nan")
    return float(column[-max(1, len(column) // 10):].mean())


def random_policy_return(env_id: str = ENV_ID, episodes: int = 100, seed: int = 0) -> float:
    """Mean return of uniformly random actions on the final evaluation's start states
    (rlsuite.scores.measure_random: seed 0's final-eval seeds; each run uses its own, which
    differ in start state only)."""
    from rlsuite.scores import measure_random

    return measure_random(env_id, episodes, seed)["mean"]


def cell_table(runs: pd.DataFrame, random_return: float) -> pd.DataFrame:
    """One row per (algo, cell): counts per class, runs solved, IQM of final eval, median steps."""
    runs = runs.copy()
    runs["class"] = [classify_run(r.summary, r.evals, r.threshold, random_return) for r in runs.itertuples()]
    rows = []
    params = [c for c in runs.columns if c.startswith("p_")]
    for (algo, cell), g in runs.groupby(["algo", "cell"], sort=False):
        finals = g["final_eval_mean"].dropna().to_numpy(float)
        solved_steps = g.loc[g["solved"], "steps_to_solve"].dropna().to_numpy(float)
        classes = list(g["class"])
        row = {"algo": algo, "cell": cell, **{p[2:]: g[p].iloc[0] for p in params if pd.notna(g[p].iloc[0])},
               "runs": len(g), "runs_solved": int(g["solved"].sum()),
               "final_eval_iqm": float(agg.iqm(finals)) if len(finals) else float("nan"),
               "steps_to_solve_median": float(np.median(solved_steps)) if len(solved_steps) else float("nan"),
               "final_entropy": float(g["final_entropy"].mean()),
               **{f"n_{c}": classes.count(c) for c in CLASSES}, "class": classify_cell(classes)}
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["order"] = table["algo"].map(algorithms.rank)
        keys = ["order"] + [k for k in ("learning_rate", "max_kl", "gamma", "ent_coef") if k in table.columns]
        table = table.sort_values(keys).drop(columns="order").reset_index(drop=True)
    return table


def sweep_of(row) -> str:
    return "entropy bonus" if "ent_coef" in row and pd.notna(row.get("ent_coef")) else "step size x gamma"


# -- figures ---------------------------------------------------------------------------------------

CLASS_MARK = {"diverged": "DIVERGED", "unstable": "unstable", "slow": "slow", "solved": "solved"}


def _annotate(ax, i, j, row, vmax):
    steps = row["steps_to_solve_median"]
    text = (f"{row['final_eval_iqm']:.0f}\n{row['runs_solved']}/{row['runs']} solved\n"
            + (f"med {steps / 1000:.0f}k steps" if math.isfinite(steps) else "never solved")
            + (f"\nentropy {row['final_entropy']:.2f}" if math.isfinite(row.get("final_entropy", math.nan)) else "")
            + f"\n{CLASS_MARK[row['class']]}")
    dark = not math.isfinite(row["final_eval_iqm"]) or row["final_eval_iqm"] < 0.5 * vmax
    ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="white" if dark else "black")


def heatmap(table: pd.DataFrame, rows_field: str, cols_field: str, row_labels, title: str, path: Path,
            threshold: float, row_key: str | None = None):
    """Rows x columns of cells, colour the IQM of final eval (0 to the solve threshold's scale)."""
    plt = agg._plt()
    row_values = sorted(table[row_key or rows_field].unique(), key=lambda v: (str(type(v)), v))
    col_values = sorted(table[cols_field].unique())
    grid = np.full((len(row_values), len(col_values)), np.nan)
    vmax = max(500.0, threshold)
    fig, ax = plt.subplots(figsize=(1.9 * len(col_values) + 2.2, 1.05 * len(row_values) + 1.6),
                           constrained_layout=True)
    for i, rv in enumerate(row_values):
        for j, cv in enumerate(col_values):
            match = table[(table[row_key or rows_field] == rv) & (table[cols_field] == cv)]
            if len(match):
                grid[i, j] = match.iloc[0]["final_eval_iqm"]
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for i, rv in enumerate(row_values):
        for j, cv in enumerate(col_values):
            match = table[(table[row_key or rows_field] == rv) & (table[cols_field] == cv)]
            if len(match):
                _annotate(ax, i, j, match.iloc[0], vmax)
    ax.set_xticks(range(len(col_values)), [f"{v:g}" for v in col_values])
    ax.set_yticks(range(len(row_values)), [row_labels(v) for v in row_values])
    ax.set_xlabel(cols_field)
    ax.set_ylabel(rows_field)
    ax.grid(False)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="IQM of final eval (100 greedy episodes)")
    fig.savefig(path)
    plt.close(fig)


# -- tables and text -----------------------------------------------------------------------------

def fmt(x, kind="g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if kind == "steps":
        return f"{x:,.0f}"
    if kind == "score":
        return f"{x:.1f}"
    return f"{x:g}"


def classification_markdown(table: pd.DataFrame) -> str:
    head = ["algorithm", "setting", "runs", "solved", "IQM final eval", "median steps to solve",
            "late policy entropy", "diverged / unstable / slow / solved", "class"]
    rows = []
    for r in table.to_dict("records"):
        rows.append([algorithms.get(r["algo"]).title if r["algo"] in algorithms.ALGORITHMS else r["algo"],
                     setting(r), r["runs"], r["runs_solved"], fmt(r["final_eval_iqm"], "score"),
                     fmt(r["steps_to_solve_median"], "steps"), fmt(round(r["final_entropy"], 3)),
                     " / ".join(str(r[f"n_{c}"]) for c in CLASSES), f"**{r['class']}**"])
    return agg.markdown_table(head, rows)


def setting(r: dict) -> str:
    parts = []
    for key in ("learning_rate", "max_kl", "gamma", "ent_coef"):
        if key in r and r[key] is not None and not (isinstance(r[key], float) and math.isnan(r[key])):
            parts.append(f"{'lr' if key == 'learning_rate' else key} {r[key]:g}")
    return ", ".join(parts)


def answer(table: pd.DataFrame, algo: str) -> list[str]:
    """The exercise's answer for one algorithm, from its cells: which diverged, were unstable, slow."""
    mine = table[table["algo"] == algo]
    lines = []
    for sweep, label in (("step size x gamma", "Step size x γ"), ("entropy bonus", "Entropy bonus")):
        cells = [r for r in mine.to_dict("records") if sweep_of(r) == sweep]
        if not cells:
            continue
        parts = []
        for c in CLASSES:
            chosen = [r for r in cells if r["class"] == c]
            parts.append(f"{c} {len(chosen)}/{len(cells)}" + (f" ({group_settings(chosen)})" if chosen else ""))
        line = f"- **{label}:** " + "; ".join(parts) + "."
        if sweep == "entropy bonus":
            # what the bonus does to exploration: the entropy the policy keeps late in training
            line += (" Policy entropy over the last 10% of updates (nats; uniform over the actions is "
                     "ln 2 = 0.69 on CartPole): " + ", ".join(
                         f"{fmt(r['ent_coef'])} → {fmt(round(r['final_entropy'], 3))}"
                         for r in sorted(cells, key=lambda r: r["ent_coef"])) + ".")
        lines.append(line)
    return lines


def group_settings(cells: list[dict]) -> str:
    """``lr 0.1 at γ 0.9, 0.99; lr 0.0001 at γ 0.9`` (one group per step size), or ``ent_coef 0, 0.1``."""
    if all("gamma" in r and isinstance(r.get("gamma"), float) and math.isfinite(r["gamma"]) for r in cells):
        groups: dict = {}
        for r in cells:
            key = next(k for k in ("learning_rate", "max_kl") if isinstance(r.get(k), float)
                       and math.isfinite(r[k]))
            groups.setdefault((key, r[key]), []).append(r["gamma"])
        return "; ".join(f"{'lr' if key == 'learning_rate' else key} {value:g} at γ "
                         + ", ".join(f"{g:g}" for g in sorted(gs)) for (key, value), gs in groups.items())
    return "ent_coef " + ", ".join(f"{r['ent_coef']:g}" for r in cells)


# -- the report ----------------------------------------------------------------------------------

def write_report(runs: pd.DataFrame, table: pd.DataFrame, skipped: list, random_return: float,
                 results_dir: Path, out: Path, wall: str | None) -> None:
    table.to_csv(out / "classification.csv", index=False)
    (out / "classification.md").write_text("# Classification\n\n" + classification_markdown(table),
                                           encoding="utf-8")
    threshold = float(runs["threshold"].iloc[0])
    figures = {}
    for algo in algorithms.NAMES:
        grid = table[(table["algo"] == algo) & table.apply(lambda r: sweep_of(r) == "step size x gamma", axis=1)]
        field = STEP_FIELD[algo]
        if grid.empty or field not in grid.columns or "gamma" not in grid.columns:
            continue
        grid = grid.dropna(subset=[field, "gamma"])  # cells of another grid in the same tree
        if grid.empty:
            continue
        title = algorithms.get(algo).title
        path = out / f"heatmap_{algo}.png"
        heatmap(grid, field, "gamma", lambda v: f"{v:g}",
                f"{title} on {ENV_ID}: {field} x gamma ({seeds_per_cell(grid)} per cell)",
                path, threshold)
        figures[algo] = path.name
    ent = table[table.apply(lambda r: sweep_of(r) == "entropy bonus", axis=1)].copy()
    if not ent.empty:
        ent["algo_rank"] = ent["algo"].map(lambda a: algorithms.rank(a)[0])
        titles = {algorithms.rank(a)[0]: algorithms.get(a).title for a in ent["algo"].unique()}
        heatmap(ent, "algorithm", "ent_coef", lambda v: titles[v],
                f"Entropy bonus on {ENV_ID}: ent_coef per algorithm", out / "heatmap_entropy.png", threshold,
                row_key="algo_rank")
        figures["entropy"] = "heatmap_entropy.png"
    commands = [f"python run_all_comparison.py {' '.join(args)}" for args in sweeps().values()]
    lines = ["# Sensitivity study", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `{PROG}` from `{results_dir}`: "
             f"{len(runs)} run(s) in {len(table)} cell(s)" + (f", {len(skipped)} skipped (listed at the end)"
                                                              if skipped else "") + "." + partial_note(len(runs)),
             "", "The sweeps (each a resumable orchestrator grid):", "", "```bash", *commands, "```", "",
             f"Random policy (uniform actions, the suite's evaluator, 100 episodes): mean return "
             f"**{random_return:.1f}**. Solve threshold: {threshold:g}.", "", HEATMAP_NOTE, "",
             ENTROPY_NOTE, "", "## Classification rule", "", CLASS_RULE, ""]
    if wall:
        lines += [f"Wall time: {wall}.", ""]
    for algo, name in figures.items():
        head = "Entropy bonus" if algo == "entropy" else algorithms.get(algo).title
        lines += [f"## {head}", "", f"![{head}]({name})", ""]
        if algo != "entropy":
            lines += answer(table, algo) + [""]
    lines += ["## Classification table", "", classification_markdown(table)]
    if skipped:
        lines += ["## Skipped runs", ""] + [f"- `{label}`: {reason}" for label, reason in skipped] + [""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    write_doc_sections(table, random_return, threshold, out, len(runs))


PLANNED_RUNS = 3 * (12 * len(algorithms.NAMES) + 4 * 4)  # 180 step size x gamma + 48 entropy


def partial_note(n_runs: int) -> str:
    """Said wherever the numbers are shown, when the study holds fewer runs than planned."""
    if n_runs >= PLANNED_RUNS:
        return ""
    return (f" **The study was stopped part-way: {n_runs} of the {PLANNED_RUNS} planned runs (3 seeds per "
            "cell); a cell missing from a table or heat map was not run. The same command completes it, "
            "and every class here may change with the other seeds.**")


def seeds_per_cell(table: pd.DataFrame) -> str:
    lo, hi = int(table["runs"].min()), int(table["runs"].max())
    return (f"{hi} seed" + ("s" if hi > 1 else "")) if lo == hi else f"{lo} to {hi} seeds (the study was stopped part-way)"


def write_doc_sections(table: pd.DataFrame, random_return: float, threshold: float, out: Path,
                       n_runs: int) -> None:
    """doc_<algo>.md for each algorithm's page and doc_all.md (the exercise across all five);
    docs/generate.py pastes them between the sensitivity markers and copies the heat maps."""
    regen = ("Regenerate with `python sensitivity_study.py --jobs 2`, then "
             "`python docs/generate.py --sensitivity-dir report/sensitivity`.")
    rule = f"Random policy: {random_return:.1f}; solve threshold {threshold:g}. {CLASS_RULE}"
    for algo in algorithms.NAMES:
        mine = table[table["algo"] == algo]
        if mine.empty:
            continue
        field = STEP_FIELD[algo]
        lines = [f"Measured on {ENV_ID}: {field} x γ, {seeds_per_cell(mine)} per cell, default budget. "
                 f"{regen}{partial_note(n_runs)}", ""]
        if algo == "trpo":
            lines += ["TRPO's policy has no learning rate; its step is bounded by `max_kl`, so the rows "
                      "sweep `max_kl` over the same four values (the critic's `value_learning_rate` would "
                      "leave the policy update untouched).", ""]
        lines += answer(table, algo) + [""]
        lines += [f"![{algorithms.get(algo).title}: {field} x γ heat map](img/sensitivity_{algo}.png)", "",
                  HEATMAP_NOTE, "", classification_markdown(mine), ENTROPY_NOTE, "", rule, ""]
        (out / f"doc_{algo}.md").write_text("\n".join(lines), encoding="utf-8")
    lines = [f"Measured: {n_runs} runs on {ENV_ID}, {seeds_per_cell(table)} per cell, each algorithm's "
             f"default budget. {regen}{partial_note(n_runs)}", ""]
    for algo in algorithms.NAMES:
        if (table["algo"] == algo).any():
            lines += [f"**{algorithms.get(algo).title}** ({STEP_FIELD[algo]} x γ)", ""] + answer(table, algo) + [""]
    if (out / "heatmap_entropy.png").is_file():
        lines += ["![Entropy bonus per algorithm](img/sensitivity_entropy.png)", ""]
    lines += [rule, ""]
    (out / "doc_all.md").write_text("\n".join(lines), encoding="utf-8")


# -- the command line ----------------------------------------------------------------------------

def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0],
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--results-dir", default="results/sensitivity", metavar="DIR",
                   help="root of the study's results; the cells are DIR/grid/<cell>/")
    p.add_argument("--video-dir", default="videos/sensitivity", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--out", default="report/sensitivity", metavar="DIR",
                   help="heat maps, classification table, report.md, doc sections")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="runs at a time (run_all_comparison.py --jobs; default: the number of cores)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="run_all_comparison.py --backend")
    p.add_argument("--address", default="auto", help="Ray address for --backend ray")
    p.add_argument("--report-only", action="store_true", help="run nothing; report the runs already there")
    p.add_argument("--dry-run", action="store_true", help="print the sweeps' runs, run nothing")
    # Undocumented: tests run the sweeps on fake runners with fewer seeds.
    p.add_argument("--runner-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seeds", default=SEEDS, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    results_dir, out = Path(args.results_dir), Path(args.out)
    try:
        check_writable(out, "--out")
        if args.report_only and not (results_dir / run_all_comparison.GRID_DIR).is_dir():
            raise UsageError(f"argument --results-dir: {results_dir / run_all_comparison.GRID_DIR} not found; "
                             f"run {PROG} without --report-only first")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    status = 0
    started = time.monotonic()
    if not args.report_only:
        extra = ["--results-dir", str(results_dir), "--video-dir", args.video_dir, "--no-aggregate",
                 "--backend", args.backend, "--address", args.address]
        if args.jobs:
            extra += ["--jobs", str(args.jobs)]
        if args.runner_dir:
            extra += ["--runner-dir", args.runner_dir]
        if args.dry_run:
            extra.append("--dry-run")
        for name, sweep in sweeps(args.seeds).items():
            print(f"== {name}: run_all_comparison.py {' '.join(sweep)}", flush=True)
            code = run_all_comparison.main(sweep + extra)
            if code in (2, 130):
                return code
            status = max(status, code)
        if args.dry_run:
            return 0
    wall = time.monotonic() - started
    runs, skipped = load_grid(results_dir)
    if runs.empty:
        print(f"{PROG}: error: argument --results-dir: no runs under {results_dir / 'grid'}", file=sys.stderr)
        return 2
    try:
        create_folder(out, "--out")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    random_return = random_policy_return()
    table = cell_table(runs, random_return)
    shown = None if args.report_only else f"{wall / 60:.1f} min for the runs this invocation made"
    write_report(runs, table, skipped, random_return, results_dir, out, shown)
    print(classification_markdown(table), end="")
    print(f"report: {out / 'report.md'} ({len(runs)} runs, {len(table)} cells, random policy "
          f"{random_return:.1f})")
    return status


if __name__ == "__main__":
    sys.exit(main())
