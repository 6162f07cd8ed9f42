"""PPO: loss pieces against hand values, the runner's files, determinism, learning."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import ppo
from conftest import (ROOT, assert_same_seed_same_episodes, assert_usage_error, learning_seed, read_run, run_dir,
                      run_script)
from rlsuite.records import UPDATE_COLUMNS


def test_surrogate_is_clipped_only_where_it_would_profit():
    old = torch.zeros(2)
    logp = torch.tensor([math.log(1.5), math.log(1.5)], requires_grad=True)
    adv = torch.tensor([1.0, -1.0])
    loss, log_ratio = ppo.clipped_surrogate_loss(logp, old, adv, clip_coef=0.2)
    # A > 0, ratio 1.5: min(1.5, 1.2) = 1.2 (clipped, no gradient);
    # A < 0, ratio 1.5: min(-1.5, -1.2) = -1.5 (unclipped, gradient -A * ratio / 2).
    assert loss.item() == pytest.approx(-(1.2 - 1.5) / 2)
    loss.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [0.0, 1.5 / 2], rtol=1e-6)
    np.testing.assert_allclose(log_ratio.detach().numpy(), [math.log(1.5)] * 2, rtol=1e-6)


def test_value_clipping_keeps_the_larger_error():
    v, ret, old = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([1.0])
    assert ppo.value_loss_fn(v, ret, old, None).item() == pytest.approx(0.5 * 4.0)
    # clipped prediction 1 + clamp(1, -0.2, 0.2) = 1.2: max(4, 1.44) = 4
    assert ppo.value_loss_fn(v, ret, old, 0.2).item() == pytest.approx(0.5 * 4.0)
    v = torch.tensor([-0.5])  # clipped to 0.8: max(0.25, 0.64)
    assert ppo.value_loss_fn(v, ret, old, 0.2).item() == pytest.approx(0.5 * 0.64)


def test_updates_csv_has_protocol_and_ppo_columns(results):
    proc = run_script("ppo_benchmark.py", "--total-steps", 600, "--eval-every", 300,
                      "--eval-episodes", 2, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    run = read_run(run_dir(results, "ppo"))
    updates = run["updates"]
    assert list(updates.columns) == UPDATE_COLUMNS + ppo.UPDATE_COLUMNS
    for column in ("approx_kl", "clip_fraction", "explained_variance", "entropy", "grad_norm"):
        assert updates[column].notna().all(), column
    assert (updates["approx_kl"] >= 0).all()
    assert run["summary"]["status"] == "completed"
    assert run["summary"]["total_steps"] == updates["global_step"].iloc[-1]


def test_same_seed_gives_identical_episodes(results):
    assert_same_seed_same_episodes(results, "ppo", 1, "--total-steps", 1200, "--eval-every", 600,
                                   "--eval-episodes", 2)


def test_minibatch_larger_than_rollout_is_a_usage_error(results):
    proc = run_script("ppo_benchmark.py", "--num-envs", 2, "--num-steps", 8, "--minibatch-size", 32,
                      "--results-dir", results)
    assert_usage_error(proc, "--minibatch-size")
    assert not results.exists()


def test_nonpositive_target_kl_is_a_usage_error(results):
    assert_usage_error(run_script("ppo_benchmark.py", "--target-kl", 0, "--results-dir", results),
                       "--target-kl")


def test_target_kl_stops_epochs_early(results):
    proc = run_script("ppo_benchmark.py", "--total-steps", 1000, "--target-kl", 1e-6,
                      "--eval-every", 1000, "--eval-episodes", 2, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    updates = read_run(run_dir(results, "ppo"))["updates"]
    assert (updates["epochs_done"] < ppo.PPOConfig.update_epochs).all()


@pytest.mark.slow
def test_ppo_learns_cartpole_with_defaults_in_15k_steps(results):
    seed = learning_seed(1)
    proc = run_script("ppo_benchmark.py", "--seed", seed, "--total-steps", 15000, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    run = read_run(run_dir(results, "ppo", seed))
    assert run["evals"]["mean_return"].max() >= 300  # a random policy scores ~22
    policy = ppo.load_policy(run_dir(results, "ppo", seed))
    actions = policy(np.zeros((3, 4), dtype=np.float32))
    assert actions.shape == (3,)


def test_the_profile_benchmark_counts_the_whole_rollout_a_small_budget_runs():
    # 2 envs x 64 steps = 128 steps per rollout: a 50-step budget still trains one
    # rollout and its 2 epochs x 2 minibatches (it divided by zero minibatch steps before).
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "profile_ppo.py"), "--steps", "50",
                           "--profile-steps", "50", "--eval-episodes", "1", "--", "--num-envs", "2", "--num-steps", "64",
                           "--minibatch-size", "64", "--update-epochs", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "CartPole-v1, 128 steps:" in proc.stdout
    assert "~4 minibatch steps" in proc.stdout
