"""Network building blocks shared by the algorithm files (plumbing, not losses)."""
from __future__ import annotations

import math

import numpy as np
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


_NUMPY_ACTIVATIONS = {nn.Tanh: np.tanh, nn.ReLU: lambda x: np.maximum(x, 0.0)}


def _numpy_linear(linear: nn.Linear):
    weight_t = linear.weight.detach().numpy().T  # views: they follow in-place updates
    if linear.bias is None:
        return lambda x: x @ weight_t
    bias = linear.bias.detach().numpy()
    return lambda x: x @ weight_t + bias


def numpy_forward(net: nn.Module):
    """The forward pass of an ``mlp`` in numpy on views of its parameters, or None for other nets.

    For the rollout, which calls the policy on N rows once per env step: a
    64-64 MLP costs about 30 microseconds per call through torch's modules and
    dispatch (bench/profile_ppo.py), about 8 in numpy. The arrays share memory
    with the parameters, so in-place updates (every optimizer here) show
    through; take a fresh one after anything that replaces a parameter's
    storage. Float32 throughout; the numbers can differ from torch's in the
    last bits, which is why the update recomputes log-probs in torch.
    """
    if not isinstance(net, nn.Sequential):
        return None
    layers = []
    for module in net:
        if isinstance(module, nn.Linear):
            layers.append(_numpy_linear(module))
        elif type(module) in _NUMPY_ACTIVATIONS:
            layers.append(_NUMPY_ACTIVATIONS[type(module)])
        else:
            return None

    def forward(x: np.ndarray) -> np.ndarray:
        for layer in layers:
            x = layer(x)
        return x

    return forward


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


def clip_grad_norm(actor_params, critic_params=(), *, max_norm: float) -> torch.Tensor:
    """Clip all gradients together to a global L2 norm of ``max_norm``; return the actor's norm before.

    Without ``critic_params`` it clips one network (REINFORCE's actor; A3C calls it once per network).

    The same arithmetic as ``torch.nn.utils.clip_grad_norm_(actor + critic, max_norm,
    foreach=True)``, with the logged ``grad_norm`` (the actor's share, docs/README.md)
    read from the per-tensor norms the clip computes anyway instead of a second pass:
    about 0.1 ms less per minibatch step of PPO's MuJoCo update (bench/profile_ppo.py).
    """
    actor_grads = [p.grad for p in actor_params if p.grad is not None]
    grads = actor_grads + [p.grad for p in critic_params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)  # what clip_grad_norm_ calls: one kernel over all tensors
    actor_norm = torch.linalg.vector_norm(torch.stack(norms[:len(actor_grads)])) if actor_grads else torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack(norms))
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp(max=1.0))
    return actor_norm
