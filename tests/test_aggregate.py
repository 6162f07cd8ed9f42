"""aggregate_results.py: the statistics against hand-computed answers, loading, the report."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aggregate_results as agg
from conftest import assert_usage_error, run_script


# -- statistics -------------------------------------------------------------------------

def test_iqm_averages_the_middle_half():
    assert agg.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean(3, 4, 5, 6)
    assert agg.iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # floor(5/4) = 1 cut each end
    assert agg.iqm([7.0]) == pytest.approx(7.0)
    rows = agg.iqm(np.array([[8, 1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 9, 9, 9, 9]]), axis=-1)
    np.testing.assert_allclose(rows, [4.5, 5.0])


def test_bootstrap_ci_of_two_runs_spans_their_range():
    # Means of two draws from {0, 1}: 0, 0.5 or 1 with probability 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% percentiles are 0 and 1.
    point, low, high = agg.bootstrap_ci([0.0, 1.0], agg.mean, reps=4000)
    assert (point, low, high) == (0.5, 0.0, 1.0)


def test_bootstrap_ci_of_equal_scores_is_a_point():
    point, low, high = agg.bootstrap_ci([500.0] * 5, agg.iqm)
    assert point == low == high == 500.0


def test_bootstrap_is_reproducible_with_its_fixed_random_state():
    scores = np.array([410.0, 450.0, 480.0, 495.0, 500.0])
    first = agg.bootstrap_ci(scores, agg.iqm)
    assert first == agg.bootstrap_ci(scores, agg.iqm)
    assert first[1] <= first[0] <= first[2]
    assert first[1] < first[2]


def test_bootstrap_over_curves_resamples_whole_runs():
    # Two runs, each a curve over 3 grid points. Resampling whole rows, a replicate's
    # mean is run A, run B or their average at every point at once; the 2.5% / 97.5%
    # percentiles are the two runs themselves, point by point.
    curves = np.array([[0.0, 10.0, 20.0], [2.0, 14.0, 20.0]])
    centre, low, high = agg.bootstrap_ci(curves, agg.mean, reps=4000)
    np.testing.assert_allclose(centre, [1.0, 12.0, 20.0])
    np.testing.assert_allclose(low, curves[0])
    np.testing.assert_allclose(high, curves[1])


def test_bootstrap_of_a_performance_profile_has_one_band_per_tau():
    taus = [0, 150, 500]
    profile = lambda x, axis: agg.performance_profile(np.moveaxis(x, axis, -1), taus)  # noqa: E731
    point, low, high = agg.bootstrap_ci([100.0, 200.0], profile, reps=4000)
    np.testing.assert_allclose(point, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(low, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(high, [1.0, 1.0, 0.0])


def test_performance_profile_counts_runs_strictly_above_tau():
    profile = agg.performance_profile([100, 200, 300, 400], [0, 150, 300, 500])
    np.testing.assert_allclose(profile, [1.0, 0.75, 0.25, 0.0])
    batch = agg.performance_profile(np.array([[1, 3], [3, 3]]), [2])
    np.testing.assert_allclose(batch, [[0.5], [1.0]])


def test_performance_profile_with_unsorted_taus_keeps_their_order():
    np.testing.assert_allclose(agg.performance_profile([100, 200, 300, 400], [300, 0, 500, 150]),
                               [0.25, 1.0, 0.0, 0.75])


# -- across environments (Agarwal et al. 2021) ---------------------------------------------

def test_normalization_maps_random_to_0_and_the_reference_to_1():
    np.testing.assert_allclose(agg.normalize([10.0, 110.0, 60.0, 210.0], 10.0, 110.0), [0, 1, 0.5, 2])
    # negative returns (Pendulum-like): the unit still runs from random to reference
    np.testing.assert_allclose(agg.normalize([-1200.0, -200.0, -700.0], -1200.0, -200.0), [0, 1, 0.5])


def test_iqm_of_normalized_scores_pools_the_runs_of_every_env():
    a = agg.normalize([0.0, 50.0, 100.0, 150.0], 0.0, 100.0)  # 0, .5, 1, 1.5
    b = agg.normalize([-100.0, 0.0, 100.0, 300.0], -100.0, 100.0)  # 0, .5, 1, 2
    # sorted: 0 0 | .5 .5 1 1 | 1.5 2
    assert agg.iqm(np.concatenate([a, b])) == pytest.approx(0.75)


def test_optimality_gap_counts_only_the_shortfall_below_the_target():
    assert agg.optimality_gap([0.0, 0.5, 1.0, 1.5]) == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert agg.optimality_gap([2.0, 3.0]) == 0.0  # overshooting earns nothing
    assert agg.optimality_gap([0.2, 0.9], gamma=0.5) == pytest.approx(0.15)
    np.testing.assert_allclose(agg.optimality_gap(np.array([[0.0, 1.0], [0.5, 0.5]]), axis=1), [0.5, 0.5])


def test_mann_whitney_counts_ties_as_half():
    assert agg.mann_whitney([5.0, 6.0], [1.0, 2.0, 3.0]) == 1.0
    assert agg.mann_whitney([1.0, 2.0, 3.0], [5.0, 6.0]) == 0.0
    assert agg.mann_whitney([4.0, 4.0], [4.0, 4.0, 4.0]) == 0.5
    # 1 beats none of 2, 2, 3; 3 beats both 2s and ties with 3: (0 + 0 + 0 + 1 + 1 + 0.5) / 6
    assert agg.mann_whitney([1.0, 3.0], [2.0, 2.0, 3.0]) == pytest.approx(5 / 12)


def test_probability_of_improvement_averages_over_the_envs_both_ran():
    scores = [9.0, 8.0, 1.0, 2.0, 1.0, 3.0, 2.0, 2.0, 3.0, 100.0]
    algos = ["x", "x", "y", "y", "x", "x", "y", "y", "y", "x"]
    envs = ["A", "A", "A", "A", "B", "B", "B", "B", "B", "C"]  # C: only x ran, so it does not count
    p = agg.probability_of_improvement(scores, algos, envs, "x", "y")
    assert p == pytest.approx((1.0 + 5 / 12) / 2)
    assert agg.probability_of_improvement(scores, algos, envs, "y", "x") == pytest.approx(1 - p)
    assert np.isnan(agg.probability_of_improvement(scores, algos, envs, "x", "z"))


def test_stratified_bootstrap_keeps_every_stratum_its_size():
    # stratum a: 2 runs scoring 0; stratum b: 50 runs scoring 1. Resampled within strata,
    # every replicate holds 2 zeros and 50 ones, so the mean is 50/52 in all of them.
    scores = np.r_[np.zeros(2), np.ones(50)]
    groups = ["a"] * 2 + ["b"] * 50
    assert agg.bootstrap_ci(scores, agg.mean, groups=groups) == (50 / 52, 50 / 52, 50 / 52)
    _, low, high = agg.bootstrap_ci(scores, agg.mean)  # pooled: the share of zeros varies
    assert low < 50 / 52 < high


def test_stratified_bootstrap_draws_position_j_from_the_stratum_of_run_j():
    replicates = []

    def spy(x, axis):
        if axis == 1:
            replicates.append(x)
        return agg.mean(x, axis)

    values = np.arange(12.0)  # runs 0-2 in stratum "b", 3-11 in "a": each value names its run
    agg.bootstrap_ci(values, spy, reps=300, groups=["b"] * 3 + ["a"] * 9)
    (r,) = replicates
    assert r.shape == (300, 12)
    assert (r[:, :3] <= 2).all() and (r[:, 3:] >= 3).all()
    assert len(np.unique(r[:, 3:])) == 9  # and it does resample: every run of "a" is drawn somewhere
    with pytest.raises(ValueError, match="groups names 2 runs"):
        agg.bootstrap_ci(values, agg.mean, groups=["a", "b"])


def test_one_stratum_gives_exactly_the_unstratified_bootstrap():
    scores = np.array([410.0, 450.0, 480.0, 495.0, 500.0, 120.0])
    assert agg.bootstrap_ci(scores, agg.iqm) == agg.bootstrap_ci(scores, agg.iqm, groups=["env"] * 6)


def test_bootstrap_of_a_clear_improvement_is_certain():
    scores = [9.0, 8.0, 1.0, 2.0, 7.0, 6.0, 3.0, 3.0]
    algos = ["x", "x", "y", "y"] * 2
    envs = ["A"] * 4 + ["B"] * 4
    stat = lambda s, axis: agg.probability_of_improvement(s, algos, envs, "x", "y", axis)  # noqa: E731
    groups = list(zip(envs, algos))
    assert agg.bootstrap_ci(scores, stat, reps=500, groups=groups) == (1.0, 1.0, 1.0)


def test_resample_interpolates_and_carries_the_last_value_forward():
    out = agg.resample([10, 20], [0, 10], np.array([5, 10, 15, 20, 30]))
    np.testing.assert_allclose(out, [np.nan, 0, 5, 10, 10])


def test_common_grid_starts_where_every_run_has_data():
    grid = agg.common_grid([(np.array([5, 50]), None), (np.array([10, 40]), None)], points=5)
    np.testing.assert_allclose(grid, [10, 20, 30, 40, 50])


def test_curve_band_of_identical_runs_has_no_width():
    centre, low, high = agg.bootstrap_ci(np.tile([1.0, 2.0, 3.0], (4, 1)), agg.mean)
    np.testing.assert_allclose(centre, [1, 2, 3])
    np.testing.assert_allclose(low, centre)
    np.testing.assert_allclose(high, centre)


# -- a fabricated results tree ---------------------------------------------------------------

def make_run(results: Path, algo: str, seed: int, final: float = 500.0, solved_at: int | None = 20_000,
             env_id: str = "CartPole-v1", status: str = "completed", steps: int = 40_000) -> Path:
    """A run directory with the protocol's files, as a runner would leave it."""
    d = Path(results) / env_id / algo / f"seed_{seed}"
    d.mkdir(parents=True, exist_ok=True)
    evals = pd.DataFrame({
        "global_step": np.arange(5000, steps + 1, 5000),
        "train_time_s": np.arange(1, steps // 5000 + 1) * (1.0 + seed / 10),
        "mean_return": np.linspace(50, final, steps // 5000), "std_return": 1.0, "episodes": 20,
    })
    evals.to_csv(d / "evals.csv", index=False)
    lengths = np.full(steps // 100, 100)
    pd.DataFrame({"global_step": np.cumsum(lengths), "train_time_s": np.arange(len(lengths)) * 0.05,
                  "episode": np.arange(1, len(lengths) + 1), "return": lengths.astype(float),
                  "length": lengths}).to_csv(d / "episodes.csv", index=False)
    (d / "config.json").write_text(json.dumps({"algo": algo, "env_id": env_id, "seed": seed,
                                               "protocol": {"solve_threshold": 475.0}}))
    (d / "summary.json").write_text(json.dumps({
        "algo": algo, "env_id": env_id, "seed": seed, "status": status, "total_steps": steps,
        "train_time_s": 8.0 + seed, "solved": solved_at is not None, "steps_to_solve": solved_at,
        "time_to_solve_s": None if solved_at is None else solved_at / 5000.0, "final_eval_mean": final,
        "final_eval_std": 0.0, "final_eval_episodes": 100, "last100_train_return": 100.0,
        "error": None if status == "completed" else "interrupted by signal",
    }))
    return d


@pytest.fixture
def tree(tmp_path):
    results = tmp_path / "results"
    for seed, (final, solved) in enumerate([(480.0, 10_000), (490.0, 20_000), (500.0, 30_000),
                                            (500.0, 40_000), (300.0, None)], start=1):
        make_run(results, "ppo", seed, final, solved)
    for seed in (1, 2):
        make_run(results, "policy_gradient", seed, 450.0 + seed, 25_000)
    return results


def test_load_results_builds_one_tidy_table(tree):
    loaded = agg.load_results(tree)
    assert loaded.skipped == []
    assert len(loaded.runs) == 7
    assert list(loaded.runs["algo"].unique()) == ["policy_gradient", "ppo"]  # protocol order
    assert {"env_id", "algo", "seed", "final_eval_mean", "steps_to_solve"} <= set(loaded.runs.columns)
    assert set(loaded.evals.groupby(["algo", "seed"]).size()) == {8}
    assert loaded.episodes["return"].dtype.kind == "f"


def test_summary_gives_hand_computed_medians_and_counts(tree):
    table = agg.summarize(agg.load_results(tree).runs, reps=500).set_index("algo")
    ppo = table.loc["ppo"]
    assert (ppo["runs"], ppo["runs_solved"]) == (5, 4)
    # steps_to_solve over the 4 solved runs: 10k, 20k, 30k, 40k
    assert ppo["steps_to_solve_median"] == 25_000
    assert (ppo["steps_to_solve_q25"], ppo["steps_to_solve_q75"]) == (17_500, 32_500)
    assert ppo["final_eval_mean"] == pytest.approx((480 + 490 + 500 + 500 + 300) / 5)
    assert ppo["final_eval_iqm"] == pytest.approx((480 + 490 + 500) / 3)  # sorted: 300 | 480 490 500 | 500
    assert ppo["final_eval_mean_ci_low"] <= ppo["final_eval_mean"] <= ppo["final_eval_mean_ci_high"]


def test_stability_of_a_run_that_solves_then_collapses():
    steps = [5000, 10000, 15000, 20000, 25000]
    returns = [200.0, 480.0, 300.0, 490.0, 236.0]  # solves at 10k, falls back twice
    s = agg.stability(steps, returns, 10000, 475.0, final_eval_mean=236.7)
    assert s["min_eval_after_solve"] == 236.0
    assert s["frac_evals_solved_after_solve"] == pytest.approx(2 / 4)
    assert s["ended_solved"] is False
    held = agg.stability(steps, [200.0, 480.0, 500.0, 500.0, 500.0], 10000, 475.0, 500.0)
    assert (held["min_eval_after_solve"], held["frac_evals_solved_after_solve"], held["ended_solved"]) \
        == (480.0, 1.0, True)


def test_stability_of_an_unsolved_run_or_one_without_threshold():
    never = agg.stability([5000], [100.0], None, 475.0, 100.0)
    assert np.isnan(never["min_eval_after_solve"]) and never["ended_solved"] is False
    assert agg.stability([5000], [100.0], None, None, 100.0)["ended_solved"] is None


def test_summary_reports_stability_over_the_solved_runs(tree):
    runs = agg.load_results(tree).runs
    ppo = runs[runs["algo"] == "ppo"].set_index("seed")
    # make_run's evals climb linearly from 50 to the final score: the first eval at or after
    # steps_to_solve is the minimum after solving
    assert ppo.loc[1, "ended_solved"] and not ppo.loc[5, "ended_solved"]
    table = agg.summarize(runs, reps=500).set_index("algo")
    assert table.loc["ppo", "runs_ended_solved"] == 4
    solved = ppo[ppo["steps_to_solve"].notna()]
    assert table.loc["ppo", "min_eval_after_solve_mean"] == pytest.approx(solved["min_eval_after_solve"].mean())
    assert "| 4/5 | 4/5 |" in agg.summary_markdown(table.reset_index())


def test_corrupt_and_incomplete_runs_are_skipped_and_named(tree, tmp_path):
    bad = {
        "truncated": make_run(tree, "a2c", 1),
        "garbage": make_run(tree, "a2c", 2),
        "interrupted": make_run(tree, "a2c", 3, status="interrupted"),
        "no_episodes": make_run(tree, "a2c", 4),
        "unfinished": make_run(tree, "a2c", 5),
        "nonnumeric": make_run(tree, "a2c", 6),
    }
    text = (bad["truncated"] / "evals.csv").read_text()
    (bad["truncated"] / "evals.csv").write_text(text[: len(text) - 7])  # cut mid-row
    (bad["garbage"] / "summary.json").write_text('{"algo": "a2c", "sta')
    (bad["no_episodes"] / "episodes.csv").unlink()
    (bad["unfinished"] / "summary.json").unlink()
    (bad["nonnumeric"] / "evals.csv").write_text("global_step,train_time_s,mean_return,std_return,episodes\n"
                                                  "5000,1.0,abc,1.0,20\n")
    out = tmp_path / "report"
    proc = run_script("aggregate_results.py", "--results-dir", tree, "--out", out, "--reps", 200)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = (out / "report.md").read_text()
    expected = {
        "a2c/seed_1": "evals.csv is truncated",
        "a2c/seed_2": "summary.json is not valid JSON",
        "a2c/seed_3": "status 'interrupted'",
        "a2c/seed_4": "episodes.csv is missing",
        "a2c/seed_5": "no summary.json",
        "a2c/seed_6": "evals.csv has an empty or non-numeric mean_return at line 2",
    }
    for run, reason in expected.items():
        assert f"skipped CartPole-v1/{run}: {reason}" in proc.stdout
        assert f"`CartPole-v1/{run}`: {reason}" in report
    runs = pd.read_csv(out / "runs.csv")
    assert "a2c" not in set(runs["algo"]) and len(runs) == 7


def test_report_embeds_every_plot_and_links_the_videos(tree, tmp_path):
    videos = tmp_path / "videos"
    clip = videos / "CartPole-v1" / "ppo" / "seed_2" / "episode_0.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"\x00")
    out = tmp_path / "out"
    proc = run_script("aggregate_results.py", "--results-dir", tree, "--out", out,
                      "--videos-dir", videos, "--reps", 200)
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["final_scores_CartPole-v1.png", "learning_curves_CartPole-v1.png",
                    "performance_profile_CartPole-v1.png", "seed_curves_CartPole-v1.png",
                    "steps_to_solve_CartPole-v1.png"]
    for name in pngs:
        assert f"]({name})" in report
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(../videos/CartPole-v1/ppo/seed_2/episode_0.mp4)" in report
    assert "| ppo | 4/5 |" in report.replace("CartPole-v1 ", "").replace("| CartPole-v1", "|")
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["algo"]) == ["policy_gradient", "ppo"]
    assert (out / "summary.md").read_text().count("\n| CartPole-v1 |") == 2


def test_empty_results_dir_exits_2(tmp_path):
    (tmp_path / "results").mkdir()
    proc = run_script("aggregate_results.py", "--results-dir", tmp_path / "results", "--out", tmp_path / "r")
    assert_usage_error(proc, "--results-dir", "holds no runs")
    assert not (tmp_path / "r").exists()


def test_missing_results_dir_exits_2(tmp_path):
    proc = run_script("aggregate_results.py", "--results-dir", tmp_path / "nope", "--out", tmp_path / "r")
    assert_usage_error(proc, "--results-dir", "is not a folder")


def test_results_dir_with_no_loadable_run_exits_2(tmp_path):
    run = make_run(tmp_path / "results", "ppo", 1, status="interrupted")
    proc = run_script("aggregate_results.py", "--results-dir", tmp_path / "results", "--out", tmp_path / "r")
    assert_usage_error(proc, "--results-dir", "none of the 1 run(s)")
    assert "skipped CartPole-v1/ppo/seed_1: status 'interrupted'" in proc.stdout
    assert run.exists() and not (tmp_path / "r").exists()


def test_out_inside_a_file_exits_2(tree, tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_script("aggregate_results.py", "--results-dir", tree, "--out", tmp_path / "a_file" / "report")
    assert_usage_error(proc, "--out", "not a writable folder")


# -- values and folders a summary must not smuggle in -------------------------------------

@pytest.mark.parametrize("key,text,reason", [
    ("final_eval_mean", "NaN", "final_eval_mean=nan, not a finite number"),
    ("final_eval_mean", "Infinity", "final_eval_mean=inf, not a finite number"),
    ("last100_train_return", "-Infinity", "last100_train_return=-inf, not a finite number"),
    ("total_steps", "-5", "total_steps=-5, which cannot be negative"),
    ("train_time_s", "-1.5", "train_time_s=-1.5, which cannot be negative"),
])
def test_non_finite_or_negative_summary_values_skip_the_run(tree, key, text, reason):
    path = tree / "CartPole-v1" / "ppo" / "seed_1" / "summary.json"
    summary = json.loads(path.read_text())
    summary[key] = "PLACEHOLDER"
    path.write_text(json.dumps(summary).replace('"PLACEHOLDER"', text))
    loaded = agg.load_results(tree)
    assert ("CartPole-v1/ppo/seed_1", f"summary.json has {reason}") in loaded.skipped
    assert len(loaded.runs) == 6


def test_deeply_nested_summary_skips_the_run(tree):
    (tree / "CartPole-v1" / "ppo" / "seed_1" / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    loaded = agg.load_results(tree)
    assert loaded.skipped == [("CartPole-v1/ppo/seed_1", "summary.json is nested too deeply to be a summary")]


def test_a_seed_folder_with_leading_zeros_is_not_counted_twice(tree):
    make_run(tree, "ppo", 1).rename(tree / "CartPole-v1" / "ppo" / "seed_01")
    make_run(tree, "ppo", 1)
    loaded = agg.load_results(tree)
    assert len(loaded.runs[(loaded.runs["algo"] == "ppo") & (loaded.runs["seed"] == 1)]) == 1
    assert [label for label, _ in loaded.skipped] == ["CartPole-v1/ppo/seed_01"]


def test_a_folder_name_that_is_not_utf8_is_skipped_and_named(tree):
    bad = Path(os.fsdecode(bytes(tree / "CartPole-v1") + b"/ppo\xff"))  # not UTF-8
    bad.mkdir()
    make_run(tree, "ppo", 9).rename(bad / "seed_9")
    loaded = agg.load_results(tree)
    assert [(label, reason) for label, reason in loaded.skipped] == [
        ("CartPole-v1/ppo\\xff/seed_9", "the folder name is not valid UTF-8")]
    assert len(loaded.runs) == 7


def test_video_links_with_spaces_are_percent_encoded(tree, tmp_path):
    videos = tmp_path / "my videos"
    clip = videos / "CartPole-v1" / "ppo" / "seed_2" / "episode_0.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"\x00")
    link = agg.video_links(videos, tmp_path / "out", "CartPole-v1", "ppo", 2)
    assert link == "[episode 0](../my%20videos/CartPole-v1/ppo/seed_2/episode_0.mp4)"


# -- published references and random scores ------------------------------------------------

def reference(env: str = "CartPole-v1", algo: str = "ppo", mean: float = 200.0, **fields) -> dict:
    """One [[reference]] table as references.toml holds it."""
    entry = {"env": env, "algo": algo, "library": "SB3 rl-zoo", "env_version": env, "mean": mean,
             "std": 10.0, "budget": 100_000, "seeds": 10, "metric": "mean return, 10 greedy episodes",
             "url": "https://example.org/zoo (benchmark)"}
    return entry | fields


def write_references(path: Path, entries: list[dict]) -> Path:
    lines = []
    for entry in entries:
        lines.append("[[reference]]")
        # JSON strings and numbers are TOML; None leaves the field out
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items() if value is not None]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_references_load_and_unusable_tables_are_named(tmp_path):
    path = write_references(tmp_path / "references.toml", [
        reference(), reference(mean="high"), reference(algo="sac"), reference(budget=0),
        {k: v for k, v in reference(note="x", library="CleanRL").items() if k != "std"}])
    refs, note = agg._load_references(path)
    assert [(r["algo"], r["mean"], r["std"]) for r in refs] == [("ppo", 200.0, 10.0), ("ppo", 200.0, None)]
    assert note.startswith(f"{path}: 3 of 5 reference(s) ignored ([[reference]] #2 (CartPole-v1, ppo): "
                           "mean: expected a finite number, got 'high'; [[reference]] #3 (CartPole-v1, sac): "
                           "algo: unknown algorithm 'sac'")
    assert agg._load_references(write_references(tmp_path / "one.toml", [reference()]))[1] is None


@pytest.mark.parametrize("content,fragment", [
    (None, "not found (--references)"),
    ("[[reference]]\nenv = ", "cannot be parsed (--references)"),
    (b"\xff\xfe", "is not UTF-8 text (--references)"),
    ("reference = 3\n", "'reference' is not a list"),
    ("", "holds no [[reference]] tables"),
])
def test_a_references_file_that_cannot_be_used_is_a_note(tmp_path, content, fragment):
    path = tmp_path / "references.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    refs, note = agg._load_references(path)
    assert not refs and fragment in note and "\n" not in note


@pytest.mark.parametrize("content,fragment", [
    (None, "not found (--random-scores)"),
    ("{", "cannot be parsed (--random-scores)"),
    ("[1, 2]", "is not a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "cannot be parsed"),
])
def test_a_random_scores_file_that_cannot_be_used_is_a_note(tmp_path, content, fragment):
    path = tmp_path / "random_scores.json"
    if content is not None:
        path.write_text(content)
    scores, note = agg._load_random_scores(path)
    assert scores is None and fragment in note and "\n" not in note


def test_random_scores_load_and_unusable_envs_are_named(tmp_path):
    path = tmp_path / "random_scores.json"
    path.write_text(json.dumps({"CartPole-v1": {"mean": 22.3, "std": 11.0, "episodes": 1000, "seed": 0,
                                                "command": "python x.py"},
                                "Hopper-v5": {"std": 1.0},
                                "Pendulum-v1": {"mean": -1200, "std": 300.0, "episodes": 10, "seed": 0}}))
    scores, note = agg._load_random_scores(path)
    assert scores["CartPole-v1"]["mean"] == 22.3 and scores["Pendulum-v1"]["mean"] == -1200.0
    assert "Hopper-v5" not in scores
    assert note == f"{path}: 1 of 3 env(s) ignored (entry 'Hopper-v5': missing 'mean')"


def test_verdict_places_a_published_figure_against_our_ci():
    assert [agg.verdict(x, 10.0, 20.0) for x in (9.9, 10.0, 15.0, 20.0, 20.1)] == \
        ["below", "inside", "inside", "inside", "above"]


def test_version_note_spells_out_a_different_env_version():
    assert agg.version_note("HalfCheetah-v5", "HalfCheetah-v5") == "HalfCheetah-v5"
    assert agg.version_note("HalfCheetah-v4", "HalfCheetah-v5") == "HalfCheetah-v4 (v4 vs our v5)"
    assert agg.version_note("HalfCheetahBulletEnv-v0", "HalfCheetah-v5") == \
        "HalfCheetahBulletEnv-v0 (vs our HalfCheetah-v5)"


def test_reference_table_shows_a_dash_where_no_figure_is_published(tree):
    runs = agg.load_results(tree).runs
    table = agg.summarize(runs, reps=500)
    refs = [reference(mean=200.0), reference(mean=454.0, library="CleanRL", env_version="CartPole-v0",
                                             note="v0 caps episodes at 200")]
    rows = agg.reference_rows(table, runs, refs)
    assert list(rows["algo"]) == ["policy_gradient", "ppo", "ppo"]
    assert list(rows["verdict"].fillna("–")) == ["–", "below", "inside"]  # our ppo mean: 454
    text = agg.references_markdown(rows)
    pg = next(line for line in text.splitlines() if line.startswith("| policy_gradient |"))
    assert pg == "| policy_gradient | 2 | 40,000 | 451.5 [451.0, 452.0] |" + " – |" * 8
    assert "| 200.0 ± 10.0 | below | [SB3 rl-zoo](https://example.org/zoo%20%28benchmark%29) |" in text
    assert "| CartPole-v0 (v0 vs our v1) | 100,000 | 10 | mean return, 10 greedy episodes | v0 caps" in text
    # no file at all: every figure is "–" and the note says why
    missing = agg.references_markdown(agg.reference_rows(table, runs, None), "references.toml not found")
    assert missing.count(" – |" * 8) == 2 and missing.endswith("\nNote: references.toml not found.\n")


def test_a_training_return_figure_is_placed_against_our_training_return(tree):
    runs = agg.load_results(tree).runs  # every run's last100_train_return is 100; ppo's final evals mean 454
    table = agg.summarize(runs, reps=500)
    refs = [reference(mean=100.0, library="CleanRL", compare_with="last100_train_return"),
            reference(mean=100.0)]
    rows = agg.reference_rows(table, runs, refs, reps=500)
    ppo = rows[rows["algo"] == "ppo"]
    assert list(ppo["compare_with"]) == ["last100_train_return", "final_eval_mean"]
    assert list(ppo["ours_mean"]) == pytest.approx([100.0, 454.0])
    assert list(ppo["verdict"]) == ["inside", "below"]
    text = agg.references_markdown(ppo)
    assert "| 100.0 [100.0, 100.0] last-100 train return | 100.0 ± 10.0 | inside | [CleanRL]" in text
    assert "| 454.0 [" in text and "| 100.0 ± 10.0 | below | [SB3 rl-zoo]" in text


# -- across environments: normalization, aggregates, the page -----------------------------------

def test_the_reference_score_of_an_env_is_its_best_ppo_figure_else_its_best_figure():
    refs = [reference("A-v0", "ppo", 90.0), reference("A-v0", "trpo", 300.0), reference("A-v0", "ppo", 120.0),
            reference("B-v0", "a2c", 40.0), reference("B-v0", "trpo", 70.0, library="first"),
            reference("B-v0", "trpo", 70.0, library="second")]
    assert agg.reference_score(refs, "A-v0")["mean"] == 120.0  # PPO's, though TRPO's is higher
    assert agg.reference_score(refs, "B-v0")["library"] == "first"  # no PPO: the best, first on a tie
    assert agg.reference_score(refs, "C-v0") is None
    assert agg.reference_score(None, "A-v0") is None


def fake_runs(scores: dict) -> pd.DataFrame:
    """The columns of load_results().runs that the cross-env analysis reads: {(env, algo): [score, ...]}."""
    rows = [{"env_id": env, "algo": algo, "seed": seed, "final_eval_mean": score}
            for (env, algo), values in scores.items() for seed, score in enumerate(values, start=1)]
    return pd.DataFrame(rows)


CROSS_RUNS = {("A-v0", "a2c"): [0.0, 50.0], ("A-v0", "ppo"): [50.0, 100.0, 150.0, 200.0],
              ("B-v0", "a2c"): [-100.0, 0.0, 100.0, 300.0], ("B-v0", "ppo"): [100.0, 100.0],
              ("C-v0", "ppo"): [7.0]}
CROSS_REFS = [reference("A-v0", "ppo", 100.0), reference("B-v0", "trpo", 100.0, env_version="B-v1"),
              reference("B-v0", "a2c", 50.0), reference("C-v0", "ppo", 10.0)]
CROSS_RANDOM = {"A-v0": {"mean": 0.0, "episodes": 100}, "B-v0": {"mean": -100.0}}


def test_normalized_runs_and_the_envs_left_out():
    runs = fake_runs(CROSS_RUNS | {("D-v0", "ppo"): [1.0], ("E-v0", "ppo"): [1.0]})
    refs = CROSS_REFS + [reference("E-v0", "ppo", -5.0)]
    normalized, anchors, excluded = agg.normalize_runs(runs, refs, CROSS_RANDOM | {"E-v0": {"mean": 0.0}})
    assert list(anchors) == ["A-v0", "B-v0"]
    a = normalized[(normalized["env_id"] == "A-v0") & (normalized["algo"] == "ppo")]
    np.testing.assert_allclose(a["normalized_score"], [0.5, 1.0, 1.5, 2.0])
    assert excluded == [("C-v0", "no random score"), ("D-v0", "no random score; no published reference"),
                        ("E-v0", "its reference -5 does not exceed the random score 0")]


def test_cross_env_aggregates_match_hand_computed_values():
    cx = agg.cross_env(fake_runs(CROSS_RUNS), CROSS_REFS, CROSS_RANDOM, reps=500)
    table = cx.aggregates.set_index("algo")
    # ppo on A: .5 1 1.5 2, on B: 1 1 -> sorted .5 | 1 1 1 1.5 | 2
    assert table.loc["ppo", "iqm"] == pytest.approx(1.125)
    assert table.loc["ppo", "optimality_gap"] == pytest.approx(0.5 / 6)
    # a2c on A: 0 .5, on B: 0 .5 1 2 -> sorted 0 | 0 .5 .5 1 | 2
    assert table.loc["a2c", "iqm"] == pytest.approx(0.5)
    assert table.loc["a2c", "optimality_gap"] == pytest.approx(3 / 6)
    assert (table.loc["ppo", "runs"], table.loc["ppo", "envs"]) == (6, 2)  # C-v0 has no random score
    for algo in ("a2c", "ppo"):
        assert table.loc[algo, "iqm_ci_low"] <= table.loc[algo, "iqm"] <= table.loc[algo, "iqm_ci_high"]
    pairs = cx.improvement.set_index(["algo", "versus"])
    # A: ppo beats a2c in 7.5 of 8 pairs; B: in 5 of 8 (1 vs 0, .5, 1, 2 twice)
    assert pairs.loc[("ppo", "a2c"), "point"] == pytest.approx((7.5 / 8 + 5 / 8) / 2)
    assert pairs.loc[("a2c", "ppo"), "point"] == pytest.approx(1 - (7.5 / 8 + 5 / 8) / 2)
    csv = agg.cross_env_table(cx)
    assert list(csv["statistic"]) == ["iqm", "optimality_gap"] * 2 + ["probability_of_improvement"] * 2
    text = agg.cross_env_markdown(cx, reps=500)
    assert text.startswith("## Across environments\n")
    assert "| ppo | 6 | 2/2 | 1.12 [" in text and "| ppo | 0.78 [" in text
    assert "- `C-v0`: no random score" in text
    assert "B-v1 (v1 vs our v0)" in text  # the normalization table names the version the figure is from
    assert "Scores from 2 of the 3 environments with runs (A-v0, B-v0), each" in text
    every = {k: v for k, v in CROSS_RUNS.items() if k[0] != "C-v0"}
    text = agg.cross_env_markdown(agg.cross_env(fake_runs(every), CROSS_REFS, CROSS_RANDOM, reps=200), 200)
    assert "Scores from all 2 environments with runs, each" in text and "Excluded" not in text


def test_cross_env_with_no_usable_input_file_prints_dashes_and_the_notes():
    notes = ["references.toml not found (--references)", None, "random_scores.json not found (--random-scores)"]
    cx = agg.cross_env(fake_runs(CROSS_RUNS), None, None, reps=200, notes=notes)
    assert cx.normalized.empty
    text = agg.cross_env_markdown(cx, reps=200, level=1)
    assert text.startswith("# Across environments\n")
    assert "| a2c | 0 | 0/0 | – | – |" in text and "| ppo | 0 | 0/0 | – | – |" in text
    assert "–: it needs normalized runs of at least two algorithms." in text
    assert "–: no environment has both a random score and a published reference." in text
    assert "- `A-v0`: no random score; no published reference" in text
    assert text.count("\nNote: ") == 2 and "Note: references.toml not found (--references)." in text
    assert agg.cross_env_table(cx)["point"].isna().all()


def test_cross_env_with_one_env_says_so_in_one_line():
    cx = agg.cross_env(fake_runs({("A-v0", "ppo"): [50.0]}), CROSS_REFS, CROSS_RANDOM, reps=200)
    assert not cx.applies and cx.aggregates is None
    assert agg.cross_env_markdown(cx, reps=200) == (
        "## Across environments\n\nOnly one environment has runs (A-v0), so there is nothing to aggregate "
        "across environments.\n")


def test_profile_thresholds_reach_below_zero_for_negative_returns():
    taus = agg.profile_taus([-1500.0, -150.0])
    assert taus[0] == pytest.approx(-1530.0) and taus[-1] == pytest.approx(1.02)
    np.testing.assert_allclose(agg.profile_taus([0.0, 500.0])[[0, -1]], [0.0, 510.0])


def test_report_of_two_envs_opens_with_the_cross_env_section(tmp_path):
    results = tmp_path / "results"
    for seed, final in enumerate([300.0, 400.0, 500.0], start=1):
        make_run(results, "ppo", seed, final)
        make_run(results, "a2c", seed, final - 100.0, None)
        make_run(results, "ppo", seed, -200.0 * seed, None, env_id="Pendulum-v1")
    make_run(results, "trpo", 1, 50.0, None, env_id="Acrobot-v1")  # neither a random score nor a reference
    refs = write_references(tmp_path / "references.toml", [
        reference("CartPole-v1", "ppo", 500.0, env_version="CartPole-v0"),
        reference("Pendulum-v1", "ppo", -200.0, std=None)])
    random = tmp_path / "random_scores.json"
    random.write_text(json.dumps({"CartPole-v1": {"mean": 20.0, "std": 9.0, "episodes": 1000, "seed": 0,
                                                  "command": "python measure.py"},
                                  "Pendulum-v1": {"mean": -1200.0, "std": 300.0, "episodes": 1000, "seed": 0,
                                                  "command": "python measure.py"}}))
    out = tmp_path / "report"
    proc = run_script("aggregate_results.py", "--results-dir", results, "--out", out, "--reps", 200,
                      "--references", refs, "--random-scores", random)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = (out / "report.md").read_text()
    assert report.index("## Across environments") < report.index("## Summary") < report.index("## CartPole-v1")
    assert "Scores from 2 of the 3 environments with runs (CartPole-v1, Pendulum-v1)" in report
    assert "- `Acrobot-v1`: no random score; no published reference" in report
    assert "| trpo | 0 | 0/2 | – | – |" in report  # its only env is left out
    # CartPole only: a2c's 200, 300, 400 against ppo's 300, 400, 500 win 0 + 1/2 + 3/2 of 9 pairs
    assert "| P(row > column) | a2c | ppo |\n" in report and "| a2c | – | 0.22 [" in report
    assert "(1 env) |\n| ppo | 0.78 [" in report
    for name in ("performance_profile_all_envs.png", "final_scores_all_envs.png"):
        assert f"]({name})" in report and (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](final_scores_Pendulum-v1.png)" in report  # each env's own plot is still linked
    assert report.count("### Published references") == 3
    # 3 runs of ppo, 300 400 500: a replicate of three 500s has probability 1/27 > 2.5%, so 500 is inside
    assert "| 500.0 ± 10.0 | inside | [SB3 rl-zoo]" in report and "CartPole-v0 (v0 vs our v1)" in report
    assert "| trpo | 1 | 40,000 | 50.0 [50.0, 50.0] |" + " – |" * 8 in report
    cross = (out / "cross_env.md").read_text()
    assert cross.startswith("# Across environments\n") and "## Probability of improvement" in cross
    table = pd.read_csv(out / "cross_env.csv")
    ppo = table[(table["statistic"] == "iqm") & (table["algo"] == "ppo")].iloc[0]
    # CartPole: (300, 400, 500 - 20) / 480; Pendulum: (-200, -400, -600 + 1200) / 1000: pooled IQM
    pooled = np.r_[np.array([280.0, 380.0, 480.0]) / 480, [1.0, 0.8, 0.6]]
    assert ppo["point"] == pytest.approx(agg.iqm(pooled)) and (ppo["runs"], ppo["envs"]) == (6, 2)
    assert len(pd.read_csv(out / "normalized_scores.csv")) == 9


def test_report_without_reference_files_is_written_with_dashes_and_notes(tmp_path):
    results = tmp_path / "results"
    for env_id in ("CartPole-v1", "Acrobot-v1"):
        make_run(results, "ppo", 1, env_id=env_id)
    out = tmp_path / "report"
    proc = run_script("aggregate_results.py", "--results-dir", results, "--out", out, "--reps", 200,
                      "--references", tmp_path / "nowhere.toml", "--random-scores", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"note: {tmp_path / 'nowhere.toml'} not found (--references)" in proc.stdout
    report = (out / "report.md").read_text()
    assert f"Note: {tmp_path} cannot be read (--random-scores): Is a directory." in report
    assert "| ppo | 0 | 0/0 | – | – |" in report
    assert report.count("| ppo | 1 | 40,000 | 500.0 [500.0, 500.0] |" + " – |" * 8) == 2
    assert not (out / "performance_profile_all_envs.png").exists()
    assert (out / "final_scores_all_envs.png").exists()
    assert pd.read_csv(out / "cross_env.csv")["point"].isna().all()


def test_envs_are_grouped_by_their_suite_in_the_suites_order():
    groups = agg.suite_groups(["Hopper-v5", "Foo-v0", "LunarLander-v3", "Acrobot-v1", "CartPole-v1"])
    # CartPole-v1 is in the one-env cartpole suite too: the larger plain suite (classic) holds it;
    # the composite overnight suite holds everything and is never a group
    assert groups == [("classic", ["CartPole-v1", "Acrobot-v1"]), ("box2d", ["LunarLander-v3"]),
                      ("mujoco", ["Hopper-v5"]), ("other envs", ["Foo-v0"])]
