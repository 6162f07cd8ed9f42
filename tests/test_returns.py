"""Closed-form return estimators against hand-computed answers."""
import numpy as np
import torch
import pytest

from rlsuite.returns import discounted_return, normalize, reward_to_go


def test_discounted_return_of_three_rewards():
    # 1 + 0.5 * 2 + 0.25 * 4 = 3
    assert discounted_return([1.0, 2.0, 4.0], gamma=0.5) == pytest.approx(3.0)


def test_reward_to_go_counts_only_later_rewards():
    # G_2 = 4, G_1 = 2 + 0.5*4 = 4, G_0 = 1 + 0.5*4 = 3
    np.testing.assert_allclose(reward_to_go([1.0, 2.0, 4.0], gamma=0.5), [3.0, 4.0, 4.0])


def test_reward_to_go_undiscounted_is_a_reversed_cumsum():
    np.testing.assert_allclose(reward_to_go([1, 1, 1, 1], gamma=1.0), [4, 3, 2, 1])


def test_reward_to_go_bootstraps_a_truncated_episode():
    # V(s_T) = 10 enters as gamma^(T-t) * 10: G_1 = 1 + 0.9*10 = 10, G_0 = 1 + 0.9*10 = 10
    np.testing.assert_allclose(reward_to_go([1.0, 1.0], gamma=0.9, bootstrap=10.0), [10.0, 10.0])


def test_first_reward_to_go_equals_discounted_return():
    rewards = np.random.default_rng(0).normal(size=20)
    assert reward_to_go(rewards, 0.97)[0] == pytest.approx(discounted_return(rewards, 0.97))


def test_normalize_gives_zero_mean_unit_std():
    x = normalize(np.array([1.0, 2.0, 3.0, 10.0]))
    assert x.mean() == pytest.approx(0.0, abs=1e-12)
    assert x.std(ddof=1) == pytest.approx(1.0, abs=1e-6)


def test_normalize_treats_numpy_and_torch_alike():
    x = np.array([1.0, 2.0, 3.0, 10.0])
    np.testing.assert_allclose(normalize(torch.as_tensor(x)).numpy(), normalize(x), rtol=1e-12)
