"""tune.py: search spaces, a tiny study that is interrupted and resumed, bad input."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from conftest import ROOT
from rlsuite import algorithms

optuna = pytest.importorskip("optuna", reason="pip install -r requirements-tune.txt")
import tune  # noqa: E402

TINY = ["--total-steps", "1024", "--eval-every", "256", "--eval-episodes", "2"]


@pytest.mark.parametrize("algo", algorithms.NAMES)
def test_every_algorithm_declares_a_search_space_the_runner_accepts(algo):
    space = tune.search_space(algo)  # raises UsageError on a bad field or value
    assert space and all(spec[0] in tune.SPACE_KINDS for spec in space.values())


def test_evals_are_read_only_when_their_row_is_complete(tmp_path):
    path = tmp_path / "evals.csv"
    path.write_text("global_step,train_time_s,mean_return,std_return,episodes\n256,0.1,20.0,1.0,2\n512,0.2,3")
    assert tune.read_new_evals(path, 0) == [(256, 20.0)]
    path.write_text(path.read_text() + "0.0,1.0,2\n")
    assert tune.read_new_evals(path, 1) == [(512, 30.0)]


@pytest.mark.slow
def test_a_pruned_trial_stops_its_runner_with_sigterm(tmp_path):
    """The pruner says stop at the first evaluation: the runner ends as 'interrupted', TrialPruned."""

    class PruneAtOnce(optuna.trial.FixedTrial):
        def should_prune(self):
            return True

    space = tune.search_space("ppo")
    trial = PruneAtOnce({name: (spec[1][0] if spec[0] == "choice" else spec[1]) for name, spec in space.items()})
    cfg = {"algo": "ppo", "env_id": "CartPole-v1", "seed": 1, "seeds": 1, "study_dir": tmp_path,
           "passed": ["--total-steps", "200000", "--eval-every", "256", "--eval-episodes", "2"]}
    started = time.monotonic()
    with pytest.raises(optuna.TrialPruned, match="at evaluation 1"):
        tune.run_trial(trial, cfg, space, optuna)
    assert time.monotonic() - started < 60, "the runner should not train its 200,000 steps"
    summary = (tmp_path / "trial_0" / "CartPole-v1" / "ppo" / "seed_1" / "summary.json").read_text()
    assert '"status": "interrupted"' in summary


@pytest.mark.slow
def test_tiny_study_completes_resumes_after_an_interrupt_and_prints_a_preset(tmp_path):
    """3 trials of PPO on CartPole-v1, 1,024 steps each; SIGTERM during trial 1, then the same command."""
    cmd = [sys.executable, str(ROOT / "tune.py"), "ppo", "--env", "CartPole-v1", "--trials", "3",
           "--results-dir", str(tmp_path / "results"), *TINY]
    study_dir = tmp_path / "results" / "tuning" / "ppo-CartPole-v1"
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (study_dir / "trial_1").is_dir():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.1)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert "run the same command to continue" in err and "Traceback" not in err
    assert "trial 0: complete" in out

    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 of 3 trial(s) done" in again.stdout
    # numbering continues after the interrupted trial 1, which is failed, not redone under its number
    assert "trial 2: complete" in again.stdout and "trial 3: complete" in again.stdout
    assert "trial 1:" not in again.stdout

    study = optuna.load_study(study_name="ppo-CartPole-v1",
                              storage=f"sqlite:///{tmp_path / 'results' / 'tuning' / 'ppo-CartPole-v1.db'}")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert states[1] == optuna.trial.TrialState.FAIL
    assert (study_dir / "trial_3" / "CartPole-v1" / "ppo" / "seed_1" / "summary.json").is_file()

    preset = again.stdout.split("best trial as a preset entry:", 1)[1]
    entry = tomllib.loads(preset)["ppo"]["CartPole-v1"]
    assert entry["source"].startswith("optuna study ppo-CartPole-v1")
    assert set(entry) - {"source", "total_steps"} == set(tune.search_space("ppo"))
    assert entry["learning_rate"] == study.best_trial.params["learning_rate"]

    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and "3 of 3 trial(s) done" in done.stdout
    assert not (study_dir / "trial_4").exists()


def call(argv) -> int:
    """tune.main in this process; argparse's own errors exit through SystemExit."""
    try:
        return tune.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, fragment", [
    (["dqn", "--trials", "3"], "argument ALGO: unknown algorithm 'dqn'"),
    (["ppo", "--trials", "0"], "argument --trials"),
    (["ppo", "--trials", "3", "--env", "CartPol-v1"], "argument --env"),
    (["ppo", "--trials", "3", "--total-steps", "0"], "argument --total-steps"),
    (["ppo", "--trials", "3", "--storage", "postgresql://nobody:secret@127.0.0.1:1/tuning"],
     "argument --storage: cannot open postgresql://nobody:***@127.0.0.1:1/tuning"),
    (["ppo", "--trials", "3", "--storage", "sqlite:////nonexistent/folder/study.db"],
     "argument --storage: cannot open sqlite:////nonexistent/folder/study.db"),
    (["ppo", "--trials", "3", "--storage", "nosuchdb://x"], "argument --storage"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert call([*argv, "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "secret" not in err, err
    assert not (tmp_path / "results").exists()


def test_a_study_of_another_algorithm_under_the_same_name_is_refused(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="mine", storage=db)
    for key, value in {"algo": "trpo", "env_id": "CartPole-v1", "total_steps": None, "eval_every": None,
                       "seed": 1}.items():
        study.set_user_attr(key, value)
    assert tune.main(["ppo", "--trials", "1", "--storage", db, "--study-name", "mine",
                      "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"argument --study-name: study 'mine' .* was made with algo=trpo", err), err
    assert not (tmp_path / "results").exists()


def test_the_preset_entry_keeps_what_the_study_did_not_search(tmp_path):
    """Trials run on top of the env's preset: the printed entry must repeat its unsearched fields,
    or pasting it over the old entry would silently drop them (Pendulum-v1's norm_obs here)."""
    study = optuna.create_study(study_name="ppo-Pendulum-v1", direction="maximize")
    study.enqueue_trial({"learning_rate": 3e-4})
    study.optimize(lambda t: t.suggest_float("learning_rate", 1e-5, 1e-2, log=True) * 0 + 1.0, n_trials=1)
    cfg = {"algo": "ppo", "env_id": "Pendulum-v1", "storage_shown": "sqlite:///x.db", "total_steps": None}
    entry = tomllib.loads(tune.preset_entry(study, cfg, optuna))["ppo"]["Pendulum-v1"]
    from rlsuite.presets import PRESETS_FILE, load_preset

    preset = load_preset(PRESETS_FILE, "ppo", "Pendulum-v1", algorithms.get("ppo").config_class())
    assert entry["learning_rate"] == 3e-4  # the study's value wins over the preset's
    for name, value in preset.values.items():
        if name != "learning_rate":
            assert entry[name] == (list(value) if isinstance(value, tuple) else value), name


def test_a_trial_over_two_seeds_scores_their_mean(tmp_path):
    cmd = [sys.executable, str(ROOT / "tune.py"), "policy_gradient", "--env", "CartPole-v1", "--trials", "1",
           "--seeds", "2", "--seed", "4", "--results-dir", str(tmp_path / "r"), *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study_dir = tmp_path / "r" / "tuning" / "policy_gradient-CartPole-v1"
    runs = study_dir / "trial_0" / "CartPole-v1" / "policy_gradient"
    assert sorted(p.name for p in runs.iterdir()) == ["seed_4", "seed_5"]
    means = []
    for seed in (4, 5):
        rows = (runs / f"seed_{seed}" / "evals.csv").read_text().strip().splitlines()[1:]
        means.append(sum(float(r.split(",")[2]) for r in rows) / len(rows))
    study = optuna.load_study(study_name="policy_gradient-CartPole-v1",
                              storage=f"sqlite:///{study_dir}.db")
    assert study.best_trial.value == pytest.approx(sum(means) / 2)
    assert "over seeds 4-5" in proc.stdout


def test_the_final_eval_objective_scores_the_mean_of_the_final_evaluations(tmp_path):
    cmd = [sys.executable, str(ROOT / "tune.py"), "policy_gradient", "--env", "CartPole-v1", "--trials", "1",
           "--seeds", "2", "--seed", "4", "--objective", "final-eval", "--results-dir", str(tmp_path / "r"),
           *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study_dir = tmp_path / "r" / "tuning" / "policy_gradient-CartPole-v1"
    runs = study_dir / "trial_0" / "CartPole-v1" / "policy_gradient"
    finals = [json.loads((runs / f"seed_{seed}" / "summary.json").read_text())["final_eval_mean"]
              for seed in (4, 5)]
    study = optuna.load_study(study_name="policy_gradient-CartPole-v1", storage=f"sqlite:///{study_dir}.db")
    assert study.best_trial.value == pytest.approx(sum(finals) / 2)
    assert study.user_attrs["objective"] == "final-eval"
    assert "trial 0: complete, final eval" in proc.stdout and "final eval" in proc.stdout.split("preset entry")[1]


def test_a_study_made_for_another_objective_is_refused(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="mine", storage=db)
    # a study from before --objective existed: it maximized the mean periodic evaluation
    for key, value in {"algo": "ppo", "env_id": "CartPole-v1", "total_steps": None, "eval_every": None,
                       "seed": 1, "seeds": 1}.items():
        study.set_user_attr(key, value)
    assert tune.main(["ppo", "--trials", "1", "--storage", db, "--study-name", "mine", "--objective",
                      "final-eval", "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"was made with .*objective=mean-eval", err) and len(err.strip().splitlines()) == 1, err
