"""What one A3C worker update costs, and what a3c.py's flat parameters save.

    python bench/a3c_update.py                   # Hopper-v5 sizes: obs 11, actions 3, 64x64, t_max 5
    python bench/a3c_update.py --obs 2 --actions 3 --discrete --num-steps 5   # MountainCar-v0 sizes

With t_max = 5 (the MuJoCo presets and most classic and Box2D ones) a worker updates
every five environment steps, and an update of two 64x64 MLPs is a few dozen small
torch ops of ~10 us each: the update, not the environment, sets a worker's speed.
a3c.py keeps the actor's and the critic's parameters as views of one tensor
(``flat_parameters``), globally and in each worker, so that

- step 1, the copy of the global parameters into the worker's networks, is one
  ``copy_`` instead of ``load_state_dict(state_dict())`` per network;
- step 5, the shared Adam step, is eight ops on one tensor (after one ``cat`` of the
  gradients) instead of a loop of three in-place ops per parameter.

This script times both pieces and the whole update (steps 1, 3-5 of the worker: copy,
loss, backward, the two clips, Adam, the logged KL) the way a3c.py does them and the way
it did before, interleaved in one process so that a busy machine slows both sides
alike, and prints the median microseconds per call and the ratio. It also checks that
both Adam paths give bit-identical parameters from the same gradients. No environment
is stepped: the segment is random.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import a3c  # noqa: E402
from rlsuite.nets import clip_grad_norm  # noqa: E402
from rlsuite.policy import approx_kl  # noqa: E402


def loop_adam_step(opt: a3c.SharedAdam, grads, lr: float) -> None:
    """The shared Adam step as it was: three in-place ops per parameter tensor."""
    beta1, beta2 = opt.betas
    with torch.no_grad():
        opt.step_count += 1
        t = float(opt.step_count)
        bias1, bias2 = 1 - beta1 ** t, 1 - beta2 ** t
        for p, g, m, v in zip(opt.params, grads, opt.exp_avg, opt.exp_avg_sq):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v / bias2).sqrt_().add_(opt.eps), value=-lr / bias1)


def build(args, flat: bool, seed: int = 0):
    """The global actor and critic, a worker's local copies and the shared Adam: as a3c.py has
    them (``flat``: each pair's parameters views of one tensor) or as it had them."""
    torch.manual_seed(seed)
    cfg = a3c.A3CConfig(num_steps=args.num_steps)
    n_actions, action_dim = (args.actions, None) if args.discrete else (None, args.actions)
    nets = [a3c.build_actor(args.obs, n_actions, cfg, action_dim=action_dim), a3c.build_critic(args.obs, cfg),
            a3c.build_actor(args.obs, n_actions, cfg, action_dim=action_dim), a3c.build_critic(args.obs, cfg)]
    if flat:
        shared, local = a3c.flat_parameters(*nets[:2]), a3c.flat_parameters(*nets[2:])
        opt = a3c.SharedAdam([shared], eps=cfg.adam_eps)
    else:
        shared = local = None
        opt = a3c.SharedAdam(list(nets[0].parameters()) + list(nets[1].parameters()), eps=cfg.adam_eps)
    return cfg, nets, shared, local, opt


def segment(args, rng):
    obs = torch.as_tensor(rng.standard_normal((args.num_steps, args.obs)), dtype=torch.float32)
    if args.discrete:
        actions = torch.as_tensor(rng.integers(0, args.actions, args.num_steps))
    else:
        actions = torch.as_tensor(rng.standard_normal((args.num_steps, args.actions)), dtype=torch.float32)
    returns = torch.as_tensor(rng.standard_normal(args.num_steps), dtype=torch.float32)
    return obs, actions, returns


def copier(nets, shared, local):
    """Step 1: the worker's networks take the global parameters."""
    if shared is None:
        def copy() -> None:
            nets[2].load_state_dict(nets[0].state_dict())
            nets[3].load_state_dict(nets[1].state_dict())
    else:
        def copy() -> None:
            with torch.no_grad():
                local.copy_(shared)
    return copy


def stepper(nets, shared, opt):
    """Step 5: the local gradients into the shared Adam."""
    params = list(nets[2].parameters()) + list(nets[3].parameters())
    if shared is None:
        return lambda lr: loop_adam_step(opt, [p.grad for p in params], lr)
    return lambda lr: opt.step([torch.cat([p.grad.reshape(-1) for p in params])], lr)


def make_update(cfg, nets, shared, local, opt):
    """Steps 1 and 3-5 of a3c.worker on a given segment."""
    shared_actor, actor, critic = nets[0], nets[2], nets[3]
    actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
    copy, step = copier(nets, shared, local), stepper(nets, shared, opt)

    def update(obs_t, actions_t, returns) -> None:
        copy()
        dist = actor.dist(obs_t)
        logp = dist.log_prob(actions_t)
        entropy = dist.entropy().mean()
        values = critic(obs_t).squeeze(-1)
        policy_loss = a3c.policy_loss_fn(logp, returns - values.detach())
        value_loss = 0.5 * (values - returns).square().mean()
        loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
        for p in actor_params + critic_params:
            p.grad = None
        loss.backward()
        clip_grad_norm(actor_params, max_norm=cfg.max_grad_norm)
        clip_grad_norm(critic_params, max_norm=cfg.max_grad_norm)
        step(1e-6)
        with torch.no_grad():
            approx_kl(shared_actor.dist(obs_t).log_prob(actions_t) - logp.detach()).item()
    return update


def timed(fn, calls: int) -> float:
    """Microseconds per call over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def compare(name: str, old, new, rounds: int, calls: int) -> None:
    olds, news = [], []
    for _ in range(rounds):  # interleaved: a busy machine slows both sides alike
        olds.append(timed(old, calls))
        news.append(timed(new, calls))
    o, n = statistics.median(olds), statistics.median(news)
    print(f"{name:40s} before {o:8.1f} us   a3c.py {n:8.1f} us   ratio {o / n:4.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obs", type=int, default=11)
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--discrete", action="store_true")
    parser.add_argument("--num-steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    kind = f"{args.actions} discrete actions" if args.discrete else f"{args.actions}-dim Gaussian"
    print(f"A3C update, obs {args.obs}, {kind}, 64x64 tanh MLPs, t_max {args.num_steps}, torch {torch.__version__}, "
          f"median of {args.rounds} interleaved rounds of {args.calls} calls")

    old, new = build(args, flat=False), build(args, flat=True)
    rng = np.random.default_rng(0)
    obs_t, actions_t, returns = segment(args, rng)

    # Both Adam paths give the same parameters, to the bit, from the same gradients.
    for cfg, nets, shared, local, opt in (old, new):
        params = list(nets[2].parameters()) + list(nets[3].parameters())
        g = np.random.default_rng(1)
        for _ in range(20):
            for p in params:
                p.grad = torch.as_tensor(g.standard_normal(tuple(p.shape)), dtype=torch.float32)
            stepper(nets, shared, opt)(7e-4)
    same = all(torch.equal(p, q) for p, q in zip(list(old[1][0].parameters()) + list(old[1][1].parameters()),
                                                 list(new[1][0].parameters()) + list(new[1][1].parameters())))
    print(f"shared Adam, before and a3c.py: parameters bit-identical after 20 steps: {same}")

    compare("step 1: copy the global parameters", copier(*old[1:4]), copier(*new[1:4]), args.rounds, args.calls)
    compare("step 5: shared Adam step (with the cat)", lambda: stepper(old[1], old[2], old[4])(1e-9),
            lambda: stepper(new[1], new[2], new[4])(1e-9), args.rounds, args.calls)
    before, after = make_update(old[0], *old[1:]), make_update(new[0], *new[1:])
    compare("whole update (steps 1, 3-5)", lambda: before(obs_t, actions_t, returns),
            lambda: after(obs_t, actions_t, returns), args.rounds, args.calls // 2)


if __name__ == "__main__":
    main()
