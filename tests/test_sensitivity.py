"""sensitivity_study.py: the classification rule on hand-made runs, the report, the docs' sections."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import sensitivity_study as study
from test_docs import copy_docs, generate

THRESHOLD, RANDOM = 475.0, 22.0


def summary(status="completed", solved=False, steps=None, final=100.0):
    return {"status": status, "solved": solved, "steps_to_solve": steps, "final_eval_mean": final}


def evals(*returns, every=5000):
    return pd.DataFrame({"global_step": [every * (i + 1) for i in range(len(returns))],
                         "mean_return": list(returns)})


@pytest.mark.parametrize("name, s, ev, expected", [
    ("solved and held", summary(solved=True, steps=10000, final=500.0), evals(100, 480, 500), "solved"),
    ("solved, then lost", summary(solved=True, steps=10000, final=300.0), evals(100, 480, 310), "unstable"),
    ("never solved, improved", summary(final=250.0), evals(30, 120, 260), "slow"),
    ("collapsed to below random", summary(final=9.4), evals(40, 12, 9), "diverged"),
    ("solved once, collapsed", summary(solved=True, steps=5000, final=9.0), evals(500, 9, 9), "diverged"),
    ("exactly random is no better", summary(final=RANDOM), evals(22, 22), "diverged"),
    ("the run failed (NaN loss)", summary(status="failed", final=None), None, "diverged"),
    ("NaN in an evaluation", summary(final=200.0), evals(100, math.nan), "diverged"),
])
def test_classification_rule_on_hand_made_runs(name, s, ev, expected):
    assert study.classify_run(s, ev, THRESHOLD, RANDOM) == expected, name


def test_a_cell_takes_the_most_common_class_and_a_tie_goes_to_the_worse():
    assert study.classify_cell(["solved", "solved", "unstable"]) == "solved"
    assert study.classify_cell(["solved", "slow", "diverged"]) == "diverged"
    assert study.classify_cell(["slow", "unstable"]) == "unstable"
    assert study.classify_cell(["slow", "slow", "diverged"]) == "slow"


def make_run(results: Path, cell: str, algo: str, seed: int, returns, final, status="completed"):
    path = results / "grid" / cell / "CartPole-v1" / algo / f"seed_{seed}"
    path.mkdir(parents=True)
    solved_at = next(((i + 1) * 1000 for i, r in enumerate(returns) if r >= THRESHOLD), None)
    (path / "config.json").write_text(json.dumps({"protocol": {"solve_threshold": THRESHOLD}}))
    (path / "summary.json").write_text(json.dumps({
        "algo": algo, "env_id": "CartPole-v1", "seed": seed, "status": status, "total_steps": 1000 * len(returns),
        "train_time_s": 1.0, "solved": solved_at is not None, "steps_to_solve": solved_at,
        "time_to_solve_s": None if solved_at is None else 0.5, "final_eval_mean": final, "final_eval_std": 1.0,
        "final_eval_episodes": 100, "last100_train_return": 100.0, "error": None if status == "completed" else "x"}))
    (path / "evals.csv").write_text("global_step,train_time_s,mean_return,std_return,episodes\n" + "".join(
        f"{(i + 1) * 1000},{i * 0.1},{r},0.0,20\n" for i, r in enumerate(returns)))
    (path / "episodes.csv").write_text("global_step,train_time_s,episode,return,length\n10,0.1,1,10.0,10\n")


def hand_made_study(results: Path):
    for seed in (1, 2, 3):
        make_run(results, "learning_rate=0.001__gamma=0.99", "ppo", seed, [100, 500, 500], 500.0)
        make_run(results, "learning_rate=0.1__gamma=0.99", "ppo", seed, [30, 9, 9], 9.3)
        make_run(results, "learning_rate=0.0001__gamma=0.99", "ppo", seed, [30, 60, 90 + seed], 95.0)
        make_run(results, "gamma=0.9__max_kl=0.01", "trpo", seed, [100, 480, 200], 210.0)
        make_run(results, "ent_coef=0.1", "ppo", seed, [30, 480, 490], 480.0 if seed < 3 else 300.0)


def test_report_classifies_each_cell_and_draws_the_heat_maps(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    hand_made_study(results)
    runs, skipped = study.load_grid(results)
    assert len(runs) == 15 and not skipped
    table = study.cell_table(runs, RANDOM)
    classes = {(r["algo"], r["cell"]): r["class"] for r in table.to_dict("records")}
    assert classes == {("ppo", "learning_rate=0.001__gamma=0.99"): "solved",
                       ("ppo", "learning_rate=0.1__gamma=0.99"): "diverged",
                       ("ppo", "learning_rate=0.0001__gamma=0.99"): "slow",
                       ("trpo", "gamma=0.9__max_kl=0.01"): "unstable",
                       ("ppo", "ent_coef=0.1"): "solved"}
    row = table[table["cell"] == "learning_rate=0.001__gamma=0.99"].iloc[0]
    assert row["runs_solved"] == 3 and row["steps_to_solve_median"] == 2000 and row["final_eval_iqm"] == 500
    out.mkdir()
    study.write_report(runs, table, skipped, RANDOM, results, out, None)
    for name in ("heatmap_ppo.png", "heatmap_trpo.png", "heatmap_entropy.png", "classification.csv",
                 "report.md", "doc_ppo.md", "doc_trpo.md", "doc_all.md"):
        assert (out / name).is_file(), name
    doc = (out / "doc_ppo.md").read_text()
    assert "diverged 1/3 (lr 0.1 at γ 0.99)" in doc and "slow 1/3 (lr 0.0001 at γ 0.99)" in doc
    assert "**Entropy bonus:** diverged 0/1; unstable 0/1; slow 0/1; solved 1/1 (ent_coef 0.1)." in doc
    assert "max_kl" in (out / "doc_trpo.md").read_text()
    assert study.CLASS_RULE in (out / "report.md").read_text()


def test_docs_sensitivity_sections_are_generated_and_checked(tmp_path, capsys):
    results, out = tmp_path / "results", tmp_path / "out"
    hand_made_study(results)
    runs, _ = study.load_grid(results)
    out.mkdir()
    study.write_report(runs, study.cell_table(runs, RANDOM), [], RANDOM, results, out, None)
    docs = copy_docs(tmp_path)
    assert generate("--sensitivity-dir", out, "--docs-dir", docs) == 0
    page = (docs / "06_ppo.md").read_text(encoding="utf-8")
    section = page.split("<!-- sensitivity:ppo:start -->")[1].split("<!-- sensitivity:ppo:end -->")[0]
    assert "lr 0.1 at γ 0.99" in section and "img/sensitivity_ppo.png" in section
    assert (docs / "img" / "sensitivity_ppo.png").read_bytes() == (out / "heatmap_ppo.png").read_bytes()
    assert "img/sensitivity_entropy.png" in (docs / "03_policy_gradient.md").read_text(encoding="utf-8")
    assert generate("--check", "--sensitivity-dir", out, "--docs-dir", docs) == 0
    (out / "doc_ppo.md").write_text((out / "doc_ppo.md").read_text() + "\nmore\n")
    assert generate("--check", "--sensitivity-dir", out, "--docs-dir", docs) == 1
    assert "06_ppo.md" in capsys.readouterr().err


def test_a_sensitivity_marker_naming_no_algorithm_is_refused(tmp_path, capsys):
    docs = copy_docs(tmp_path)
    page = docs / "04_a2c.md"
    page.write_text(page.read_text() + "\n<!-- sensitivity:dqn:start -->\n<!-- sensitivity:dqn:end -->\n")
    assert generate("--check", "--docs-dir", docs) == 2
    assert "sensitivity marker names 'dqn'" in capsys.readouterr().err


def test_report_only_without_a_study_is_one_line_exit_2(tmp_path, capsys):
    assert study.main(["--report-only", "--results-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "argument --results-dir" in err
    assert not (tmp_path / "o").exists()


def test_the_study_is_two_orchestrator_grids_of_180_and_48_runs(tmp_path, capsys):
    assert study.main(["--dry-run", "--results-dir", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "60 (algorithm, cell) pair(s) x 3 seed(s) x 1 env(s) = 180 runs" in out
    assert "16 (algorithm, cell) pair(s) x 3 seed(s) x 1 env(s) = 48 runs" in out
    assert "trpo [gamma=0.9__max_kl=0.0001]" in out and "not run (no --grid field): trpo" in out
    assert not (tmp_path / "r").exists()
