"""TRPO: the natural-gradient pieces against closed forms, the line search, learning, reproducibility."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_same_seed_same_episodes, learning_seed, read_run, run_dir, run_script
from rlsuite.distributions import Actor
from rlsuite.nets import flat_params, set_flat_params
from trpo import conjugate_gradient, fisher_vector_product, line_search


def test_conjugate_gradient_matches_numpy_solve_on_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(12, 12))
    a = m @ m.T + 0.5 * np.eye(12)  # symmetric positive definite
    b = rng.normal(size=12)
    a_t = torch.as_tensor(a)
    x = conjugate_gradient(lambda v: a_t @ v, torch.as_tensor(b), iters=12)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


def test_conjugate_gradient_with_few_iterations_is_not_exact():
    """The iteration count is honoured (and the comparison above can fail)."""
    rng = np.random.default_rng(1)
    m = rng.normal(size=(12, 12))
    a = m @ m.T + 0.5 * np.eye(12)
    b = rng.normal(size=12)
    a_t = torch.as_tensor(a)
    x = conjugate_gradient(lambda v: a_t @ v, torch.as_tensor(b), iters=2)
    assert not np.allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-3)


def test_fisher_vector_product_matches_explicit_fisher_of_linear_categorical_policy():
    """Logits z = W s + b: J_s = dz/dtheta is known, and F = mean_s J_s^T (diag(p) - p p^T) J_s."""
    torch.manual_seed(0)
    obs_dim, n_actions, n_states, damping = 3, 4, 7, 0.1
    policy = Actor(torch.nn.Linear(obs_dim, n_actions).double())
    obs = torch.randn(n_states, obs_dim, dtype=torch.float64)
    n_params = n_actions * obs_dim + n_actions  # weight (row-major), then bias: parameters() order

    fisher = np.zeros((n_params, n_params))
    with torch.no_grad():
        probs = torch.softmax(policy(obs), dim=-1).numpy()
    for s, p in zip(obs.numpy(), probs):
        jac = np.zeros((n_actions, n_params))
        for k in range(n_actions):
            jac[k, k * obs_dim:(k + 1) * obs_dim] = s
            jac[k, n_actions * obs_dim + k] = 1.0
        fisher += jac.T @ (np.diag(p) - np.outer(p, p)) @ jac
    fisher /= n_states

    v = torch.randn(n_params, dtype=torch.float64)
    fvp = fisher_vector_product(policy, obs, damping)
    np.testing.assert_allclose(fvp(v).numpy(), fisher @ v.numpy() + damping * v.numpy(), rtol=1e-8, atol=1e-10)
    # the KL gradient is computed once and reused: a second product is as exact as the first
    w = torch.randn(n_params, dtype=torch.float64)
    np.testing.assert_allclose(fvp(w).numpy(), fisher @ w.numpy() + damping * w.numpy(), rtol=1e-8, atol=1e-10)


def test_line_search_restores_parameters_when_no_step_is_acceptable():
    torch.manual_seed(0)
    actor = torch.nn.Linear(3, 2)
    old = flat_params(actor).clone()

    def evaluate():  # any move away from the old parameters lowers the surrogate
        return -torch.sum((flat_params(actor) - old) ** 2), torch.tensor(0.0)

    accepted, steps, improvement, _ = line_search(actor, torch.ones_like(old), evaluate, max_kl=1.0,
                                                  backtrack_iters=5, backtrack_coef=0.5)
    assert not accepted and steps == 5 and improvement == 0.0
    assert torch.equal(flat_params(actor), old)


def test_line_search_shrinks_until_kl_is_within_bound():
    actor = torch.nn.Linear(1, 1, bias=False)
    set_flat_params(actor, torch.zeros(1))

    def evaluate():  # surrogate rises with the step; "KL" is the squared step length
        theta = flat_params(actor)
        return theta.sum(), (theta ** 2).sum()

    accepted, steps, improvement, kl = line_search(actor, torch.ones(1), evaluate, max_kl=0.2,
                                                   backtrack_iters=10, backtrack_coef=0.5)
    # fractions 1, 0.5 give KL 1, 0.25 > 0.2; 0.25 gives 0.0625: accepted on the third try
    assert accepted and steps == 3
    assert kl == pytest.approx(0.0625) and improvement == pytest.approx(0.25)
    assert float(flat_params(actor)) == pytest.approx(0.25)


@pytest.mark.slow
def test_trpo_learns_cartpole_and_logs_its_trust_region(results):
    seed = learning_seed(3)
    proc = run_script("trpo_benchmark.py", "--seed", seed, "--stop-when-solved", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    r = read_run(run_dir(results, "trpo", seed))
    assert r["summary"]["status"] == "completed"
    assert r["summary"]["solved"], r["evals"]
    assert r["summary"]["final_eval_mean"] >= 200  # a random policy scores ~22
    updates = r["updates"]
    for column in ("line_search_steps", "step_accepted", "kl_after", "surrogate_improvement",
                   "explained_variance"):
        assert column in updates.columns
    taken = updates[updates["step_accepted"] == 1]
    assert len(taken) > 0
    assert (taken["kl_after"] <= taken["max_kl"] + 1e-9).all()
    assert (taken["surrogate_improvement"] > 0).all()


@pytest.mark.slow
def test_same_seed_gives_identical_episodes(tmp_path):
    assert_same_seed_same_episodes(tmp_path, "trpo", 5, "--total-steps", 4000)
