"""Network building blocks shared by the algorithm files (plumbing, not losses)."""
from __future__ import annotations

import math

import torch
from torch import nn


def mlp(
    sizes: list[int],
    activation: type[nn.Module] = nn.Tanh,
    orthogonal: bool = True,
    output_gain: float = 1.0,
) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last).

    With ``orthogonal`` (the default), weights get orthogonal initialization
    with gain sqrt(2) for hidden layers and ``output_gain`` for the last one,
    biases zero: the scheme of the OpenAI baselines implementations, studied
    in Andrychowicz et al. 2021 ("What matters in on-policy RL", decision C57)
    and Huang et al. 2022 ("The 37 implementation details of PPO", detail 2).
    Policy heads use gain 0.01 so the initial policy is near uniform.
    """
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        if orthogonal:
            nn.init.orthogonal_(linear.weight, output_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


def flat_params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.data.reshape(-1) for p in module.parameters()])


def set_flat_params(module: nn.Module, flat: torch.Tensor) -> None:
    offset = 0
    for p in module.parameters():
        n = p.numel()
        p.data.copy_(flat[offset:offset + n].view_as(p))
        offset += n


def grad_norm(parameters) -> torch.Tensor:
    """Global L2 norm of the parameters' gradients, before any clipping (0 if none has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads, foreach=True)
