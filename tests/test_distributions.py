"""The action distributions against torch.distributions, and the actor that produces them."""
import dataclasses
import importlib

import numpy as np
import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Independent, Normal, kl_divergence

from rlsuite import algorithms
from rlsuite.distributions import SDE_EPSILON, Actor, Categorical, DiagGaussian, sde_log_std
from rlsuite.nets import clip_grad_norm, mlp, numpy_forward


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_categorical_log_prob_entropy_and_kl_match_torch(gen):
    logits, other = torch.randn(6, 4, generator=gen) * 3, torch.randn(6, 4, generator=gen)
    actions = torch.randint(0, 4, (6,), generator=gen)
    ours, theirs = Categorical(logits), TorchCategorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), theirs.entropy())
    torch.testing.assert_close(ours.kl(Categorical(other)), kl_divergence(theirs, TorchCategorical(logits=other)))
    assert torch.equal(ours.mode(), logits.argmax(dim=-1))


def test_diagonal_gaussian_log_prob_entropy_and_kl_match_torch(gen):
    mean, log_std = torch.randn(5, 3, generator=gen), torch.randn(3, generator=gen) * 0.5
    mean2, log_std2 = torch.randn(5, 3, generator=gen), torch.randn(3, generator=gen) * 0.5
    actions = torch.randn(5, 3, generator=gen) * 2
    ours = DiagGaussian(mean, log_std)
    theirs = Independent(Normal(mean, log_std.exp().expand_as(mean)), 1)
    other = Independent(Normal(mean2, log_std2.exp().expand_as(mean2)), 1)
    torch.testing.assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), theirs.entropy())
    torch.testing.assert_close(ours.kl(DiagGaussian(mean2, log_std2)), kl_divergence(theirs, other))
    assert torch.equal(ours.mode(), mean)


def test_samples_follow_the_distribution():
    torch.manual_seed(0)
    counts = torch.bincount(Categorical(torch.log(torch.tensor([[0.2, 0.8]])).expand(20000, 2)).sample(),
                            minlength=2)
    assert counts[1].item() / 20000 == pytest.approx(0.8, abs=0.02)
    draws = DiagGaussian(torch.full((20000, 1), 3.0), torch.log(torch.tensor([0.5]))).sample()
    assert draws.mean().item() == pytest.approx(3.0, abs=0.02)
    assert draws.std().item() == pytest.approx(0.5, abs=0.02)


def test_kl_of_a_distribution_to_itself_is_zero(gen):
    logits = torch.randn(4, 3, generator=gen)
    torch.testing.assert_close(Categorical(logits).kl(Categorical(logits)), torch.zeros(4))
    g = DiagGaussian(torch.randn(4, 2, generator=gen), torch.zeros(2))
    torch.testing.assert_close(g.kl(g), torch.zeros(4))


def test_gaussian_actor_learns_a_state_independent_log_std_starting_at_zero():
    actor = Actor(torch.nn.Linear(3, 2), action_dim=2)
    dist = actor.dist(torch.zeros(5, 3))
    assert isinstance(dist, DiagGaussian)
    torch.testing.assert_close(dist.log_std, torch.zeros(5, 2))
    dist.log_prob(torch.ones(5, 2)).sum().backward()
    assert actor.log_std.grad is not None
    assert isinstance(Actor(torch.nn.Linear(3, 2)).dist(torch.zeros(1, 3)), Categorical)


def test_log_std_init_sets_the_starting_sigma_of_every_dimension_and_stays_learnable():
    actor = Actor(torch.nn.Linear(3, 2), action_dim=2, log_std_init=-2.0)
    dist = actor.dist(torch.zeros(4, 3))
    torch.testing.assert_close(dist.log_std, torch.full((4, 2), -2.0))
    # H = sum_i [log sigma_i + (1 + log 2 pi) / 2] = 2 * (-2 + 1.4189385) for two dimensions
    torch.testing.assert_close(dist.entropy(), torch.full((4,), 2 * (-2.0 + 1.4189385)))
    dist.log_prob(torch.ones(4, 2)).sum().backward()
    assert actor.log_std.grad is not None
    assert Actor(torch.nn.Linear(3, 2), log_std_init=-2.0).log_std is None  # Discrete: no sigma


@pytest.mark.parametrize("module", ["a2c", "a3c", "ppo", "trpo", "policy_gradient"])
def test_every_algorithm_starts_its_gaussian_at_the_configs_log_std_init(module):
    mod = importlib.import_module(module)
    cfg_cls = next(v for k, v in vars(mod).items() if k.endswith("Config") and hasattr(v, "log_std_init"))
    assert cfg_cls().log_std_init == 0.0  # sigma = 1, as before the field existed
    actor = mod.build_actor(4, None, dataclasses.replace(cfg_cls(), log_std_init=-1.5), action_dim=3)
    torch.testing.assert_close(actor.log_std.data, torch.full((3,), -1.5))


@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.ReLU])
def test_numpy_forward_matches_the_torch_mlp_and_follows_in_place_updates(activation, gen):
    net = mlp([5, 16, 16, 3], activation=activation)
    forward = numpy_forward(net)
    obs = torch.randn(7, 5, generator=gen)
    np.testing.assert_allclose(forward(obs.numpy()), net(obs).detach().numpy(), rtol=1e-5, atol=1e-6)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    net(obs).square().sum().backward()
    optimizer.step()  # in place: the numpy views see the new weights
    np.testing.assert_allclose(forward(obs.numpy()), net(obs).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_numpy_forward_declines_a_network_it_cannot_run():
    assert numpy_forward(torch.nn.Linear(3, 2)) is None
    assert numpy_forward(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softplus())) is None


@pytest.mark.parametrize("action_dim, n_out", [(None, 4), (3, 3)])
def test_sampler_draws_what_dist_sample_draws_for_the_same_seed(action_dim, n_out):
    actor = Actor(mlp([5, 16, n_out]), action_dim=action_dim)
    if action_dim:
        torch.nn.init.normal_(actor.log_std)
    obs = torch.randn(64, 5)
    torch.manual_seed(3)
    with torch.no_grad():
        expected = actor.dist(obs).sample().numpy()
    torch.manual_seed(3)
    sampled = actor.sampler()(obs.numpy())
    assert isinstance(sampled, np.ndarray) and sampled.shape == expected.shape
    if action_dim:  # numpy's float32 matmul may differ from torch's in the last bits
        np.testing.assert_allclose(sampled, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(sampled, expected)


@pytest.mark.parametrize("max_norm", [0.05, 1e3])  # clipping, and a bound the gradient is under
def test_clip_grad_norm_clips_as_torch_does_and_reports_the_actors_norm_before(max_norm, gen):
    actor, critic = mlp([4, 8, 2]), mlp([4, 8, 1])
    twins = mlp([4, 8, 2]), mlp([4, 8, 1])
    for net, twin in zip((actor, critic), twins):
        twin.load_state_dict(net.state_dict())
    obs = torch.randn(16, 4, generator=gen)
    for a, c in ((actor, critic), twins):
        (a(obs).square().sum() + c(obs).sum()).backward()
    expected_norm = torch.nn.utils.get_total_norm([p.grad for p in twins[0].parameters()])
    torch.nn.utils.clip_grad_norm_([*twins[0].parameters(), *twins[1].parameters()], max_norm, foreach=True)
    norm = clip_grad_norm(list(actor.parameters()), list(critic.parameters()), max_norm=max_norm)
    torch.testing.assert_close(norm, expected_norm)
    for p, q in zip([*actor.parameters(), *critic.parameters()], [*twins[0].parameters(), *twins[1].parameters()]):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)
    if max_norm < 1:  # the gradients were above the bound: clipped onto it
        total = torch.nn.utils.get_total_norm([p.grad for p in [*actor.parameters(), *critic.parameters()]])
        assert float(total) == pytest.approx(max_norm, rel=1e-4)


def test_a_sampler_follows_in_place_updates_of_the_mean_and_of_log_std():
    actor = Actor(mlp([3, 8, 2]), action_dim=2)
    sample = actor.sampler()  # taken once, as REINFORCE and the A3C workers do
    obs = np.zeros((1000, 3), dtype=np.float32)
    with torch.no_grad():
        actor.net[-1].bias.fill_(4.0)
        actor.log_std.fill_(np.log(0.01))
    actions = sample(obs)
    np.testing.assert_allclose(actions.mean(axis=0), [4.0, 4.0], atol=0.01)
    np.testing.assert_allclose(actions.std(axis=0), [0.01, 0.01], rtol=0.1)


# -- gSDE (generalized state-dependent exploration, Raffin, Kober and Stulp 2021) ----------

def test_sde_log_std_against_a_hand_computed_variance():
    # z = (1, 2); sigma = [[0.5, 1], [1, 0.25]]: var_0 = 1 * 0.25 + 4 * 1 = 4.25, var_1 = 1 * 1 + 4 * 0.0625 = 1.25
    latent = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    log_std = torch.log(torch.tensor([[0.5, 1.0], [1.0, 0.25]]))
    expected = 0.5 * torch.log(torch.tensor([[4.25, 1.25], [0.0, 0.0]]) + SDE_EPSILON)
    torch.testing.assert_close(sde_log_std(latent, log_std), expected)


def _sde_actor(obs_dim=3, action_dim=2, log_std_init=0.0, sde_sample_freq=0):
    return Actor(mlp([obs_dim, 8, 8, action_dim], output_gain=1.0), action_dim=action_dim,
                 log_std_init=log_std_init, use_sde=True, sde_sample_freq=sde_sample_freq)


def test_sde_actor_has_a_matrix_of_log_stds_over_the_last_hidden_features():
    actor = _sde_actor(log_std_init=-2.0)
    torch.testing.assert_close(actor.log_std.data, torch.full((8, 2), -2.0))
    obs = torch.randn(5, 3)
    dist = actor.dist(obs)
    latent = actor.net[:-1](obs)
    torch.testing.assert_close(dist.mean, actor(obs))
    torch.testing.assert_close(dist.log_std, sde_log_std(latent, actor.log_std))
    # sigma depends on the state: two different states, two different sigmas
    assert not torch.allclose(dist.log_std[0], dist.log_std[1])
    # the features learn through the mean only; sigma's gradient reaches log_std alone
    dist.entropy().sum().backward()
    assert actor.log_std.grad is not None and actor.log_std.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in actor.net.parameters())


def test_sde_sampler_noise_has_the_variance_the_update_scores_it_with():
    torch.manual_seed(0)
    actor = _sde_actor(log_std_init=-1.0)
    obs = np.tile(np.float32([[0.3, -0.7, 1.1]]), (20000, 1))  # one state, 20,000 envs: 20,000 matrices W
    actions = actor.sampler()(obs)
    with torch.no_grad():
        dist = actor.dist(torch.from_numpy(obs[:1]))
    np.testing.assert_allclose(actions.mean(axis=0), dist.mean[0].numpy(), atol=0.03 * dist.log_std.exp().max().item())
    np.testing.assert_allclose(actions.std(axis=0), dist.log_std[0].exp().numpy(), rtol=0.03)


def test_sde_noise_is_held_for_the_rollout_and_redrawn_every_sde_sample_freq_steps():
    torch.manual_seed(0)
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    held = _sde_actor()
    sample = held.sampler()
    first = sample(obs)
    np.testing.assert_array_equal(sample(obs), first)  # the same W: the same action for the same state
    assert not np.allclose(held.sampler()(obs), first)  # a new rollout, a new W
    every_2 = _sde_actor(sde_sample_freq=2)
    sample = every_2.sampler()
    a, b, c = sample(obs), sample(obs), sample(obs)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(b, c)


def test_sde_sampler_without_noise_plays_the_mean():
    actor = _sde_actor(log_std_init=-30.0)  # sigma = 1e-13: W is 0 to float32
    obs = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    with torch.no_grad():
        mean = actor(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(actor.sampler()(obs), mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module", ["a2c", "a3c", "ppo", "trpo"])
def test_the_actor_critic_algorithms_build_a_gsde_actor_from_their_config(module):
    mod = importlib.import_module(module)
    cfg_cls = algorithms.get(module).config_class()
    assert cfg_cls().use_sde is False and cfg_cls().sde_sample_freq == 0
    cfg = dataclasses.replace(cfg_cls(), use_sde=True, sde_sample_freq=4, log_std_init=-2.0)
    actor = mod.build_actor(4, None, cfg, action_dim=3)
    assert actor.use_sde and actor.sde_sample_freq == 4
    torch.testing.assert_close(actor.log_std.data, torch.full((cfg.hidden_sizes[-1], 3), -2.0))
    assert mod.build_actor(4, 2, cfg).log_std is None  # Discrete: no sigma (the runner refuses --use-sde)
