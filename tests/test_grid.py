"""run_all_comparison.py --grid: expansion, cell naming, resume, bad input.

Runs use the fake runners of test_orchestrator.py (the protocol's files, no
training); bad input is checked in this process through main().
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import run_all_comparison
from conftest import ROOT
from rlsuite.suites import Throughput
from test_orchestrator import FAKE_RUNNER

GRID_RUNNER = FAKE_RUNNER.replace('"--learning-rate", "--num-workers"',
                                  '"--learning-rate", "--num-workers", "--gamma", "--max-kl", "--ent-coef"')


def grid_runners(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for algo in ("policy_gradient", "a2c", "a3c", "ppo", "trpo"):
        (folder / f"{algo}_benchmark.py").write_text(GRID_RUNNER)
    return folder


def orchestrate(tmp_path, *args, env=None):
    cmd = [sys.executable, str(ROOT / "run_all_comparison.py"), "--runner-dir", str(grid_runners(tmp_path / "r")),
           "--results-dir", str(tmp_path / "results"), "--no-progress", "--no-aggregate", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, **(env or {})))


def test_grid_expands_to_the_cross_product_per_algorithm_times_seeds(tmp_path, capsys):
    status = run_all_comparison.main([
        "--algos", "ppo,trpo", "--seeds", "1,2", "--results-dir", str(tmp_path / "res"), "--dry-run",
        "--grid", "learning_rate=1e-4,1e-3", "--grid", "gamma=0.9,0.99", "--grid", "trpo.max_kl=0.01"])
    out = capsys.readouterr().out
    assert status == 0
    # ppo: 2 x 2 cells; trpo has no learning_rate: gamma x max_kl = 2 cells; x 2 seeds
    assert "12 runs; 0 already completed, 12 to run" in out
    assert "cells per algorithm: ppo 4, trpo 2" in out
    assert "ppo [learning_rate=0.0001__gamma=0.9] CartPole-v1 seed 2" in out
    assert "trpo [gamma=0.99__max_kl=0.01] CartPole-v1 seed 1" in out
    # each cell is a results tree of its own, passed to the runner as --results-dir
    tree = tmp_path / "res" / "grid" / "learning_rate=0.001__gamma=0.99"
    assert f"--results-dir {tree.absolute()} " in out
    assert "--learning-rate 1e-3 --gamma 0.99" in out
    assert not (tmp_path / "res").exists(), "a dry run writes nothing"


def test_cell_names_spell_each_value_once():
    assert run_all_comparison.cell_name([("learning_rate", 1e-3), ("gamma", 0.9)]) == \
        "learning_rate=0.001__gamma=0.9"
    assert run_all_comparison.cell_name([("norm_adv", True), ("hidden_sizes", (64, 64)),
                                         ("target_kl", None), ("num_steps", 5)]) == \
        "norm_adv=true__hidden_sizes=64-64__target_kl=none__num_steps=5"


def test_algorithms_without_a_grid_field_are_left_out(tmp_path, capsys):
    assert run_all_comparison.main(["--dry-run", "--seeds", "1", "--results-dir", str(tmp_path / "r"),
                                    "--grid", "ent_coef=0,0.01"]) == 0
    out = capsys.readouterr().out
    assert "not run (no --grid field): trpo" in out
    assert "8 runs" in out and "trpo [" not in out


def test_grid_runs_land_in_their_cells_and_a_half_finished_grid_resumes(tmp_path):
    args = ["--algos", "ppo", "--seeds", "1,2", "--jobs", "2", "--grid", "ppo.learning_rate=1e-3,1e-2",
            "--grid", "gamma=0.9,0.99"]
    first = orchestrate(tmp_path, *args, "--seeds", "1")  # half the grid: seed 1 only
    assert first.returncode == 0, first.stdout + first.stderr
    results = tmp_path / "results"
    done = sorted(results.glob("grid/*/CartPole-v1/ppo/seed_*/summary.json"))
    assert len(done) == 4
    argv = json.loads((results / "grid" / "learning_rate=0.01__gamma=0.9" / "CartPole-v1" / "ppo" / "seed_1"
                       / "argv.json").read_text())
    assert argv[argv.index("--learning-rate") + 1] == "1e-2" and argv[argv.index("--gamma") + 1] == "0.9"
    stamps = {p: p.stat().st_mtime_ns for p in done}

    again = orchestrate(tmp_path, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "8 runs; 4 already completed, 4 to run" in again.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "a finished cell was redone"
    assert len(list(results.glob("grid/*/CartPole-v1/ppo/seed_*/summary.json"))) == 8

    third = orchestrate(tmp_path, *args)
    assert "8 already completed, 0 to run" in third.stdout


@pytest.mark.parametrize("grid, fragment", [
    (["dqn.learning_rate=1e-3"], "unknown algorithm 'dqn'"),
    (["a2c.learning_rate=1e-3"], "a2c is not in --algos"),
    (["ppo.learning_rat=1e-3"], "PPOConfig has no field learning_rat"),
    (["learning_rat=1e-3"], "no algorithm in --algos (ppo,trpo) has a field learning_rat"),
    (["learning_rate="], "empty grid"),
    (["gamma=,,"], "empty grid"),
    (["gamma"], "expected [ALGO.]FIELD=V1,V2"),
    (["learning_rate=1e-3,abc"], "ppo.learning_rate: expected a number, got 'abc'"),
    (["ppo.num_steps=64,6.5"], "ppo.num_steps: expected an integer"),
    (["gamma=0.9,1.5"], "must be in [0, 1], got 1.5"),
    (["ppo.minibatch_size=64,1000000"], "--minibatch-size: must be <="),
    (["gamma=0.9", "ppo.gamma=0.99"], "ppo.gamma is gridded twice"),
    (["ppo.seed=1,2"], "a flag every runner shares"),
])
def test_bad_grid_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, grid, fragment):
    argv = ["--algos", "ppo,trpo", "--results-dir", str(tmp_path / "res")]
    for item in grid:
        argv += ["--grid", item]
    assert run_all_comparison.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "argument --grid" in lines[0] and fragment in lines[0], err
    assert not (tmp_path / "res").exists()


def test_a_field_in_both_set_and_grid_is_refused(tmp_path, capsys):
    assert run_all_comparison.main(["--algos", "ppo", "--results-dir", str(tmp_path / "res"),
                                    "--set", "ppo.gamma=0.9", "--grid", "gamma=0.9,0.99"]) == 2
    assert "also given with --set" in capsys.readouterr().err


def test_a_run_that_needs_more_slots_is_not_overtaken(tmp_path):
    """jobs=2: an A3C run (2 slots) queued behind a running one-slot run starts before later one-slot runs."""
    started = []

    class Backend:
        stop_wait = 0

        def start(self, spec):
            started.append(spec.algo + str(spec.seed))
            return {"polls": 0}

        def poll(self, handle):
            handle["polls"] += 1
            return {"returncode": 0, "wall_s": 0.0} if handle["polls"] > 2 else None

    def spec(algo, seed, slots):
        return run_all_comparison.RunSpec(algo, "CartPole-v1", seed, tmp_path / algo / str(seed), [], slots)

    specs = [spec("ppo", 1, 1), spec("a3c", 1, 2), spec("ppo", 2, 1), spec("ppo", 3, 1)]
    progress = run_all_comparison.Progress(len(specs), 0, show_bar=False)
    outcomes, interrupted = run_all_comparison.schedule(specs, Backend(), 2, False, progress, poll_s=0)
    assert not interrupted and len(outcomes) == 4
    assert started == ["ppo1", "a3c1", "ppo2", "ppo3"]


def test_a_slot_left_idle_for_a_waiting_run_is_lent_only_to_a_run_that_ends_in_time(tmp_path):
    """jobs=2, ppo1 running (100 s estimated): the A3C run behind it waits for ppo1's slot;
    ppo2 (10 s) fits in the idle slot before then and starts, ppo3 (1,000 s) would delay
    the A3C run and waits its turn. Estimates: 10 steps/s for every pair, clock frozen at 0."""
    started, finished = [], set()

    class Backend:
        stop_wait = 0

        def start(self, spec):
            started.append(spec.algo + str(spec.seed))
            return {"name": started[-1], "polls": 0}

        def poll(self, handle):
            handle["polls"] += 1
            # ppo1 runs until ppo2 has finished (or 50 polls); the others end on their second poll
            limit = 50 if handle["name"] == "ppo1" else 1
            done = handle["polls"] > limit or (handle["name"] == "ppo1" and "ppo2" in finished)
            if done:
                finished.add(handle["name"])
            return {"returncode": 0, "wall_s": 0.0} if done else None

    def spec(algo, seed, slots, steps):
        return run_all_comparison.RunSpec(algo, "E", seed, tmp_path / algo / str(seed), [], slots, steps=steps)

    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"runs": {"ppo/E": [[10, 1.0]], "a3c/E": [[10, 1.0]]}}))
    specs = [spec("ppo", 1, 1, 1000), spec("a3c", 1, 2, 1000), spec("ppo", 2, 1, 100), spec("ppo", 3, 1, 10_000)]
    estimator = run_all_comparison.Estimator(specs, Throughput(None, shipped), jobs=2)
    progress = run_all_comparison.Progress(len(specs), 0, show_bar=False, estimator=estimator)
    outcomes, interrupted = run_all_comparison.schedule(specs, Backend(), 2, False, progress, poll_s=0,
                                                        clock=lambda: 0.0)
    assert not interrupted and len(outcomes) == 4
    assert started == ["ppo1", "ppo2", "a3c1", "ppo3"]
    # without estimates nothing is lent: the matrix order holds
    started.clear()
    finished.clear()
    progress = run_all_comparison.Progress(len(specs), 0, show_bar=False)
    run_all_comparison.schedule(specs, Backend(), 2, False, progress, poll_s=0, clock=lambda: 0.0)
    assert started == ["ppo1", "a3c1", "ppo2", "ppo3"]


def test_a_run_completed_meanwhile_by_another_orchestrator_is_skipped_not_started(tmp_path):
    started = []

    class Backend:
        stop_wait = 0

        def start(self, spec):
            started.append(spec.seed)
            return {}

        def poll(self, handle):
            return {"returncode": 0, "wall_s": 1.0}

    specs = [run_all_comparison.RunSpec("ppo", "CartPole-v1", seed, tmp_path / str(seed), [], 1) for seed in (1, 2)]
    # seed 2 was still to run when this orchestrator planned; another one has finished it since
    specs[1].run_dir.mkdir()
    (specs[1].run_dir / "summary.json").write_text(json.dumps({"status": "completed", "seed": 2}))
    progress = run_all_comparison.Progress(len(specs), 0, show_bar=False)
    outcomes, _ = run_all_comparison.schedule(specs, Backend(), 1, False, progress, poll_s=0)
    assert started == [1]
    assert sorted((o.spec.seed, o.status) for o in outcomes)[1] == (2, "skipped")
    # under --overwrite the completed run is what the user asked to redo
    started.clear()
    progress = run_all_comparison.Progress(len(specs), 0, show_bar=False)
    run_all_comparison.schedule(specs[1:], Backend(), 1, False, progress, poll_s=0, recheck=False)
    assert started == [2]
