"""Every bad input an adversarial pass found, as one table: exit status, one line, no traceback.

Each row builds what it needs in tmp_path (a hand-written run folder, a held
lock, a file where a folder should be) and runs an entry point as a user
would. No row trains: each is refused before training starts. The rows that
interrupt (Ctrl-C) run in this process, with the interrupt raised from the
step it would land in, so they do not depend on timing.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

import aggregate_results
import policy_gradient
import run_all_comparison
from conftest import ROOT, run_dir, run_script
from rlsuite import runner

PG = "policy_gradient_benchmark.py"


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def completed_run(results: Path, algo: str = "policy_gradient", seed: int = 1, **config) -> Path:
    """A run folder as a completed run leaves it: config.json, summary.json, model.pt, CSVs."""
    path = run_dir(results, algo, seed)
    path.mkdir(parents=True, exist_ok=True)
    cfg = policy_gradient.PolicyGradientConfig()
    saved = {"algo": algo, "env_id": "CartPole-v1", "seed": seed, "obs_dim": 4, "n_actions": 2,
             "hyperparameters": {"hidden_sizes": list(cfg.hidden_sizes), "total_steps": cfg.total_steps}}
    saved.update(config)
    (path / "config.json").write_text(json.dumps(saved))
    torch.save(policy_gradient.build_actor(4, 2, cfg).state_dict(), path / "model.pt")
    (path / "summary.json").write_text(json.dumps({"algo": algo, "env_id": "CartPole-v1", "seed": seed,
                                                    "status": "completed"}))
    (path / "episodes.csv").write_text("global_step,train_time_s,episode,return,length\n10,0.1,1,10.0,10\n")
    (path / "updates.csv").write_text("update,global_step,entropy\n1,10,0.69\n2,20,0.68\n")
    return path


def with_weird_envs(script: str, *args) -> list[str]:
    """Run ``script`` in a Python that has registered tests/weird_envs.py's ids first."""
    code = (f"import sys, runpy; sys.path[:0] = [{str(ROOT / 'tests')!r}, {str(ROOT)!r}]; "
            f"import weird_envs; sys.argv = [{script!r}, *sys.argv[1:]]; "
            f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')")
    return ["-c", code, *map(str, args)]


# -- the rows: name -> setup(tmp_path) returning (argv, expected exit, check or None) ---------

def _runner(script, *args):
    def setup(tmp):
        return [script, *args, "--results-dir", tmp / "r"], 2, lambda: not (tmp / "r").exists()
    return setup


def _threads_over_a_completed_run(tmp):
    path = completed_run(tmp / "r")
    before = digest(path)
    return ([PG, "--results-dir", tmp / "r", "--overwrite", "--threads", "10000000000000000000000"], 2,
            lambda: digest(path) == before)


def _locked_run_folder(tmp):
    path = run_dir(tmp / "r", "policy_gradient")
    path.mkdir(parents=True)
    (path / "episodes.csv").write_text("in progress\n")
    fd = os.open(path / runner.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer, alive; released when this test's fd closes
    _locked_run_folder.fds.append(fd)
    return ([PG, "--results-dir", tmp / "r", "--total-steps", 1000], 2,
            lambda: (path / "episodes.csv").read_text() == "in progress\n")


_locked_run_folder.fds = []


def _unwritable_per_run_video_folder(tmp):
    blocker = tmp / "videos" / "CartPole-v1" / "policy_gradient" / "seed_1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the run's video folder goes")
    return ([PG, "--results-dir", tmp / "r", "--record-video", "--video-dir", tmp / "videos"], 2,
            lambda: not (tmp / "r").exists())


def _evaluate(**config):
    def setup(tmp):
        path = completed_run(tmp / "r", **config)
        before = digest(path)
        return [PG, "--evaluate", path], 2, lambda: digest(path) == before
    return setup


def _evaluate_model_is_a_folder(tmp):
    path = completed_run(tmp / "r")
    (path / "model.pt").unlink()
    (path / "model.pt").mkdir()
    return [PG, "--evaluate", path], 2, None


def _evaluate_env_that_cannot_be_made(tmp):
    path = completed_run(tmp / "r", env_id="NeedsMissingLibrary-v0")
    return with_weird_envs(PG, "--evaluate", path), 2, None


def _weird_env(env_id):
    def setup(tmp):
        argv = with_weird_envs(PG, "--env", env_id, "--results-dir", tmp / "r")
        return argv, 2, lambda: not (tmp / "r").exists()
    return setup


def _orchestrate(*args, expected=2):
    def setup(tmp):
        return (["run_all_comparison.py", "--results-dir", tmp / "r", "--dry-run", *args], expected,
                lambda: not (tmp / "r").exists() or expected == 0)
    return setup


def _orchestrate_over_deeply_nested_summary(tmp):
    path = run_dir(tmp / "r", "ppo")
    path.mkdir(parents=True)
    (path / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    return ["run_all_comparison.py", "--results-dir", tmp / "r", "--algos", "ppo", "--seeds", "1",
            "--dry-run"], 0, None


def _aggregate(*args):
    def setup(tmp):
        completed_run(tmp / "r")
        return ["aggregate_results.py", "--results-dir", tmp / "r", "--out", tmp / "out", *args], 2, \
            lambda: not (tmp / "out").exists()
    return setup


def _policy_evolution(mutate):
    def setup(tmp):
        path = completed_run(tmp / "r")
        config = json.loads((path / "config.json").read_text())
        mutate(path, config)
        (path / "config.json").write_text(json.dumps(config))
        return ["policy_evolution.py", path, "--out", tmp / "plots"], 2, lambda: not (tmp / "plots").exists()
    return setup


def _empty_entropy(path, config):
    (path / "updates.csv").write_text("update,global_step,entropy\n1,10,\n2,20,\n")


def _set(key, value):
    return lambda path, config: config.__setitem__(key, value)


ROWS = {
    # 1: a second writer on a run folder
    "locked run folder": _locked_run_folder,
    # 3: validation before the old run is deleted; counts bounded by the machine
    "--threads 10**22 with --overwrite": _threads_over_a_completed_run,
    "--num-envs 5000": _runner("ppo_benchmark.py", "--num-envs", 5000),
    "--num-workers 10000": _runner("a3c_benchmark.py", "--num-workers", 10000),
    "--hidden-sizes 70000": _runner("ppo_benchmark.py", "--hidden-sizes", "64,70000"),
    "--episodes-per-update 10**6": _runner(PG, "--episodes-per-update", 10**6),
    "--eval-episodes 10**8": _runner(PG, "--eval-episodes", 10**8),
    "--log-std-init 3": _runner("ppo_benchmark.py", "--log-std-init", 3),
    "--sde-sample-freq -1": _runner("ppo_benchmark.py", "--sde-sample-freq", -1),
    "--use-sde on Discrete actions": _runner("a2c_benchmark.py", "--env", "CartPole-v1", "--use-sde"),
    # 4: the per-run video folder, not just the root
    "unwritable per-run video folder": _unwritable_per_run_video_folder,
    # 6 and 11: --evaluate with a config.json this machine cannot honour
    "--evaluate unknown env id": _evaluate(env_id="NoSuchEnv-v0"),
    "--evaluate env that cannot be made": _evaluate_env_that_cannot_be_made,
    "--evaluate wrong-typed field": _evaluate(hyperparameters={"hidden_sizes": "64,64"}),
    "--evaluate huge layer": _evaluate(hyperparameters={"hidden_sizes": [10**9]}),
    "--evaluate null hyperparameters": _evaluate(hyperparameters=None),
    "--evaluate observation shape differs": _evaluate(obs_dim=8),
    "--evaluate negative seed": _evaluate(seed=-1),
    "--evaluate model.pt is a folder": _evaluate_model_is_a_folder,
    "Discrete(2, start=1) actions": _weird_env("ActionsFromOne-v0"),
    "Box(0,) observations": _weird_env("NoObservation-v0"),
    # 7 and section 1: --set checked up front, under --dry-run too
    "--set a3c.num_workers=0": _orchestrate("--set", "a3c.num_workers=0"),
    "--set a3c.num_workers=abc": _orchestrate("--set", "a3c.num_workers=abc"),
    "--set ppo.seed=5": _orchestrate("--set", "ppo.seed=5"),
    "--set ppo.evaluate=x": _orchestrate("--set", "ppo.evaluate=x"),
    "--set ppo.minibatch_size too big": _orchestrate("--set", "ppo.minibatch_size=100000"),
    "orchestrator --threads 10**6": _orchestrate("--threads", 10**6),
    "orchestrator deeply nested summary": _orchestrate_over_deeply_nested_summary,
    # 8: the aggregator's --reps
    "--reps 1..3": _aggregate("--reps", "1..3"),
    "--reps 1e12": _aggregate("--reps", "1e12"),
    "--reps 10**12": _aggregate("--reps", 10**12),
    "--reps 3": _aggregate("--reps", 3),
    # 10: policy_evolution.py on configs it cannot use
    "policy_evolution null hyperparameters": _policy_evolution(_set("hyperparameters", None)),
    "policy_evolution unmakeable env": _policy_evolution(_set("env_id", "NoSuchEnv-v0")),
    "policy_evolution string n_actions": _policy_evolution(_set("n_actions", "2")),
    "policy_evolution empty entropy column": _policy_evolution(_empty_entropy),
    # 12: Python's int() reads 1_0 as 10
    "runner --seed 1_0": _runner(PG, "--seed", "1_0"),
    "runner --total-steps 1_000": _runner(PG, "--total-steps", "1_000"),
    "orchestrator --seeds 1_0": _orchestrate("--seeds", "1_0"),
    "orchestrator --jobs 1_0": _orchestrate("--jobs", "1_0"),
    "--set ppo.num_envs=1_0": _orchestrate("--set", "ppo.num_envs=1_0"),
    "policy_evolution --probe-seed 1_0": lambda tmp: (["policy_evolution.py", completed_run(tmp / "r"),
                                                       "--probe-seed", "1_0"], 2, None),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_is_refused_with_one_line(tmp_path, name):
    argv, expected, check = ROWS[name](tmp_path)
    if argv[0] == "-c":
        import subprocess

        proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
    else:
        proc = run_script(argv[0], *argv[1:], cwd=tmp_path)
    for fd in _locked_run_folder.fds:
        os.close(fd)
    _locked_run_folder.fds.clear()
    assert proc.returncode == expected, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    if expected != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
    if check is not None:
        assert check(), "something on disk changed"


# -- Ctrl-C outside training: one line, exit 130 -------------------------------------------

def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _ctrl_c_in_evaluate(tmp, monkeypatch):
    path = completed_run(tmp / "r")
    monkeypatch.setattr(runner, "evaluate_policy", _interrupt)
    return lambda: runner.main("policy_gradient", policy_gradient.PolicyGradientConfig, policy_gradient.train,
                               argv=["--evaluate", str(path)])


def _ctrl_c_while_planning(tmp, monkeypatch):
    monkeypatch.setattr(run_all_comparison, "suite_plan", _interrupt)
    return lambda: run_all_comparison.main(["--results-dir", str(tmp / "r"), "--dry-run"])


def _ctrl_c_while_listing_runs(tmp, monkeypatch):
    monkeypatch.setattr(run_all_comparison, "run_budget", _interrupt)
    return lambda: run_all_comparison.main(["--results-dir", str(tmp / "r"), "--dry-run"])


def _ctrl_c_while_aggregating(tmp, monkeypatch):
    completed_run(tmp / "r")
    monkeypatch.setattr(aggregate_results, "load_results", _interrupt)
    return lambda: aggregate_results.main(["--results-dir", str(tmp / "r"), "--out", str(tmp / "out")])


@pytest.mark.parametrize("setup", [_ctrl_c_in_evaluate, _ctrl_c_while_planning, _ctrl_c_while_listing_runs,
                                   _ctrl_c_while_aggregating],
                         ids=["--evaluate", "orchestrator planning", "orchestrator listing runs", "aggregation"])
def test_ctrl_c_outside_training_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys, setup):
    entry = setup(tmp_path, monkeypatch)
    assert entry() == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([line for line in err.splitlines() if line.strip()]) == 1, err
