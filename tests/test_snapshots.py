"""--snapshot-every: actor weights saved at the first update boundary after each multiple of N."""
import pandas as pd
import torch

import policy_gradient
from conftest import assert_usage_error, read_run, run_dir, run_script


def test_snapshots_follow_the_eval_schedule_and_leave_training_unchanged(results, tmp_path):
    tiny = ["--total-steps", "3000", "--eval-every", "1000", "--eval-episodes", "2", "--seed", "3"]
    with_snaps = run_script("policy_gradient_benchmark.py", *tiny, "--snapshot-every", "1000",
                            "--results-dir", results)
    assert with_snaps.returncode == 0, with_snaps.stderr
    plain_results = tmp_path / "plain"
    plain = run_script("policy_gradient_benchmark.py", *tiny, "--results-dir", plain_results)
    assert plain.returncode == 0, plain.stderr

    path = run_dir(results, "policy_gradient", 3)
    steps = read_run(path)["updates"]["global_step"].to_numpy()
    # the first update boundary at or after 1000, 2000, 3000 (the budget ends on the last one)
    expected = sorted({int(steps[steps >= k].min()) for k in (1000, 2000, 3000)})
    saved = sorted(int(p.stem.removeprefix("step_")) for p in (path / "snapshots").glob("step_*.pt"))
    assert saved == expected
    assert not list((path / "snapshots").glob("*.tmp"))
    assert read_run(path)["config"]["protocol"]["snapshot_every"] == 1000

    # a snapshot is a loadable actor state_dict
    cfg = policy_gradient.PolicyGradientConfig()
    actor = policy_gradient.build_actor(4, 2, cfg)
    actor.load_state_dict(torch.load(path / "snapshots" / f"step_{saved[-1]}.pt", weights_only=True))
    final = torch.load(path / "model.pt", weights_only=True)
    assert all(torch.equal(final[k], v) for k, v in actor.state_dict().items())

    # saving snapshots consumes no randomness: the same episodes with and without
    plain_path = run_dir(plain_results, "policy_gradient", 3)
    assert not (plain_path / "snapshots").exists()
    a = pd.read_csv(path / "episodes.csv").drop(columns="train_time_s")
    b = pd.read_csv(plain_path / "episodes.csv").drop(columns="train_time_s")
    pd.testing.assert_frame_equal(a, b)


def test_overwrite_removes_the_previous_runs_snapshots(results):
    args = ["--total-steps", "600", "--eval-every", "600", "--eval-episodes", "1", "--results-dir", results]
    assert run_script("policy_gradient_benchmark.py", *args, "--snapshot-every", "200").returncode == 0
    path = run_dir(results, "policy_gradient")
    assert list((path / "snapshots").glob("step_*.pt"))
    assert run_script("policy_gradient_benchmark.py", *args, "--overwrite").returncode == 0
    assert not (path / "snapshots").exists()


def test_negative_snapshot_every_is_a_usage_error(results):
    proc = run_script("policy_gradient_benchmark.py", "--snapshot-every", "-5", "--results-dir", results)
    assert_usage_error(proc, "--snapshot-every", "0 (off)")
    assert not results.exists()
