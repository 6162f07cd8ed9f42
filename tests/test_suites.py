"""Named suites (suites.toml), the throughput table and the orchestrator's --suite plan and ETA."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import assert_usage_error, run_script
from rlsuite import algorithms
from rlsuite.cli import UsageError
from rlsuite.presets import PRESETS_FILE, load_preset
from rlsuite.suites import Throughput, TimedRun, _read_table, load_suites, merge_tables, wall_model
from test_orchestrator import orchestrate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_all_comparison as orchestrator  # noqa: E402


def test_the_shipped_suites_are_the_documented_ones():
    suites = load_suites()
    assert suites["cartpole"].env_seeds == {"CartPole-v1": [1, 2, 3, 4, 5]}
    assert suites["classic"].envs == ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
                                      "MountainCarContinuous-v0"]
    assert suites["box2d"].envs == ["LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3"]
    assert suites["mujoco"].envs == ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5"]
    overnight = suites["overnight"].env_seeds
    # a composite keeps each member's seeds for that member's envs
    assert len(overnight) == 12
    assert overnight["Acrobot-v1"] == [1, 2, 3, 4, 5] and overnight["Hopper-v5"] == [1, 2, 3]
    # and each member's evaluation cadence: classic control keeps the runners' 5,000 steps
    assert suites["overnight"].eval_every("Acrobot-v1", 1_000_000) is None
    assert suites["overnight"].eval_every("Hopper-v5", 1_000_000) == 20_000
    assert suites["box2d"].eval_every("BipedalWalker-v3", 5_000_000) == 100_000
    assert suites["box2d"].eval_every("LunarLanderContinuous-v3", 100_000) == 5000  # never below the default


@pytest.mark.parametrize("text, message", [
    ('[a]\nenvs = ["CartPole-v1"]\nseeds = "1-3"\ncolour = "red"\n', "unknown field"),
    ('[a]\nenvs = []\nseeds = "1-3"\n', "non-empty list"),
    ('[a]\nenvs = ["CartPole-v1"]\nseeds = "3-1"\n', "empty range"),
    ('[a]\nenvs = ["CartPole-v1"]\nseeds = 5\n', "seeds must be a string"),
    ('[a]\nsuites = ["b"]\n[b]\nsuites = ["a"]\n', "include each other"),
    ('[a]\nsuites = ["zzz"]\n', "no such suite"),
    ('[a\n', "not valid TOML"),
    ('[a]\nenvs = ["CartPole-v1"]\nseeds = "1-3"\nevals_per_run = 0\n', "evals_per_run must be a positive"),
    ('[a]\nenvs = ["CartPole-v1"]\nseeds = "1-3"\nevals_per_run = 2.5\n', "evals_per_run must be a positive"),
    ('[a]\nsuites = ["b"]\nevals_per_run = 5\n[b]\nenvs = ["CartPole-v1"]\nseeds = "1"\n', "or a non-empty"),
])
def test_a_bad_suites_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "suites.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_suites(path)


def test_suite_plan_combines_suite_envs_and_seeds():
    assert orchestrator.suite_plan(None, None, None) == {"CartPole-v1": [1, 2, 3, 4, 5]}
    assert orchestrator.suite_plan(None, ["Acrobot-v1"], None) == {"Acrobot-v1": [1, 2, 3, 4, 5]}
    assert orchestrator.suite_plan("mujoco", None, [7]) == {e: [7] for e in load_suites()["mujoco"].envs}
    plan = orchestrator.suite_plan("overnight", ["Hopper-v5", "Acrobot-v1"], None)
    assert plan == {"Hopper-v5": [1, 2, 3], "Acrobot-v1": [1, 2, 3, 4, 5]}


def test_run_budget_follows_flag_then_set_then_preset_then_default():
    ppo_cls = algorithms.get("ppo").config_class()
    preset = load_preset(PRESETS_FILE, "ppo", "Pendulum-v1", ppo_cls)
    assert orchestrator.run_budget("ppo", "Pendulum-v1", {}, None) == preset.values["total_steps"]
    assert orchestrator.run_budget("ppo", "CartPole-v1", {}, None) == ppo_cls().total_steps
    assert orchestrator.run_budget("ppo", "Pendulum-v1", {"total_steps": 1234}, None) == 1234
    assert orchestrator.run_budget("ppo", "Pendulum-v1", {"total_steps": 1234}, 99) == 99


def test_throughput_prefers_the_results_tree_and_keeps_recent_runs(tmp_path):
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"runs": {"ppo/CartPole-v1": [[1000, 10.0]], "a2c/CartPole-v1": [[500, 1.0]]}}))
    t = Throughput(tmp_path / "results", shipped)
    (tmp_path / "results").mkdir()
    assert t.steps_per_s("ppo", "CartPole-v1") == pytest.approx(100.0)
    assert t.estimate_s("ppo", "CartPole-v1", 50_000) == pytest.approx(500.0)
    assert t.estimate_s("trpo", "CartPole-v1", 50_000) is None
    t.add("ppo", "CartPole-v1", 1000, 2.0)
    t.add("ppo", "CartPole-v1", 3000, 2.0)
    # the tree's own runs win over the shipped table: 4000 steps in 4 s
    assert t.steps_per_s("ppo", "CartPole-v1") == pytest.approx(1000.0)
    again = Throughput(tmp_path / "results", shipped)
    assert again.steps_per_s("ppo", "CartPole-v1") == pytest.approx(1000.0)
    for _ in range(20):
        t.add("ppo", "CartPole-v1", 100, 1.0)
    assert len(json.loads((tmp_path / "results" / "throughput.json").read_text())["runs"]["ppo/CartPole-v1"]) == 10
    assert t.steps_per_s("ppo", "CartPole-v1") == pytest.approx(100.0)
    out = tmp_path / "merged.json"
    assert merge_tables([tmp_path / "results" / "throughput.json", shipped], out) == 2


def test_wall_model_fits_a_fixed_cost_per_run_plus_a_cost_per_step():
    # 1,000 and 11,000 steps in 11 and 21 s: 10 s per run whatever its budget, then 1,000 steps/s
    assert wall_model([(1000, 11.0), (11000, 21.0)]) == (pytest.approx(10.0), pytest.approx(1000.0), None)
    # a fit with a negative overhead is redone through the origin: (1e3*0.5 + 2e3*2) / (1e6 + 4e6)
    assert wall_model([(1000, 0.5), (2000, 2.0)]) == (0.0, pytest.approx(1 / 0.0009), None)
    # one budget, or a longer run no slower than a shorter one: the plain ratio
    assert wall_model([(1000, 4.0), (1000, 6.0)]) == (0.0, pytest.approx(200.0), None)
    assert wall_model([(1000, 2.0), (3000, 2.0)]) == (0.0, pytest.approx(1000.0), None)


def test_wall_model_takes_the_rate_from_training_time_and_fits_the_rest_per_evaluation():
    # made from 2,000 steps/s of training, 4 s per run and 0.5 s per periodic evaluation:
    # (steps, wall, evals, train_s); the rest of a run is wall - train_s = 4 + 0.5 * evals
    runs = [TimedRun(20000, 16.0, 4, 10.0), TimedRun(20000, 14.0, 0, 10.0),
            TimedRun(1_000_000, 529.0, 50, 500.0)]
    model = wall_model(runs)
    assert model == (pytest.approx(4.0), pytest.approx(2000.0), pytest.approx(0.5))
    # 5M steps evaluated every 100k (50 evaluations) against every 5k (1,000)
    assert model.estimate_s(5_000_000, 50) == pytest.approx(4 + 2500 + 25)
    assert model.estimate_s(5_000_000, 1000) == pytest.approx(4 + 2500 + 500)
    # one cadence: the runs' mean rest (7 s) split by episodes, 4 x 20 periodic against 100 final
    same = wall_model([TimedRun(20000, 16.0, 4, 10.0), TimedRun(40000, 28.0, 4, 20.0)])
    assert same == (pytest.approx(700 / 180), pytest.approx(2000.0), pytest.approx(140 / 180))
    assert same.estimate_s(20000, 4) == pytest.approx(17.0)  # the same cadence: the mean rest, exactly
    # no periodic evaluations at all: the rest is charged once per run
    assert wall_model([TimedRun(20000, 16.0, 0, 10.0)]) == (pytest.approx(6.0), pytest.approx(2000.0), None)
    # a run whose final evaluation took long cannot give a negative cost per evaluation
    assert wall_model([TimedRun(20000, 40.0, 0, 10.0), TimedRun(20000, 16.0, 4, 10.0)]).eval_s == 0.0
    # runs without their training time (older tables) fall back to the steps-only fit
    assert wall_model([(1000, 11.0, None), (11000, 21.0, 3)]) == (pytest.approx(10.0), pytest.approx(1000.0), None)


def test_a_long_run_is_estimated_from_the_fit_not_from_a_short_runs_ratio(tmp_path):
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"runs": {"ppo/E": [[2000, 12.0], [20000, 30.0]]}}))
    t = Throughput(None, shipped)
    assert t.wall_model("ppo", "E") == (pytest.approx(10.0), pytest.approx(1000.0), None)
    # the 20k-step run alone would say 667 steps/s, 1,500 s for 1M steps
    assert t.estimate_s("ppo", "E", 1_000_000) == pytest.approx(1010.0)
    assert t.wall_model("trpo", "E") is None
    # rows with evaluations and training time are read back; a bad one drops its row
    table = tmp_path / "t.json"
    table.write_text(json.dumps({"runs": {"ppo/E": [
        [20000, 16.0, 4, 10.0], [20000, 14.0, 0, 10.0], [1000000, 529.0, 50, 500.0],
        [10, 1.0, -1], [10, 1.0, 1.5], [10, 1.0, 0, -2.0], [10, 1.0, 0, 1.0, 5]]}}))
    t = Throughput(None, table)
    assert t.estimate_s("ppo", "E", 5_000_000, eval_every=100_000) == pytest.approx(2529.0)
    assert t.estimate_s("ppo", "E", 5_000_000) == pytest.approx(3004.0)
    # and what add() writes, read again, is what it was given
    results = Throughput(tmp_path / "res", tmp_path / "none.json")
    results.add("ppo", "E", 20000, 16.0, 4, 10.0)
    results.add("ppo", "E", 20000, 14.0)
    assert _read_table(tmp_path / "res" / "throughput.json")["ppo/E"] == [
        TimedRun(20000, 16.0, 4, 10.0), TimedRun(20000, 14.0, None, None)]


def test_two_orchestrators_sharing_a_results_tree_keep_each_others_runs(tmp_path):
    # both read the (empty) table before either finished a run, as two suites started side by side
    first, second = (Throughput(tmp_path / "results", tmp_path / "none.json") for _ in range(2))
    first.add("ppo", "HalfCheetah-v5", 1000, 1.0)
    second.add("a2c", "Acrobot-v1", 500, 1.0)
    first.add("ppo", "HalfCheetah-v5", 3000, 1.0)
    runs = json.loads((tmp_path / "results" / "throughput.json").read_text())["runs"]
    assert runs == {"a2c/Acrobot-v1": [[500, 1.0]], "ppo/HalfCheetah-v5": [[1000, 1.0], [3000, 1.0]]}
    assert first.steps_per_s("a2c", "Acrobot-v1") == pytest.approx(500.0)


def test_a_broken_throughput_file_is_an_empty_table(tmp_path):
    bad = tmp_path / "t.json"
    for text in ("not json", "[1, 2]", '{"runs": {"ppo/CartPole-v1": [[-1, 2]]}}',
                 '{"runs": {"ppo/CartPole-v1": "fast"}}'):
        bad.write_text(text)
        assert Throughput(None, bad).steps_per_s("ppo", "CartPole-v1") is None


def test_estimator_sums_slot_time_over_slots_and_calibrates(tmp_path):
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"runs": {"ppo/E": [[100, 1.0]], "a3c/E": [[100, 1.0]]}}))
    t = Throughput(None, shipped)
    specs = [orchestrator.RunSpec("ppo", "E", s, tmp_path / str(s), [], 1, steps=1000) for s in (1, 2)]
    specs.append(orchestrator.RunSpec("a3c", "E", 1, tmp_path / "a", [], 2, steps=1000))
    est = orchestrator.Estimator(specs, t, jobs=2)
    assert est.remaining_s() == pytest.approx((10 + 10 + 2 * 10) / 2)
    assert "20 s" in orchestrator.estimate_text(specs, t, 2)
    # the first run took twice its estimate: the rest are scaled by 2
    est.finished(orchestrator.Outcome(specs[0], "completed", 20.0, {"total_steps": 1000}))
    assert est.remaining_s() == pytest.approx(2 * (10 + 2 * 10) / 2)
    unknown = [orchestrator.RunSpec("trpo", "E", 1, tmp_path / "t", [], 1, steps=1000)]
    assert "not timed yet: trpo/E" in orchestrator.estimate_text(unknown, t, 2)
    assert orchestrator.Estimator(unknown, t, 2).remaining_s() is None


def test_estimator_corrects_the_start_estimates_once_when_finished_runs_enter_the_table(tmp_path):
    # the shipped table says 10 s a run; this machine takes 30 s. The finished run goes into
    # the results tree's table (which then estimates 30 s), and the ratio 3 scales the start
    # estimate: the run left is 30 s, not 90 s (the ratio applied to the updated table)
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"runs": {"ppo/E": [[1000, 10.0]]}}))
    t = Throughput(tmp_path / "results", shipped)
    specs = [orchestrator.RunSpec("ppo", "E", s, tmp_path / str(s), [], 1, steps=1000) for s in (1, 2)]
    est = orchestrator.Estimator(specs, t, jobs=1)
    assert est.remaining_s() == pytest.approx(20.0)
    est.finished(orchestrator.Outcome(specs[0], "completed", 30.0, {"total_steps": 1000}))
    assert t.estimate_s("ppo", "E", 1000) == pytest.approx(30.0)
    assert est.remaining_s() == pytest.approx(30.0)
    assert est.run_s(specs[1]) == pytest.approx(30.0)
    # a pair untimed at the start is estimated from the table once this machine has timed it
    late = orchestrator.RunSpec("trpo", "E", 1, tmp_path / "t", [], 1, steps=1000)
    est = orchestrator.Estimator([late, specs[1]], t, jobs=1)
    assert est.run_s(late) is None
    t.add("trpo", "E", 1000, 40.0)
    assert est.run_s(late) == pytest.approx(40.0)


def test_dry_run_of_a_suite_prints_per_env_seeds_and_an_estimate(tmp_path):
    proc = orchestrate(tmp_path, "--suite", "classic", "--algos", "ppo", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "1 algorithm(s) x 5 seed(s) x 5 env(s) = 25 runs" in proc.stdout
    assert "ppo MountainCar-v0 seed 5" in proc.stdout
    assert "estimated wall time on" in proc.stdout
    proc = orchestrate(tmp_path, "--suite", "overnight", "--algos", "trpo", "--dry-run")
    assert "x 3 to 5 seed(s) x 12 env(s) = 52 runs" in proc.stdout
    assert "trpo Hopper-v5 seed 3" in proc.stdout and "trpo Hopper-v5 seed 4" not in proc.stdout


def test_a_finished_matrix_updates_the_throughput_table(tmp_path):
    proc = orchestrate(tmp_path, "--algos", "ppo", "--seeds", "1-2", "--jobs", "2", "--no-aggregate")
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tmp_path / "results" / "throughput.json").read_text())
    assert len(table["runs"]["ppo/CartPole-v1"]) == 2
    assert "ETA" in proc.stdout


def test_unknown_suite_exits_2(tmp_path):
    proc = run_script("run_all_comparison.py", "--suite", "everything", "--results-dir", tmp_path / "r")
    assert_usage_error(proc, "--suite", "'everything'", "classic")


def test_max_total_steps_caps_only_the_longer_budgets(tmp_path):
    # the cap falls between two box2d budgets of the A2C presets, whatever they are today
    budgets = {env: orchestrator.run_budget("a2c", env, {}, None) for env in ("LunarLander-v3", "BipedalWalker-v3")}
    short, long = sorted(budgets, key=budgets.get)
    assert budgets[short] < budgets[long]
    cap = (budgets[short] + budgets[long]) // 2
    proc = orchestrate(tmp_path, "--suite", "box2d", "--algos", "a2c", "--seeds", "1",
                       "--max-total-steps", str(cap), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(" [")[0]: line for line in proc.stdout.splitlines() if line.startswith("a2c ")}
    # the budget under the cap is kept, no flag added
    assert f"{budgets[short]:,} steps" in lines[f"a2c {short} seed 1"]
    assert "--total-steps" not in lines[f"a2c {short} seed 1"]
    # the budget over it is cut to the cap and the runner is told so
    assert f"{cap:,} steps" in lines[f"a2c {long} seed 1"]
    assert f" --total-steps {cap} " in lines[f"a2c {long} seed 1"] + " "
    # box2d spreads 50 periodic evaluations over each run's budget, as capped
    for env, budget in ((short, budgets[short]), (long, cap)):
        assert lines[f"a2c {env} seed 1"].endswith(f"--eval-every {max(5000, budget // 50)}")
    # an --eval-every of the user's wins, once
    proc = orchestrate(tmp_path, "--suite", "box2d", "--algos", "a2c", "--seeds", "1", "--eval-every", "7000",
                       "--dry-run")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("a2c ")]
    assert lines and all(line.count("--eval-every") == 1 and "--eval-every 7000" in line for line in lines)
    proc = orchestrate(tmp_path, "--max-total-steps", str(10**13), "--dry-run")
    assert_usage_error(proc, "--max-total-steps")


def test_full_budget_runs_of_one_cadence_estimate_fewer_evaluations_as_cheaper():
    # 1M steps at 2,000 steps/s, 50 evaluations of 20 episodes and a final one of 100, 0.3 s per
    # episode: the rest is 1,100 episodes, 330 s
    runs = [TimedRun(1_000_000, 500.0 + 330.0, 50, 500.0)] * 3
    model = wall_model(runs)
    assert model.estimate_s(1_000_000, 50) == pytest.approx(830.0)
    assert model.estimate_s(1_000_000, 25) == pytest.approx(830.0 - 25 * 20 * 0.3)


def test_evals_per_run_spreads_that_many_evaluations_over_every_budget(tmp_path):
    proc = orchestrate(tmp_path, "--suite", "overnight", "--algos", "ppo", "--seeds", "1", "--max-total-steps",
                       "1000000", "--evals-per-run", "25", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(" [")[0]: line for line in proc.stdout.splitlines() if line.startswith("ppo ")}
    # every env, whether its suite sets evals_per_run (mujoco: 50) or not (classic)
    for env in ("HalfCheetah-v5", "BipedalWalker-v3", "Acrobot-v1"):
        budget = min(orchestrator.run_budget("ppo", env, {}, None), 1_000_000)
        assert lines[f"ppo {env} seed 1"].endswith(f"--eval-every {max(5000, budget // 25)}")
        assert lines[f"ppo {env} seed 1"].count("--eval-every") == 1
    proc = orchestrate(tmp_path, "--suite", "mujoco", "--evals-per-run", "25", "--eval-every", "7000", "--dry-run")
    assert_usage_error(proc, "--eval-every", "--evals-per-run")
    proc = orchestrate(tmp_path, "--suite", "mujoco", "--evals-per-run", "0", "--dry-run")
    assert_usage_error(proc, "--evals-per-run")


def test_the_readmes_overnight_cut_fits_ten_hours_on_two_cores(tmp_path, monkeypatch, capsys):
    # README, "Run the full comparison": the suite at the presets' budgets does not fit a night
    # on 2 cores; this cut does, by the shipped throughput table (the results tree is empty)
    cut = "--suite overnight --seeds 1-3 --max-total-steps 1000000 --evals-per-run 25"
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert cut in " ".join(readme.split())
    # the estimate unrounded (the dry run prints it to 0.1 h)
    monkeypatch.setattr(orchestrator, "format_duration", lambda seconds: f"{seconds / 3600:.4f} h")
    status = orchestrator.main([*cut.split(), "--jobs", "2", "--dry-run", "--results-dir", str(tmp_path / "r")])
    assert status == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("estimated wall time on 2 slot(s): "))
    assert "not timed yet" not in line
    assert float(line.split(": ")[1].split()[0]) <= 10.0, line
