"""The shared runner, exercised through policy_gradient_benchmark.py as a user would."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import policy_gradient
from conftest import ROOT, assert_usage_error, read_run, run_dir, run_script
from rlsuite.records import EPISODE_COLUMNS, EVAL_COLUMNS, SUMMARY_KEYS, UPDATE_COLUMNS

RUNNER = "policy_gradient_benchmark.py"
TINY = ("--total-steps", 2000, "--eval-every", 1000, "--eval-episodes", 2)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("finished") / "results"
    proc = run_script(RUNNER, *TINY, "--results-dir", results, "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    return run_dir(results, "policy_gradient", 3), proc


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_run_writes_every_protocol_file_with_fixed_columns(finished_run):
    path, _ = finished_run
    run = read_run(path)
    assert list(run["episodes"].columns) == EPISODE_COLUMNS
    assert list(run["updates"].columns) == UPDATE_COLUMNS + policy_gradient.UPDATE_COLUMNS
    assert list(run["evals"].columns) == EVAL_COLUMNS
    assert list(run["summary"]) == SUMMARY_KEYS
    assert run["summary"]["status"] == "completed" and run["summary"]["final_eval_episodes"] == 100
    assert (path / "model.pt").is_file()
    assert run["config"]["hyperparameters"]["total_steps"] == 2000
    assert {"torch", "gymnasium", "numpy"} <= set(run["config"]["versions"])


def test_global_step_counts_transitions_and_evals_follow_the_schedule(finished_run):
    run = read_run(finished_run[0])
    episodes, evals = run["episodes"], run["evals"]
    assert episodes["global_step"].iloc[-1] == episodes["length"].sum() == run["summary"]["total_steps"]
    # first update boundary after each multiple of --eval-every (1000)
    assert (evals["global_step"] >= 1000).all() and evals["global_step"].is_monotonic_increasing
    assert (evals["global_step"] // 1000).is_unique
    assert (evals["episodes"] == 2).all()


def test_end_summary_is_short_and_names_the_files(finished_run):
    path, proc = finished_run
    assert "final eval (100 greedy episodes)" in proc.stdout
    assert str(path) in proc.stdout
    assert len(proc.stdout.splitlines()) <= 6


def test_help_lists_every_flag_with_its_default():
    proc = run_script(RUNNER, "--help")
    assert proc.returncode == 0
    for flag in ("--env", "--seed", "--total-steps", "--results-dir", "--eval-every", "--eval-episodes",
                 "--record-video", "--video-episodes", "--video-dir", "--threads", "--stop-when-solved",
                 "--solve-threshold", "--overwrite", "--evaluate", "--learning-rate", "--gamma",
                 "--estimator", "--episodes-per-update", "--ent-coef", "--max-grad-norm"):
        assert flag in proc.stdout, flag
    text = " ".join(proc.stdout.split())
    assert "(default: 150000)" in text and "(default: CartPole-v1)" in text and "(default: 0.002)" in text


@pytest.mark.parametrize("args,fragments", [
    (("--env", "CartPol-v1"), ("--env", "did you mean CartPole-v1")),
    (("--env", "CarRacing-v3"), ("--env", "flat Box observation space")),
    (("--obs-clip", "0"), ("--obs-clip", "> 0")),
    (("--total-steps", "0"), ("--total-steps", "positive")),
    (("--total-steps", "-5"), ("--total-steps", "positive")),
    (("--learning-rate", "0"), ("--learning-rate", "> 0")),
    (("--learning-rate", "-1e-3"), ("--learning-rate", "> 0")),
    (("--gamma", "1.5"), ("--gamma", "[0, 1]")),
    (("--gamma", "-0.1"), ("--gamma", "[0, 1]")),
    (("--episodes-per-update", "0"), ("--episodes-per-update", "positive")),
    (("--seed", "abc"), ("--seed", "integer")),
    (("--seed", "1.5"), ("--seed", "integer")),
    (("--learning-rate", "fast"), ("--learning-rate", "number")),
    (("--eval-every", "0"), ("--eval-every", "positive")),
    (("--no-such-flag",), ("unrecognized arguments",)),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(results, args, fragments):
    proc = run_script(RUNNER, *args, "--results-dir", results)
    assert_usage_error(proc, *fragments)
    assert not results.exists()


def test_unwritable_results_dir_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_script(RUNNER, "--results-dir", blocker / "results")
    assert_usage_error(proc, "--results-dir", "not a folder")
    assert blocker.read_text() == "not a folder"


def test_completed_run_is_never_overwritten_silently(finished_run):
    path, _ = finished_run
    before = digest(path)
    proc = run_script(RUNNER, *TINY, "--results-dir", path.parents[2], "--seed", 3)
    assert_usage_error(proc, "--overwrite", "completed")
    assert digest(path) == before


def test_overwrite_replaces_a_completed_run(tmp_path):
    args = (*TINY, "--results-dir", tmp_path, "--seed", 2)
    assert run_script(RUNNER, *args).returncode == 0
    proc = run_script(RUNNER, *args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert read_run(run_dir(tmp_path, "policy_gradient", 2))["summary"]["status"] == "completed"


def test_interrupted_run_is_replaced_without_overwrite(tmp_path):
    path = run_dir(tmp_path, "policy_gradient", 2)
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    (path / "episodes.csv").write_text("stale")
    proc = run_script(RUNNER, *TINY, "--results-dir", tmp_path, "--seed", 2)
    assert proc.returncode == 0, proc.stderr
    assert read_run(path)["summary"]["status"] == "completed"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_ends_the_run_with_rows_flushed_and_status_interrupted(tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / RUNNER), "--total-steps", "10000000", "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    episodes = run_dir(tmp_path, "policy_gradient") / "episodes.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if episodes.exists() and len(episodes.read_text().splitlines()) > 20:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    run = read_run(run_dir(tmp_path, "policy_gradient"))
    assert run["summary"]["status"] == "interrupted"
    assert len(run["episodes"]) >= 20
    assert run["episodes"]["length"].notna().all()
    assert run["summary"]["total_steps"] >= run["episodes"]["global_step"].iloc[-1]


def test_a_runner_whose_starting_process_is_already_gone_stops_before_writing(tmp_path):
    """The orchestrator names itself in RLSUITE_PARENT_PID; a runner that finds another parent
    (the orchestrator died before the runner started) stops at once, as on SIGTERM."""
    env = dict(os.environ, RLSUITE_PARENT_PID=str(os.getpid() + 10**6))
    proc = subprocess.run([sys.executable, str(ROOT / RUNNER), "--results-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_a_runner_started_by_hand_does_not_ask_for_a_parent_death_signal(monkeypatch, tmp_path):
    from rlsuite.processes import PARENT_PID_VAR, start_runner, stop_with_parent

    monkeypatch.delenv(PARENT_PID_VAR, raising=False)
    assert stop_with_parent() is False
    with open(tmp_path / "log", "w") as log:  # what the orchestrator starts is told who started it
        start_runner([sys.executable, "-c", f"import os; print(os.environ['{PARENT_PID_VAR}'])"], log, ROOT).wait()
    assert (tmp_path / "log").read_text().strip() == str(os.getpid())


def test_evaluate_reports_the_final_eval_and_changes_nothing(finished_run, tmp_path):
    path, _ = finished_run
    before = digest(path)
    proc = run_script(RUNNER, "--evaluate", path, "--record-video", "--video-episodes", 1,
                      "--video-dir", tmp_path / "videos")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((path / "summary.json").read_text())
    assert f"{summary['final_eval_mean']:.1f}" in proc.stdout
    assert digest(path) == before
    video = tmp_path / "videos" / "CartPole-v1" / "policy_gradient" / "seed_3" / "episode_0.mp4"
    assert video.stat().st_size > 1000


def test_an_evaluation_episode_depends_on_its_seed_only_not_on_earlier_episodes():
    # BipedalWalker-v3 keeps its Box2D world across resets: in an env that has
    # already played seeds 100 and 101, seed 3 under these actions ends on another
    # return (-91.99 against -92.07 fresh, gymnasium 1.4.0). Evaluations must not see that.
    from rlsuite.envs import make_env, run_episodes
    from rlsuite.evaluation import evaluate_policy

    def stand_still(obs):
        return np.zeros((len(obs), 4))

    fresh = evaluate_policy("BipedalWalker-v3", stand_still, [3])
    for seed in (100, 101):
        evaluate_policy("BipedalWalker-v3", stand_still, [seed])
    after_others = evaluate_policy("BipedalWalker-v3", stand_still, [100, 3])
    assert after_others[1] == fresh[0]
    # the effect the evaluation avoids, so this test keeps guarding something
    env = make_env("BipedalWalker-v3")
    reused = [run_episodes([env], stand_still, [seed])[0]["rewards"].sum() for seed in (100, 101, 3)]
    assert reused[2] != fresh[0]


def test_evaluate_a_missing_run_dir_is_a_usage_error(tmp_path):
    assert_usage_error(run_script(RUNNER, "--evaluate", tmp_path / "nope"), "--evaluate", "config.json")


def test_load_policy_returns_greedy_actions_for_a_batch(finished_run):
    act = policy_gradient.load_policy(finished_run[0])
    actions = act(np.zeros((5, 4), dtype=np.float32))
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1}


@pytest.mark.slow
def test_record_video_writes_mp4_files_after_training(tmp_path):
    proc = run_script(RUNNER, *TINY, "--results-dir", tmp_path / "r", "--record-video",
                      "--video-episodes", 2, "--video-dir", tmp_path / "v")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "v" / "CartPole-v1" / "policy_gradient" / "seed_1"
    videos = sorted(folder.glob("episode_*.mp4"))
    assert [v.name for v in videos] == ["episode_0.mp4", "episode_1.mp4"]
    assert all(v.read_bytes()[4:8] == b"ftyp" for v in videos)  # an MP4 container


def test_train_time_excludes_evaluation(tmp_path):
    proc = run_script(RUNNER, "--total-steps", 3000, "--eval-every", 500, "--eval-episodes", 50,
                      "--results-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = read_run(run_dir(tmp_path, "policy_gradient"))
    evals = pd.DataFrame(run["evals"])
    assert len(evals) >= 4
    assert run["summary"]["train_time_s"] >= evals["train_time_s"].iloc[-1]


def test_train_time_stops_when_training_ends(tmp_path, monkeypatch):
    """The final evaluation, the model save and video come after training: summary.json's
    train_time_s leaves them out (a 1 s pause is slipped into the final evaluation here)."""
    from rlsuite import runner

    seeds = runner.final_eval_seeds

    def slow_final_eval_seeds(*args, **kwargs):
        time.sleep(1.0)
        return seeds(*args, **kwargs)

    marks = {}

    def timed_train(cfg, run):
        marks["start"] = time.perf_counter()
        return policy_gradient.train(cfg, run)

    monkeypatch.setattr(runner, "final_eval_seeds", slow_final_eval_seeds)
    argv = ["--total-steps", "500", "--eval-every", "100000", "--results-dir", str(tmp_path), "--no-progress"]
    assert runner.main("policy_gradient", policy_gradient.PolicyGradientConfig, timed_train,
                       update_columns=policy_gradient.UPDATE_COLUMNS, argv=argv) == 0
    after_start = time.perf_counter() - marks["start"]  # training, the final eval and saving
    summary = read_run(run_dir(tmp_path, "policy_gradient"))["summary"]
    assert 0 < summary["train_time_s"] <= after_start - 1.0


def test_repeated_sigterm_during_shutdown_still_exits_130(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / RUNNER), "--total-steps", "10000000", "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    episodes = run_dir(tmp_path, "policy_gradient") / "episodes.csv"
    deadline = time.time() + 60
    while time.time() < deadline and not (episodes.exists() and len(episodes.read_text().splitlines()) > 5):
        time.sleep(0.2)
    for _ in range(20):  # a supervisor that keeps signalling until the process is gone
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.03)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert read_run(run_dir(tmp_path, "policy_gradient"))["summary"]["status"] == "interrupted"


def test_record_video_replaces_old_videos_and_leaves_no_partial_file(tmp_path, monkeypatch):
    import imageio.v2 as imageio

    from rlsuite.evaluation import record_video

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "episode_5.mp4").write_bytes(b"an earlier run's video")
    act = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    assert [p.name for p in record_video("CartPole-v1", act, [1], folder)] == ["episode_0.mp4"]
    assert sorted(p.name for p in folder.iterdir()) == ["episode_0.mp4"]

    def interrupted_write(path, frames, **kwargs):
        Path(path).write_bytes(b"\x00" * 48)  # what an interrupted encoder leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(imageio, "mimwrite", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        record_video("CartPole-v1", act, [1, 2], folder)
    assert list(folder.iterdir()) == []
