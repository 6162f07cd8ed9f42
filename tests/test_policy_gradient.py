"""REINFORCE: the four estimators' weights, the detached baseline, learning, determinism."""
import numpy as np
import pytest
import torch

import policy_gradient as pg
from conftest import assert_same_seed_same_episodes, learning_seed, read_run, run_dir, run_script


def constant_critic(value: float) -> torch.nn.Module:
    """V(s) = value for every s."""
    critic = pg.build_critic(4, pg.PolicyGradientConfig())
    for p in critic.parameters():
        torch.nn.init.zeros_(p)
    critic[-1].bias.data.fill_(value)
    return critic


def episode(rewards, truncated=False):
    n = len(rewards)
    return {"obs": np.zeros((n, 4), np.float32), "actions": np.zeros(n, np.int64),
            "rewards": np.asarray(rewards, float), "final_obs": np.zeros(4, np.float32),
            "terminated": not truncated, "truncated": truncated}


EPISODES = [episode([1.0, 1.0, 1.0]), episode([1.0, 1.0])]


def test_total_return_weights_every_step_by_the_whole_return():
    w, _ = pg.episode_weights(EPISODES, "total_return", gamma=0.5)
    # R = 1 + 0.5 + 0.25 = 1.75 for the first episode, 1.5 for the second
    np.testing.assert_allclose(w, [1.75, 1.75, 1.75, 1.5, 1.5])


def test_reward_to_go_weights_count_only_later_rewards():
    w, g = pg.episode_weights(EPISODES, "reward_to_go", gamma=0.5)
    np.testing.assert_allclose(w, [1.75, 1.5, 1.0, 1.5, 1.0])
    np.testing.assert_allclose(g, w)


def test_baseline_weights_subtract_the_value():
    w, _ = pg.episode_weights(EPISODES, "baseline", gamma=0.5, critic=constant_critic(1.0))
    np.testing.assert_allclose(w, [0.75, 0.5, 0.0, 0.5, 0.0], atol=1e-6)


def test_advantage_weights_are_normalized():
    w, _ = pg.episode_weights(EPISODES, "advantage", gamma=0.5, critic=constant_critic(1.0))
    raw = np.array([0.75, 0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(w, (raw - raw.mean()) / (raw.std(ddof=1) + 1e-8), atol=1e-5)


def test_truncated_episode_bootstraps_the_critic_value():
    # a time-limit cut adds gamma^(T-t) * V(final obs): V = 2 -> G = [1 + .5 + .25*2, 1 + .5*2]
    _, g = pg.episode_weights([episode([1.0, 1.0], truncated=True)], "baseline", 0.5, constant_critic(2.0))
    np.testing.assert_allclose(g, [2.0, 2.0], atol=1e-6)
    _, g = pg.episode_weights([episode([1.0, 1.0], truncated=False)], "baseline", 0.5, constant_critic(2.0))
    np.testing.assert_allclose(g, [1.5, 1.0], atol=1e-6)


def test_baseline_is_detached_from_the_policy_loss():
    cfg = pg.PolicyGradientConfig()
    actor, critic = pg.build_actor(4, 2, cfg), pg.build_critic(4, cfg)
    rng = np.random.default_rng(0)
    eps = [dict(episode(rng.random(5)), obs=rng.normal(size=(5, 4)).astype(np.float32)) for _ in range(3)]
    weights, _ = pg.episode_weights(eps, "baseline", 0.99, critic)
    obs = torch.as_tensor(np.concatenate([e["obs"] for e in eps]))
    logp = actor.dist(obs).log_prob(torch.zeros(15, dtype=torch.long))
    loss = pg.policy_loss_fn(logp, torch.as_tensor(weights, dtype=torch.float32))
    loss.backward()
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None for p in actor.parameters())


def test_unknown_estimator_is_a_usage_error(results):
    proc = run_script("policy_gradient_benchmark.py", "--estimator", "q_learning", "--results-dir", results)
    assert proc.returncode == 2 and "--estimator" in proc.stderr and "advantage" in proc.stderr
    assert not results.exists()


@pytest.mark.slow
def test_reinforce_learns_to_solve_cartpole_within_60k_steps(results):
    seed = learning_seed(1)
    proc = run_script("policy_gradient_benchmark.py", "--seed", seed, "--total-steps", 60000,
                      "--stop-when-solved", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    summary = read_run(run_dir(results, "policy_gradient", seed))["summary"]
    assert summary["solved"] is True and summary["steps_to_solve"] <= 60000
    assert summary["final_eval_mean"] >= 200  # a random policy scores ~22


@pytest.mark.slow
def test_same_seed_gives_identical_episodes_csv(tmp_path):
    assert_same_seed_same_episodes(tmp_path, "policy_gradient", 7, "--total-steps", 6000, min_episodes=50)


@pytest.mark.slow
def test_every_estimator_runs_and_logs_greedy_action_probability(results):
    for estimator in pg.ESTIMATORS:
        out = results / estimator
        proc = run_script("policy_gradient_benchmark.py", "--estimator", estimator,
                          "--total-steps", 3000, "--results-dir", out)
        assert proc.returncode == 0, proc.stderr
        updates = read_run(run_dir(out, "policy_gradient"))["updates"]
        assert updates["greedy_action_prob"].between(0.5, 1.0).all()
        # the value loss only applies to the estimators with a critic: empty, not 0, otherwise
        assert updates["value_loss"].isna().all() == (estimator in ("total_return", "reward_to_go"))
