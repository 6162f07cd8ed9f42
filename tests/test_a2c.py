"""A2C: the runner's files, determinism, bad input, learning."""
import numpy as np
import pytest
import torch

import a2c
from conftest import (assert_same_seed_same_episodes, assert_usage_error, learning_seed, read_run, run_dir,
                      run_script)
from rlsuite.records import UPDATE_COLUMNS


def test_policy_loss_weights_log_prob_by_advantage():
    logp = torch.tensor([-0.5, -2.0], requires_grad=True)
    loss = a2c.policy_loss_fn(logp, torch.tensor([2.0, -1.0]))
    assert loss.item() == pytest.approx(-(-0.5 * 2.0 + -2.0 * -1.0) / 2)
    loss.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [-1.0, 0.5])


def test_explained_variance_of_perfect_and_constant_critic():
    returns = torch.tensor([1.0, 2.0, 3.0])
    assert a2c.explained_variance(returns, returns) == pytest.approx(1.0)
    assert a2c.explained_variance(torch.full((3,), 2.0), returns) == pytest.approx(0.0)
    assert a2c.explained_variance(returns, torch.ones(3)) is None


def test_updates_csv_has_protocol_and_a2c_columns(results):
    proc = run_script("a2c_benchmark.py", "--total-steps", 600, "--eval-every", 300,
                      "--eval-episodes", 2, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    updates = read_run(run_dir(results, "a2c"))["updates"]
    assert list(updates.columns) == UPDATE_COLUMNS + a2c.UPDATE_COLUMNS
    for column in ("policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm", "explained_variance"):
        assert updates[column].notna().all(), column


def test_same_seed_gives_identical_episodes(results):
    assert_same_seed_same_episodes(results, "a2c", 1, "--total-steps", 1500, "--eval-every", 750,
                                   "--eval-episodes", 2)


def test_discount_outside_unit_interval_is_a_usage_error(results):
    assert_usage_error(run_script("a2c_benchmark.py", "--gamma", 1.5, "--results-dir", results), "--gamma")
    assert not results.exists()


def test_unknown_optimizer_is_a_usage_error(results):
    assert_usage_error(run_script("a2c_benchmark.py", "--optimizer", "sgd", "--results-dir", results),
                       "--optimizer", "adam, rmsprop")
    assert not results.exists()


def test_rmsprop_step_divides_by_running_rms_without_momentum():
    """Two steps by hand: v <- 0.99 v + 0.01 g^2, theta <- theta - lr g / (sqrt(v) + 1e-5)."""
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    cfg = a2c.A2CConfig(optimizer="rmsprop", learning_rate=0.1)
    optimizer = a2c.make_optimizer([theta], cfg)
    assert isinstance(optimizer, torch.optim.RMSprop)
    expected, v = theta.detach().clone(), torch.zeros(2, dtype=torch.float64)
    for g in (torch.tensor([0.5, -3.0], dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64)):
        theta.grad = g.clone()
        optimizer.step()
        v = 0.99 * v + 0.01 * g.square()
        expected -= 0.1 * g / (v.sqrt() + 1e-5)
    np.testing.assert_allclose(theta.detach().numpy(), expected.numpy(), rtol=1e-12)
    assert isinstance(a2c.make_optimizer([theta], a2c.A2CConfig()), torch.optim.Adam)


@pytest.mark.slow
def test_a2c_learns_to_solve_cartpole_with_defaults(results):
    seed = learning_seed(3)
    proc = run_script("a2c_benchmark.py", "--seed", seed, "--stop-when-solved", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    summary = read_run(run_dir(results, "a2c", seed=seed))["summary"]
    assert summary["solved"] and summary["steps_to_solve"] <= a2c.A2CConfig.total_steps
    assert summary["final_eval_mean"] >= 200  # a random policy scores ~22
    assert a2c.load_policy(run_dir(results, "a2c", seed=seed))(np.zeros((2, 4), dtype=np.float32)).shape == (2,)
