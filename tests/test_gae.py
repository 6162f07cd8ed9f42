"""rlsuite.returns.gae against advantages worked out by hand (gamma 0.9, lambda 0.8, gamma*lambda 0.72)."""
import numpy as np
import pytest

from rlsuite.returns import gae, reward_to_go

GAMMA, LAM = 0.9, 0.8


def column(*xs):
    return np.array(xs, dtype=np.float64)


def test_terminated_episode_does_not_bootstrap_final_value():
    # s0 s1 s2 -> terminal; V(final obs) = 9 must not enter.
    adv = gae(rewards=column(1, 1, 1), values=column(0.5, 0.4, 0.3, 9.0),
              terminated=column(0, 0, 1), truncated=column(0, 0, 0), valid=column(1, 1, 1),
              gamma=GAMMA, gae_lambda=LAM)
    # delta2 = 1 - 0.3 = 0.7; delta1 = 1 + 0.9*0.3 - 0.4 = 0.87; delta0 = 1 + 0.9*0.4 - 0.5 = 0.86
    # A2 = 0.7; A1 = 0.87 + 0.72*0.7 = 1.374; A0 = 0.86 + 0.72*1.374 = 1.84928
    np.testing.assert_allclose(adv, [1.84928, 1.374, 0.7])


def test_truncated_episode_bootstraps_value_of_final_observation():
    values = column(0.5, 0.4, 0.3, 2.0)  # values[3] = V(final obs) = 2
    adv = gae(rewards=column(1, 1, 1), values=values,
              terminated=column(0, 0, 0), truncated=column(0, 0, 1), valid=column(1, 1, 1),
              gamma=GAMMA, gae_lambda=LAM)
    # delta2 = 1 + 0.9*2 - 0.3 = 2.5; A1 = 0.87 + 0.72*2.5 = 2.67; A0 = 0.86 + 0.72*2.67 = 2.7824
    np.testing.assert_allclose(adv, [2.7824, 2.67, 2.5])
    # returns = advantages + values: the last target is r + gamma * V(final obs)
    np.testing.assert_allclose((adv + values[:-1])[2], 1 + 0.9 * 2.0)


def test_lambda_one_returns_equal_discounted_rewards_plus_bootstrap():
    rewards, values = column(1, 2, 3), column(0.5, -1.0, 4.0, 2.0)
    adv = gae(rewards, values, column(0, 0, 0), column(0, 0, 1), column(1, 1, 1), GAMMA, 1.0)
    np.testing.assert_allclose(adv + values[:-1], reward_to_go(rewards, GAMMA, bootstrap=2.0))


def crossing_rollout(end_of_first_episode: str):
    """T = 5, one env: episode A at t = 0, 1 ends at t = 1; t = 2 is the autoreset step
    (agent acted on A's final obs, reward 0, valid False); episode B at t = 3, 4 runs on;
    values[5] = V(obs after the rollout) = 0.6. values[2] = V(A's final obs) = 7."""
    ended = column(0, 1, 0, 0, 0)
    return dict(rewards=column(1, 1, 0, 1, 1), values=column(0.5, 0.4, 7.0, 0.2, 0.1, 0.6),
                terminated=ended if end_of_first_episode == "terminated" else column(0, 0, 0, 0, 0),
                truncated=ended if end_of_first_episode == "truncated" else column(0, 0, 0, 0, 0),
                valid=column(1, 1, 0, 1, 1), gamma=GAMMA, gae_lambda=LAM)


def test_rollout_crossing_episode_boundary_masks_reset_step_and_cuts_lambda_chain():
    adv = gae(**crossing_rollout("terminated"))
    # B: delta4 = 1 + 0.9*0.6 - 0.1 = 1.44; A3 = (1 + 0.9*0.1 - 0.2) + 0.72*1.44 = 1.9268
    # reset step: 0. A: A1 = 1 - 0.4 = 0.6 (no bootstrap, no chain into B); A0 = 0.86 + 0.72*0.6
    np.testing.assert_allclose(adv, [1.292, 0.6, 0.0, 1.9268, 1.44])


def test_truncation_at_boundary_bootstraps_final_obs_value_not_next_episode():
    adv = gae(**crossing_rollout("truncated"))
    # A1 = 1 + 0.9*7 - 0.4 = 6.9 (V of A's final obs, not of B's first); A0 = 0.86 + 0.72*6.9
    np.testing.assert_allclose(adv, [5.828, 6.9, 0.0, 1.9268, 1.44])


def test_multi_env_columns_are_independent():
    term = crossing_rollout("terminated")
    trunc = crossing_rollout("truncated")
    stacked = {k: np.stack([term[k], trunc[k]], axis=1) for k in
               ("rewards", "values", "terminated", "truncated", "valid")}
    adv = gae(**stacked, gamma=GAMMA, gae_lambda=LAM)
    assert adv.shape == (5, 2)
    np.testing.assert_allclose(adv[:, 0], gae(**term))
    np.testing.assert_allclose(adv[:, 1], gae(**trunc))


@pytest.mark.parametrize("bad_step", [0, 2])
def test_invalid_step_gets_zero_advantage(bad_step):
    valid = np.ones(4, dtype=bool)
    valid[bad_step] = False
    adv = gae(np.ones(4), np.ones(5), np.zeros(4), np.zeros(4), valid, GAMMA, LAM)
    assert adv[bad_step] == 0.0
