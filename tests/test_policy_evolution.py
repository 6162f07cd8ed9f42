"""policy_evolution.py: plots of a run's policy sharpening, probe-state probabilities and weights."""
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import policy_evolution as pe
from conftest import assert_usage_error, read_run, run_dir, run_script


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("evolution") / "results"
    proc = run_script("policy_gradient_benchmark.py", "--total-steps", "3000", "--snapshot-every", "500",
                      "--eval-every", "3000", "--eval-episodes", "1", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    return run_dir(results, "policy_gradient")


def test_plots_and_tables_from_a_run_with_snapshots(snapshot_run, tmp_path):
    out = tmp_path / "plots"
    proc = run_script("policy_evolution.py", snapshot_run, "--out", out)
    assert proc.returncode == 0, proc.stderr
    for name in ("policy_sharpening.png", "probe_probabilities.png", "weights.png"):
        assert (out / name).stat().st_size > 5_000, name

    updates = read_run(snapshot_run)["updates"]["global_step"].to_numpy()
    snap_steps = sorted(int(p.stem.removeprefix("step_")) for p in (snapshot_run / "snapshots").glob("*.pt"))
    # snapshots at the first update boundary at or after each multiple of 500
    assert snap_steps == sorted({int(updates[updates >= k].min()) for k in range(500, updates[-1] + 1, 500)})

    probes = pd.read_csv(out / "probe_probabilities.csv")
    n_probes = len(pe.CARTPOLE_PROBES) + 3
    assert len(probes) == len(snap_steps) * n_probes
    np.testing.assert_allclose(probes[["p_0", "p_1"]].sum(axis=1), 1.0, rtol=1e-6)

    weights = pd.read_csv(out / "weights.csv")
    assert sorted(weights["global_step"].unique()) == snap_steps
    assert weights["layer"].nunique() == 3  # the 4-64-64-2 MLP
    # every update after the first snapshot falls in exactly one interval
    per_interval = weights.drop_duplicates("global_step")["updates_between"].dropna()
    assert per_interval.sum() == ((updates > snap_steps[0]) & (updates <= snap_steps[-1])).sum()


def test_a_run_without_snapshots_gets_the_sharpening_plot_and_a_note(snapshot_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(snapshot_run, copy)
    shutil.rmtree(copy / "snapshots")  # as a run trained without --snapshot-every
    proc = run_script("policy_evolution.py", copy, "--out", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    assert "--snapshot-every" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["policy_sharpening.png"]


def test_missing_greedy_action_prob_plots_entropy_only_and_says_so(snapshot_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(snapshot_run, copy)
    updates = pd.read_csv(copy / "updates.csv").drop(columns="greedy_action_prob")
    updates.to_csv(copy / "updates.csv", index=False)
    proc = run_script("policy_evolution.py", copy, "--out", tmp_path / "plots")
    assert proc.returncode == 0, proc.stderr
    assert "greedy_action_prob" in proc.stdout and "entropy only" in proc.stdout


def test_weight_evolution_by_hand():
    first, second = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[3.0, 0.0]]))
        first.bias.fill_(4.0)
        second.weight.copy_(torch.tensor([[3.0, 2.0]]))
        second.bias.fill_(4.0)
    table = pe.weight_evolution([(100, torch.nn.Sequential(first)), (200, torch.nn.Sequential(second))],
                                update_steps=[50, 100, 150, 200, 250])
    assert list(table["layer"]) == ["0 (2->1)", "0 (2->1)"]
    assert list(table["norm"]) == pytest.approx([5.0, np.sqrt(29.0)])
    assert table["update_norm"].iloc[1] == pytest.approx(2.0)
    assert table["updates_between"].iloc[1] == 2  # the updates at 150 and 200
    assert table["update_norm_per_update"].iloc[1] == pytest.approx(1.0)


def test_default_probe_snapshots_are_first_log_middle_last():
    snaps = [(s, None) for s in (1_000, 2_000, 5_000, 10_000, 30_000, 100_000)]
    assert [s for s, _ in pe.pick_snapshots(snaps)] == [1_000, 10_000, 100_000]
    assert [s for s, _ in pe.pick_snapshots(snaps, [0, 4_000])] == [1_000, 5_000]


def test_missing_run_folder_is_a_usage_error(tmp_path):
    proc = run_script("policy_evolution.py", tmp_path / "nowhere")
    assert_usage_error(proc, "RUN_DIR", "config.json")


def test_corrupt_config_is_a_usage_error_and_writes_nothing(snapshot_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(snapshot_run, copy)
    (copy / "config.json").write_text("{not json")
    proc = run_script("policy_evolution.py", copy, "--out", tmp_path / "plots")
    assert_usage_error(proc, "RUN_DIR", "config.json")
    assert not (tmp_path / "plots").exists()
