"""The action distributions against torch.distributions, and the actor that produces them."""
import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Independent, Normal, kl_divergence

from rlsuite.distributions import Actor, Categorical, DiagGaussian


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
