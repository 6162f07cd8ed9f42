"""RLHF on a laptop: PPO on a tiny language model against a learned reward, with a KL leash.

The last chapter of the docs (docs/08_ppo_in_rlhf.md) made executable, on CPU, in
about two minutes. The four stages of InstructGPT (Ouyang et al. 2022, fig. 2)
and of Stiennon et al. (2020), at toy scale:

1. SFT. A one-layer GRU language model learns, by next-token cross-entropy,
   a corpus of short "reviews" that a grammar generates:

       <film> the plot was superb . the cast was not dull . <eos>

   The prompt is a topic token; the response is one to four sentences. The
   trained model is frozen as the reference policy pi_ref = pi_SFT.
2. Reward model. Pairs of SFT responses to one prompt are labelled by a hidden
   "true" score (``true_score``), a fraction of the labels flipped, and a GRU
   with a scalar head r_phi(x, y) is fitted with the Bradley-Terry loss
   -log sigma(r(x, y_w) - r(x, y_l)) (``bradley_terry_loss``). It sees only what
   the SFT model writes, so it learns "positive words are good" well and the
   rule's penalties for repeats, a fourth sentence and broken grammar poorly:
   an imperfect proxy, as every learned reward is.
3. PPO. State s_t = prompt + tokens so far, action = next token. Each response
   earns the reward model's score at its last token and -beta log(pi/pi_ref) at
   every token (``per_token_rewards``; Ziegler et al. 2019, eq. 2; Stiennon et
   al. 2020, eq. 1). A separate critic GRU, initialized from the reward model,
   gives V(s_t); GAE over the tokens with nothing bootstrapped past the last one
   (``token_advantages``); the clipped surrogate of ppo.py over minibatch epochs.
4. Over-optimization. The same PPO run for several beta (0 included), each
   logging proxy (reward-model) score, true score and KL to pi_ref per update:
   with beta = 0 the proxy keeps rising while the true score turns down as KL
   grows (Gao et al. 2023), with the leash both rise.

Everything a run writes goes to RESULTS_DIR/kl_coef_<beta>/seed_<seed>/:

    config.json              the resolved config and seed
    sft.csv                  per SFT epoch: train and held-out cross-entropy
    reward_model.csv         per RM epoch: Bradley-Terry loss, held-out accuracy
    ppo_kl_<b>/updates.csv   per PPO update (UPDATE_COLUMNS), one folder per beta
    samples.md               responses of pi_SFT and of the PPO policy to the same prompts
    overoptimization.png     proxy and true score against KL, one curve per beta
    summary.json             the figures of the closing table, written last

    python rlhf_toy.py                      # seed 1, beta 0.05, sweep 0,0.05,0.2
    python rlhf_toy.py --kl-coef 0          # reward hacking
    python rlhf_toy.py --write-docs         # docs/08's "Run it" section from seeds 1-3

Reused from the suite, not copied: ``ppo.clipped_surrogate_loss``,
``ppo.value_loss_fn``, ``rlsuite.returns.gae`` and ``normalize``,
``rlsuite.policy.approx_kl`` and ``explained_variance``,
``rlsuite.distributions.Categorical``, the CLI helpers and ``CsvLog``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import re
import shutil
import signal
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ppo import clipped_surrogate_loss, value_loss_fn
from rlsuite.cli import (DefaultsFormatter, OneLineParser, UsageError, check_value, check_writable,
                         create_folder, field_docs, finite_float, flag, positive_int)
from rlsuite.distributions import Categorical
from rlsuite.policy import approx_kl, explained_variance
from rlsuite.records import CsvLog, write_json_atomic
from rlsuite.returns import gae, normalize

ROOT = Path(__file__).resolve().parent
PROG = "rlhf_toy.py"

# -- the grammar, the corpus and the hidden true score ---------------------------------------

PAD, EOS = "<pad>", "<eos>"
TOPICS = {"<film>": ("plot", "cast", "music"),
          "<book>": ("story", "prose", "ending"),
          "<meal>": ("soup", "bread", "service")}
POSITIVE = ("good", "great", "superb", "lovely")
NEGATIVE = ("bad", "dull", "awful", "bland")
FUNCTION_WORDS = ("the", "was", "not", ".")
GRAMMAR_TOKENS = (PAD, EOS, *TOPICS, *FUNCTION_WORDS, *(n for ns in TOPICS.values() for n in ns),
                  *POSITIVE, *NEGATIVE)
SENTENCE_WEIGHTS = (0.3, 0.35, 0.3, 0.05)
"""P(a corpus review has 1, 2, 3, 4 sentences): a fourth is rare, so the reward model hardly
sees the rule's verbosity penalty (the gap PPO finds without a KL leash)."""
NOT_PROB = 0.2
MAX_SENTENCES = 3


class Vocab:
    """Token <-> id. Ids past the grammar's are never in the corpus (like a tokenizer's unused rows)."""

    def __init__(self, size: int):
        self.size = size
        self.tokens = list(GRAMMAR_TOKENS) + [f"<unused{i}>" for i in range(size - len(GRAMMAR_TOKENS))]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.eos = self.ids[PAD], self.ids[EOS]
        self.prompts = [self.ids[t] for t in TOPICS]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            if i == self.pad:
                break
            out.append(self.tokens[i])
        return " ".join(out)


def generate_review(rng: np.random.Generator, topic: str) -> list[str]:
    """One corpus response: 1-4 sentences 'the NOUN was [not] ADJ .', nouns and adjectives drawn
    with replacement (so the corpus holds some repeats), then <eos>."""
    words = []
    for _ in range(rng.choice(len(SENTENCE_WEIGHTS), p=SENTENCE_WEIGHTS) + 1):
        words += ["the", str(rng.choice(TOPICS[topic])), "was"]
        if rng.random() < NOT_PROB:
            words.append("not")
        words += [str(rng.choice(POSITIVE + NEGATIVE)), "."]
    return words + [EOS]


def true_score(prompt: str, response: list[str]) -> float:
    """The hidden rule that labels the preference pairs (the "humans" of this toy).

    Each sentence of the response earns its sentiment, +1 for a positive
    adjective and -1 for a negative one ('not' flips it), if it is well formed
    ('the NOUN was [not] ADJ .' with a noun of the prompt's topic) and repeats
    neither a noun nor an adjective of an earlier sentence; a repeat or a
    broken sentence costs 1, and so does every sentence after the third and a
    response cut off before <eos>. The best response praises each of the
    topic's three nouns with three different adjectives: a score of 3.
    """
    words = list(response)
    finished = EOS in words
    if finished:
        words = words[:words.index(EOS)]
    score = 0.0 if finished else -1.0
    sentences, current = [], []
    for w in words:
        current.append(w)
        if w == ".":
            sentences.append(current)
            current = []
    if current:  # trailing words without a full stop: a broken sentence
        sentences.append(current)
    seen = set()
    for i, s in enumerate(sentences):
        if i >= MAX_SENTENCES:
            score -= 1.0
            continue
        negated = len(s) == 6 and s[3] == "not"
        adjective = s[4 if negated else 3] if len(s) in (5, 6) else None
        well_formed = (len(s) in (5, 6) and s[0] == "the" and s[1] in TOPICS[prompt] and s[2] == "was"
                       and adjective in POSITIVE + NEGATIVE and s[-1] == ".")
        if not well_formed:
            score -= 1.0
        elif s[1] in seen or adjective in seen:
            score -= 1.0
        else:
            score += (1.0 if adjective in POSITIVE else -1.0) * (-1.0 if negated else 1.0)
        if well_formed:
            seen.update((s[1], adjective))
    return score


def true_scores(vocab: Vocab, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    return torch.tensor([true_score(vocab.tokens[p], vocab.decode(r).split())
                         for p, r in zip(prompts.tolist(), responses.tolist())])


# -- the networks -------------------------------------------------------------------------

class TokenGRU(nn.Module):
    """Embedding -> one GRU layer -> a linear head at every position.

    With ``out_dim`` = vocabulary size it is the language model pi(y_t | x, y_<t)
    (logits at position t predict token t + 1); with ``out_dim`` = 1 it is the
    reward model (read at the last token) or the critic V(s_t) (read at every
    position). The three share the architecture so that the reward model can
    start from the SFT model and the critic from the reward model, as in
    Ouyang et al. (2022, sec. 3.5) and Stiennon et al. (2020, sec. 3.4).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, out_dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, out_dim)

    def forward(self, tokens: torch.Tensor, hidden=None):
        out, hidden = self.gru(self.embed(tokens), hidden)
        return self.head(out), hidden

    def with_new_head(self, out_dim: int) -> "TokenGRU":
        """A copy of the trunk (embedding and GRU) with a fresh head of ``out_dim`` outputs."""
        clone = copy.deepcopy(self)
        clone.head = nn.Linear(self.head.in_features, out_dim)
        nn.init.zeros_(clone.head.weight)
        nn.init.zeros_(clone.head.bias)
        return clone


@torch.no_grad()
def sample_responses(policy: TokenGRU, prompts: torch.Tensor, max_new_tokens: int, vocab: Vocab):
    """y ~ pi(.|x) token by token (the rollout); positions after <eos> hold <pad>.

    Returns (responses (B, T) of token ids, lengths (B,) counting the <eos>). A
    response that reaches ``max_new_tokens`` without <eos> ends there: a
    truncation that is treated as the end of the episode, as RLHF
    implementations do (Huang et al. 2024, docs/08 section 4).
    """
    batch = len(prompts)
    responses = torch.full((batch, max_new_tokens), vocab.pad, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    lengths = torch.full((batch,), max_new_tokens, dtype=torch.long)
    token, hidden = prompts[:, None], None
    for t in range(max_new_tokens):
        logits, hidden = policy(token, hidden)
        token = Categorical(logits[:, -1]).sample()
        token = torch.where(done, torch.full_like(token, vocab.pad), token)
        responses[:, t] = token
        ended = ~done & (token == vocab.eos)
        lengths[ended] = t + 1
        done |= ended
        if done.all():
            responses = responses[:, :t + 1]
            break
        token = token[:, None]
    return responses, lengths


def response_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """True at the response's tokens (its <eos> included), False on the padding after it."""
    return torch.arange(width)[None, :] < lengths[:, None]


def token_dists(model: TokenGRU, prompts: torch.Tensor, responses: torch.Tensor) -> Categorical:
    """pi(.|s_t) for t = 1..T: the logits at the positions that predict each response token."""
    logits, _ = model(torch.cat([prompts[:, None], responses], dim=1)[:, :-1])
    return Categorical(logits)


def token_values(critic: TokenGRU, prompts: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """V(s_t) for t = 1..T, s_t = the prompt and the response tokens before y_t."""
    out, _ = critic(torch.cat([prompts[:, None], responses], dim=1)[:, :-1])
    return out.squeeze(-1)


def reward_scores(reward_model: TokenGRU, prompts, responses, lengths) -> torch.Tensor:
    """r_phi(x, y): the scalar head at the response's last token (its <eos>, or the last
    token of a truncated response), the reading position of Stiennon et al. (2020)."""
    out, _ = reward_model(torch.cat([prompts[:, None], responses], dim=1))
    return out.squeeze(-1).gather(1, lengths[:, None]).squeeze(1)


# -- the losses and the per-token reward (pure; unit-tested by hand) -----------------------

def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """-E[log sigma(r(x, y_w) - r(x, y_l))] (Stiennon et al. 2020, eq. 1; Ouyang et al. 2022,
    eq. 1); softplus(-d) is -log sigma(d) without overflow."""
    return nn.functional.softplus(rejected - chosen).mean()


def per_token_rewards(scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor,
                      mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """r_t = -beta log(pi(y_t|s_t) / pi_ref(y_t|s_t)) at every response token, plus r_phi(x, y)
    at the last one (Ziegler et al. 2019, eq. 2; Stiennon et al. 2020, eq. 1, split per
    token as implementations do, Huang et al. 2024). Padding earns 0. Shapes (B, T), (B,)."""
    rewards = -kl_coef * (logp - ref_logp) * mask
    last = mask.sum(dim=1) - 1
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def token_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                     gamma: float, gae_lambda: float) -> torch.Tensor:
    """GAE(gamma, lambda) over the tokens of each response, with ``rlsuite.returns.gae``.

    A response is one episode that terminates at its last token: nothing is
    bootstrapped past it (V = 0 after the end) and the padding after it is
    not a transition (``valid`` False, advantage 0). Shapes (B, T) in, (B, T) out.
    """
    batch, width = rewards.shape
    last = mask.sum(dim=1) - 1
    terminated = torch.zeros(batch, width, dtype=torch.bool)
    terminated[torch.arange(batch), last] = True
    values_next = torch.cat([values, torch.zeros(batch, 1)], dim=1)  # V(s_{T+1}) is never used
    advantages = gae(rewards.T.numpy(), values_next.T.numpy(), terminated.T.numpy(),
                     np.zeros((width, batch), dtype=bool), mask.T.numpy(), gamma, gae_lambda)
    return torch.as_tensor(advantages.T, dtype=torch.float32)


# -- the configuration --------------------------------------------------------------------

@dataclass
class RLHFConfig:
    corpus_size: int = 3000
    """reviews in the synthetic SFT corpus (90% train, 10% held out)"""
    vocab_size: int = 32
    """V, rows of the embedding and of the LM's logits; the grammar needs 26, the rest are never
    in the corpus"""
    max_new_tokens: int = 28
    """T, the response length cap (the grammar's longest review is 25 tokens)"""
    embed_dim: int = 32
    """token embedding width of the policy, reward model and critic"""
    hidden_size: int = 64
    """GRU state width of the policy, reward model and critic"""
    sft_epochs: int = 6
    """passes over the corpus in supervised fine-tuning"""
    sft_learning_rate: float = 3e-3
    """Adam step size of SFT"""
    rm_pairs: int = 2000
    """preference pairs of SFT responses labelled by the hidden rule (80% train, 20% held out)"""
    rm_epochs: int = 8
    """passes over the training pairs in reward-model fitting"""
    rm_learning_rate: float = 2e-3
    """Adam step size of the reward model"""
    label_noise: float = 0.1
    """probability that a pair's label is flipped (Ouyang et al. 2022, sec. 5: their labellers agreed
    with each other ~73% of the time)"""
    ppo_updates: int = 100
    """PPO updates (rollouts) per beta"""
    batch_size: int = 64
    """responses per rollout, one prompt each"""
    minibatch_size: int = 16
    """responses per PPO minibatch (all tokens of a response stay together)"""
    update_epochs: int = 4
    """K, passes over the rollout per update (4, CleanRL's PPO default)"""
    learning_rate: float = 1e-3
    """Adam step size of the policy and critic in PPO"""
    clip_coef: float = 0.2
    """epsilon of the clipped surrogate (Schulman et al. 2017's 0.2)"""
    vf_coef: float = 0.5
    """c1, weight of the value loss"""
    max_grad_norm: float = 1.0
    """global gradient-norm clip over policy and critic"""
    gamma: float = 1.0
    """discount over tokens: 1, the episode is short and its reward comes at the end (Huang et al. 2024)"""
    gae_lambda: float = 0.95
    """lambda of GAE over tokens (Huang et al. 2024)"""
    kl_coef: float = 0.05
    """beta, weight of the per-token penalty log(pi/pi_ref); chosen here as the middle of the sweep,
    where the true score rises with the proxy on seeds 1-3"""
    sweep_kl_coefs: str = "0,0.05,0.2"
    """the betas of stage 4, comma-separated ('' skips it); --kl-coef's run is reused if listed"""
    eval_responses: int = 512
    """responses sampled from pi_SFT and from each final policy for the closing figures"""


def parse_betas(text: str) -> list[float]:
    betas = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            beta = float(part)
        except ValueError:
            raise UsageError(f"argument --sweep-kl-coefs: {part.strip()!r} is not a number; "
                             "give betas like 0,0.05,0.2") from None
        if not math.isfinite(beta) or beta < 0:
            raise UsageError(f"argument --sweep-kl-coefs: every beta must be >= 0, got {part.strip()}")
        betas.append(beta)
    return list(dict.fromkeys(betas))


def validate(cfg: RLHFConfig) -> None:
    """Every field acceptable, else UsageError with one line naming the flag."""
    hints = typing.get_type_hints(RLHFConfig)
    for f in dataclasses.fields(cfg):
        kind = {int: "int", float: "float", str: "str"}[hints[f.name]]
        if kind == "str":
            continue
        if f.name == "corpus_size" and cfg.corpus_size < 1:
            raise UsageError(f"argument --corpus-size: the SFT corpus would be empty; give a positive "
                             f"count, got {cfg.corpus_size}")
        check_value(f.name, getattr(cfg, f.name), kind)
    if cfg.vocab_size < len(GRAMMAR_TOKENS):
        raise UsageError(f"argument --vocab-size: the grammar needs {len(GRAMMAR_TOKENS)} tokens, "
                         f"got {cfg.vocab_size}")
    if not 0 <= cfg.label_noise < 0.5:
        raise UsageError(f"argument --label-noise: must be in [0, 0.5), got {cfg.label_noise}")
    if cfg.minibatch_size > cfg.batch_size:
        raise UsageError(f"argument --minibatch-size: must be <= --batch-size = {cfg.batch_size}, "
                         f"got {cfg.minibatch_size}")
    if cfg.corpus_size < 10:
        raise UsageError(f"argument --corpus-size: need at least 10 reviews for a held-out tenth, "
                         f"got {cfg.corpus_size}")
    if cfg.rm_pairs < 5:
        raise UsageError(f"argument --rm-pairs: need at least 5 pairs for a held-out fifth, "
                         f"got {cfg.rm_pairs}")
    if cfg.max_new_tokens < 6:
        raise UsageError(f"argument --max-new-tokens: one sentence and <eos> take 6 tokens, "
                         f"got {cfg.max_new_tokens}")
    parse_betas(cfg.sweep_kl_coefs)


# -- stage 1: supervised fine-tuning ------------------------------------------------------

def make_corpus(cfg: RLHFConfig, vocab: Vocab, rng: np.random.Generator):
    """(prompts (N,), responses (N, L) padded) of ``corpus_size`` grammar reviews."""
    topics = rng.choice(list(TOPICS), size=cfg.corpus_size)
    reviews = [[vocab.ids[w] for w in generate_review(rng, t)] for t in topics]
    width = max(map(len, reviews))
    responses = torch.full((len(reviews), width), vocab.pad, dtype=torch.long)
    for i, r in enumerate(reviews):
        responses[i, :len(r)] = torch.tensor(r)
    return torch.tensor([vocab.ids[t] for t in topics]), responses


def sft_loss(model: TokenGRU, prompts, responses, vocab: Vocab) -> torch.Tensor:
    """Next-token cross-entropy over the response tokens (padding ignored)."""
    logits = token_dists(model, prompts, responses).logits
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), responses.reshape(-1),
                                       ignore_index=vocab.pad)


def train_sft(cfg: RLHFConfig, vocab: Vocab, corpus, log: CsvLog, bar) -> TokenGRU:
    prompts, responses = corpus
    n_val = max(1, len(prompts) // 10)
    model = TokenGRU(vocab.size, cfg.embed_dim, cfg.hidden_size, vocab.size)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.sft_learning_rate)
    started = time.perf_counter()
    for epoch in range(1, cfg.sft_epochs + 1):
        losses = []
        for idx in torch.randperm(len(prompts) - n_val).split(64):
            idx = idx + n_val
            loss = sft_loss(model, prompts[idx], responses[idx], vocab)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with torch.no_grad():
            val = sft_loss(model, prompts[:n_val], responses[:n_val], vocab).item()
        log.write(epoch=epoch, train_time_s=time.perf_counter() - started, train_loss=float(np.mean(losses)),
                  val_loss=val)
        bar.update(1)
    return model.requires_grad_(False).eval()


# -- stage 2: the reward model ------------------------------------------------------------

def make_preferences(cfg: RLHFConfig, vocab: Vocab, sft: TokenGRU, rng: np.random.Generator):
    """Pairs of SFT responses to one prompt, labelled by ``true_score`` with noise.

    As in Stiennon et al. (2020) the compared responses are the policy's own
    samples; pairs the rule scores equal are dropped (no preference to learn),
    and each label is flipped with probability ``label_noise`` (labellers
    disagree). Returns (prompts, chosen, chosen lengths, rejected, rejected
    lengths, noise-free label correct?) for the kept pairs.
    """
    prompts = torch.tensor(rng.choice(vocab.prompts, size=2 * cfg.rm_pairs))
    responses, lengths = sample_responses(sft, prompts.repeat(2), cfg.max_new_tokens, vocab)
    a, b = responses[:len(prompts)], responses[len(prompts):]
    la, lb = lengths[:len(prompts)], lengths[len(prompts):]
    sa, sb = true_scores(vocab, prompts, a), true_scores(vocab, prompts, b)
    keep = (sa != sb).nonzero().squeeze(1)[:cfg.rm_pairs]
    a_wins = sa[keep] > sb[keep]
    flipped = torch.as_tensor(rng.random(len(keep)) < cfg.label_noise)
    a_chosen = a_wins ^ flipped

    def pick(x, y):  # x where a is the chosen response, else y
        return torch.where(a_chosen.view(-1, *[1] * (x.dim() - 1)), x[keep], y[keep])

    return prompts[keep], pick(a, b), pick(la, lb), pick(b, a), pick(lb, la), ~flipped


def train_reward_model(cfg: RLHFConfig, vocab: Vocab, sft: TokenGRU, pairs, log: CsvLog, bar):
    """r_phi: the SFT trunk with a scalar head (Ouyang et al. 2022, sec. 3.5), Bradley-Terry loss.

    Returns the model (its output normalized to mean 0 and std 1 over SFT samples,
    as Stiennon et al. 2020 normalize theirs on reference summaries) and the held-out
    accuracy against the noisy labels and against the noise-free rule.
    """
    prompts, chosen, l_chosen, rejected, l_rejected, clean = pairs
    n_val = max(1, len(prompts) // 5)
    model = sft.with_new_head(1).requires_grad_(True).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.rm_learning_rate)
    started = time.perf_counter()

    def margins(idx):
        return (reward_scores(model, prompts[idx], chosen[idx], l_chosen[idx])
                - reward_scores(model, prompts[idx], rejected[idx], l_rejected[idx]))

    val_idx = torch.arange(n_val)
    accuracy = clean_accuracy = float("nan")
    for epoch in range(1, cfg.rm_epochs + 1):
        losses = []
        for idx in torch.randperm(len(prompts) - n_val).split(32):
            idx = idx + n_val
            d = margins(idx)
            loss = bradley_terry_loss(d, torch.zeros_like(d))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with torch.no_grad():
            d = margins(val_idx)
        correct = d > 0
        accuracy = correct.float().mean().item()
        # against the rule itself: a flipped label counts as correct when the model disagrees with it
        clean_accuracy = (correct == clean[val_idx]).float().mean().item()
        log.write(epoch=epoch, train_time_s=time.perf_counter() - started, train_loss=float(np.mean(losses)),
                  val_loss=bradley_terry_loss(d, torch.zeros_like(d)).item(), val_accuracy=accuracy,
                  val_accuracy_true_rule=clean_accuracy)
        bar.update(1)
    model.requires_grad_(False).eval()
    return model, accuracy, clean_accuracy


class NormalizedReward(nn.Module):
    """(r_phi - mean) / std, the statistics taken on pi_SFT's samples once, then fixed."""

    def __init__(self, model: TokenGRU, mean: float, std: float):
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, prompts, responses, lengths):
        return (reward_scores(self.model, prompts, responses, lengths) - self.mean) / self.std


# -- stage 3: PPO against the learned reward ----------------------------------------------

UPDATE_COLUMNS = [
    "update", "responses", "train_time_s", "kl_coef", "rm_score", "true_score", "kl_ref",
    "response_length", "entropy", "approx_kl", "clip_fraction", "policy_loss", "value_loss",
    "explained_variance",
]


@dataclass
class Rollout:
    """One batch of responses and everything the update needs about them, (B, T) per token."""
    prompts: torch.Tensor
    responses: torch.Tensor
    mask: torch.Tensor
    logp: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor
    true: torch.Tensor
    kl_ref: torch.Tensor
    entropy: torch.Tensor
    lengths: torch.Tensor


@torch.no_grad()
def collect(cfg, vocab, policy, critic, reference, reward, kl_coef, rng) -> Rollout:
    prompts = torch.tensor(rng.choice(vocab.prompts, size=cfg.batch_size))
    responses, lengths = sample_responses(policy, prompts, cfg.max_new_tokens, vocab)
    mask = response_mask(lengths, responses.shape[1])
    dist, ref_dist = token_dists(policy, prompts, responses), token_dists(reference, prompts, responses)
    logp, ref_logp = dist.log_prob(responses), ref_dist.log_prob(responses)
    scores = reward(prompts, responses, lengths)
    # r_t = r_phi at the last token - beta log(pi/pi_ref) at every token: the objective of
    # docs/08 eq. (RL) as a return, so plain PPO maximizes it (Ziegler et al. 2019, eq. 2)
    rewards = per_token_rewards(scores, logp, ref_logp, mask, kl_coef)
    values = token_values(critic, prompts, responses) * mask
    advantages = token_advantages(rewards, values, mask, cfg.gamma, cfg.gae_lambda)
    # KL(pi || pi_ref) of the response distribution, summed over its tokens in closed form per
    # state (lower variance than the sampled log-ratio the reward uses; the x axis of Gao et al.)
    kl_ref = (dist.kl(ref_dist) * mask).sum(dim=1)
    return Rollout(prompts, responses, mask, logp, advantages, advantages + values, values, scores,
                   true_scores(vocab, prompts, responses), kl_ref, dist.entropy()[mask], lengths)


def ppo_update(cfg, policy, critic, optimizer, batch: Rollout):
    """K epochs of minibatch steps on the clipped surrogate (ppo.py's loss, per token)."""
    advantages = batch.advantages.clone()
    advantages[batch.mask] = normalize(advantages[batch.mask])
    params = [*policy.parameters(), *critic.parameters()]
    stats, log_ratios = [], []
    for _ in range(cfg.update_epochs):
        for idx in torch.randperm(cfg.batch_size).split(cfg.minibatch_size):
            m = batch.mask[idx]
            responses = batch.responses[idx]
            logp = token_dists(policy, batch.prompts[idx], responses).log_prob(responses)
            policy_loss, log_ratio = clipped_surrogate_loss(logp[m], batch.logp[idx][m], advantages[idx][m],
                                                            cfg.clip_coef)
            values = token_values(critic, batch.prompts[idx], batch.responses[idx])
            value_loss = value_loss_fn(values[m], batch.returns[idx][m], batch.values[idx][m], None)
            optimizer.zero_grad()
            (policy_loss + cfg.vf_coef * value_loss).backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            stats.append((policy_loss.item(), value_loss.item()))
            log_ratios.append(log_ratio.detach())
    ratios = torch.cat(log_ratios).exp()
    with torch.no_grad():
        new_logp = token_dists(policy, batch.prompts, batch.responses).log_prob(batch.responses)
    policy_loss, value_loss = np.mean(stats, axis=0)
    return {"policy_loss": float(policy_loss), "value_loss": float(value_loss),
            "clip_fraction": float(((ratios - 1).abs() > cfg.clip_coef).float().mean()),
            "approx_kl": float(approx_kl(new_logp[batch.mask] - batch.logp[batch.mask]))}


def train_ppo(cfg, vocab, reference, reward, kl_coef: float, seed: int, log: CsvLog, bar) -> TokenGRU:
    """pi_theta from pi_SFT, the critic from the reward model; ``ppo_updates`` rollouts."""
    # the same seed for every beta: runs differ only where beta makes them differ
    torch.manual_seed(seed * 1_000 + 3)
    rng = np.random.default_rng([seed, 3])
    policy = copy.deepcopy(reference).requires_grad_(True).train()
    critic = copy.deepcopy(reward.model).requires_grad_(True).train()
    optimizer = torch.optim.Adam([*policy.parameters(), *critic.parameters()], lr=cfg.learning_rate, eps=1e-5)
    started = time.perf_counter()
    for update in range(1, cfg.ppo_updates + 1):
        batch = collect(cfg, vocab, policy, critic, reference, reward, kl_coef, rng)
        diagnostics = ppo_update(cfg, policy, critic, optimizer, batch)
        log.write(update=update, responses=update * cfg.batch_size,
                  train_time_s=time.perf_counter() - started, kl_coef=kl_coef,
                  rm_score=batch.scores.mean().item(), true_score=batch.true.mean().item(),
                  kl_ref=batch.kl_ref.mean().item(), response_length=batch.lengths.float().mean().item(),
                  entropy=batch.entropy.mean().item(),
                  explained_variance=explained_variance(batch.values[batch.mask], batch.returns[batch.mask]),
                  **diagnostics)
        bar.update(1)
    return policy.requires_grad_(False).eval()


@torch.no_grad()
def evaluate(cfg, vocab, policy, reference, reward, seed: int) -> dict:
    """Mean proxy score, true score, KL to pi_ref and length of ``eval_responses`` fresh samples."""
    torch.manual_seed(seed * 1_000 + 7)
    prompts = torch.tensor(vocab.prompts).repeat(math.ceil(cfg.eval_responses / len(vocab.prompts)))
    prompts = prompts[:cfg.eval_responses]
    responses, lengths = sample_responses(policy, prompts, cfg.max_new_tokens, vocab)
    mask = response_mask(lengths, responses.shape[1])
    dist, ref_dist = token_dists(policy, prompts, responses), token_dists(reference, prompts, responses)
    kl = (dist.kl(ref_dist) * mask).sum(dim=1)
    return {"rm_score": reward(prompts, responses, lengths).mean().item(),
            "true_score": true_scores(vocab, prompts, responses).mean().item(),
            "kl_ref": kl.mean().item(), "response_length": lengths.float().mean().item()}


# -- stage 4: the over-optimization plot and the samples ------------------------------------

def smooth(x, window: int = 10) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.array([x[max(0, i - window + 1):i + 1].mean() for i in range(len(x))])


def plot_overoptimization(curves: dict[float, dict], path: Path, title: str) -> None:
    """Proxy and true score against KL(pi || pi_ref), one curve per beta (Gao et al. 2023, fig. 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for beta, c in sorted(curves.items()):
        kl = smooth(c["kl_ref"])
        line, = axes[0].plot(kl, smooth(c["rm_score"]), label=f"beta = {beta:g}")
        axes[1].plot(kl, smooth(c["true_score"]), color=line.get_color(), label=f"beta = {beta:g}")
    for ax, name in zip(axes, ("proxy: reward-model score", "true score (hidden rule)")):
        ax.set_xlabel("KL(pi || pi_ref), nats per response")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[1].legend()
    fig.suptitle(title + " (10-update moving averages)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


@torch.no_grad()
def sample_table(vocab, policies: dict[str, TokenGRU], reward, cfg, seed: int, per_prompt: int = 2):
    """Responses of each policy to the same prompts, with their proxy and true scores."""
    rows = []
    prompts = torch.tensor(vocab.prompts).repeat_interleave(per_prompt)
    for name, policy in policies.items():
        torch.manual_seed(seed * 1_000 + 11)
        responses, lengths = sample_responses(policy, prompts, cfg.max_new_tokens, vocab)
        scores = reward(prompts, responses, lengths)
        for p, r, s in zip(prompts.tolist(), responses.tolist(), scores.tolist()):
            text = vocab.decode(r)
            rows.append({"policy": name, "prompt": vocab.tokens[p], "response": text,
                         "rm_score": round(s, 2), "true_score": true_score(vocab.tokens[p], text.split())})
    return rows


def samples_markdown(rows) -> str:
    lines = ["| policy | prompt | response | proxy | true |", "|---|---|---|---:|---:|"]
    for r in rows:
        response = r["response"].replace("<", "&lt;").replace(">", "&gt;")
        prompt = r["prompt"].replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| {r['policy']} | {prompt} | {response} | {r['rm_score']:.2f} | {r['true_score']:g} |")
    return "\n".join(lines) + "\n"


# -- the whole pipeline -------------------------------------------------------------------

def beta_name(beta: float) -> str:
    return f"{beta:g}"


def run_dir_for(results_dir: Path, kl_coef: float, seed: int) -> Path:
    return Path(results_dir) / f"kl_coef_{beta_name(kl_coef)}" / f"seed_{seed}"


def run_pipeline(cfg: RLHFConfig, seed: int, out: Path, progress: bool) -> dict:
    """Stages 1-4 for one seed; every file under ``out``. Returns the summary."""
    from tqdm import tqdm

    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = Vocab(cfg.vocab_size)
    betas = list(dict.fromkeys([cfg.kl_coef, *parse_betas(cfg.sweep_kl_coefs)]))
    (out / "summary.json").unlink(missing_ok=True)  # present only once this run has finished
    write_json_atomic(out / "config.json", {"seed": seed, **dataclasses.asdict(cfg)})
    logs = []
    bar = tqdm(total=cfg.sft_epochs + cfg.rm_epochs + cfg.ppo_updates * len(betas), unit="step",
               desc=f"rlhf seed {seed}", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        bar.set_postfix_str("SFT")
        logs.append(CsvLog(out / "sft.csv", ["epoch", "train_time_s", "train_loss", "val_loss"]))
        reference = train_sft(cfg, vocab, make_corpus(cfg, vocab, rng), logs[-1], bar)

        bar.set_postfix_str("reward model")
        torch.manual_seed(seed * 1_000 + 2)
        logs.append(CsvLog(out / "reward_model.csv", ["epoch", "train_time_s", "train_loss", "val_loss",
                                                      "val_accuracy", "val_accuracy_true_rule"]))
        pairs = make_preferences(cfg, vocab, reference, rng)
        rm, rm_accuracy, rm_clean_accuracy = train_reward_model(cfg, vocab, reference, pairs, logs[-1], bar)
        with torch.no_grad():
            torch.manual_seed(seed * 1_000 + 5)
            prompts = torch.tensor(rng.choice(vocab.prompts, size=1024))
            responses, lengths = sample_responses(reference, prompts, cfg.max_new_tokens, vocab)
            raw = reward_scores(rm, prompts, responses, lengths)
        reward = NormalizedReward(rm, raw.mean().item(), raw.std().item())

        sft_eval = evaluate(cfg, vocab, reference, reference, reward, seed)
        finals, curves, policies = {}, {}, {}
        for beta in betas:
            bar.set_postfix_str(f"PPO beta={beta_name(beta)}")
            folder = out / f"ppo_kl_{beta_name(beta)}"
            folder.mkdir(exist_ok=True)
            logs.append(CsvLog(folder / "updates.csv", UPDATE_COLUMNS))
            policies[beta] = train_ppo(cfg, vocab, reference, reward, beta, seed, logs[-1], bar)
            logs[-1].close()
            finals[beta] = evaluate(cfg, vocab, policies[beta], reference, reward, seed)
            curves[beta] = read_curve(folder / "updates.csv")
        bar.close()
    finally:
        bar.close()
        for log in logs:
            log.close()

    plot_overoptimization(curves, out / "overoptimization.png", f"seed {seed}")
    rows = sample_table(vocab, {"SFT": reference, f"PPO beta={beta_name(cfg.kl_coef)}": policies[cfg.kl_coef],
                                **({"PPO beta=0": policies[0.0]} if 0.0 in policies and cfg.kl_coef != 0
                                   else {})},
                        reward, cfg, seed)
    (out / "samples.md").write_text(samples_markdown(rows), encoding="utf-8")
    summary = {"seed": seed, "kl_coef": cfg.kl_coef, "config": dataclasses.asdict(cfg),
               "rm_val_accuracy": rm_accuracy, "rm_val_accuracy_true_rule": rm_clean_accuracy,
               "sft": sft_eval, "ppo": {beta_name(b): f for b, f in finals.items()},
               "curves": {beta_name(b): c for b, c in curves.items()}, "samples": rows,
               "wall_time_s": time.perf_counter() - started, "threads": torch.get_num_threads()}
    write_json_atomic(out / "summary.json", summary)
    return summary


def read_curve(path: Path) -> dict:
    import pandas as pd

    frame = pd.read_csv(path)
    return {c: frame[c].round(4).tolist() for c in ("kl_ref", "rm_score", "true_score")}


def print_summary(s: dict, out: Path) -> None:
    print(f"rlhf_toy seed {s['seed']}: {s['wall_time_s']:.0f} s; reward model held-out accuracy "
          f"{s['rm_val_accuracy']:.2f} (noisy labels), {s['rm_val_accuracy_true_rule']:.2f} (true rule)")
    print(f"  {'policy':<16}{'proxy':>8}{'true':>8}{'KL':>8}{'length':>8}")
    for name, f in [("SFT", s["sft"])] + [(f"PPO beta={b}", f) for b, f in s["ppo"].items()]:
        print(f"  {name:<16}{f['rm_score']:8.2f}{f['true_score']:8.2f}{f['kl_ref']:8.2f}"
              f"{f['response_length']:8.1f}")
    print(f"  wrote {out}/")


# -- the docs section ---------------------------------------------------------------------

DOCS_PAGE = "08_ppo_in_rlhf.md"
DOCS_DATA = "data/rlhf_toy.json"
DOCS_PLOT = "img/rlhf_overoptimization.png"
DOCS_SEEDS = (1, 2, 3)
SECTION = re.compile(r"(<!-- rlhf:start -->\n)(.*?)(<!-- rlhf:end -->)", re.DOTALL)

# Each term of the objective and the line of this file that computes it: the docs quote the
# line itself (found by ``code_line``), so a renamed variable makes the section stale.
OBJECTIVE_TERMS = [
    ("$x \\sim \\mathcal D$, the prompt", "collect", "prompts = torch.tensor(rng.choice("),
    ("$y \\sim \\pi_\\theta(\\cdot \\mid x)$, the rollout", "sample_responses",
     "token = Categorical(logits[:, -1]).sample()"),
    ("$r_\\phi(x, y)$, fitted with $\\mathcal L_{\\text{RM}}$", "bradley_terry_loss",
     "return nn.functional.softplus(rejected - chosen).mean()"),
    ("$r_\\phi(x, y)$ read at the last token", "reward_scores", ".gather(1, lengths[:, None])"),
    ("$\\pi^{\\text{ref}} = \\pi^{\\text{SFT}}$, frozen", "train_sft", "return model.requires_grad_(False)"),
    ("$-\\beta \\log \\frac{\\pi_\\theta}{\\pi^{\\text{ref}}}$ at every token", "per_token_rewards",
     "rewards = -kl_coef * (logp - ref_logp) * mask"),
    ("$\\mathbb 1[t = T]\\, r_\\phi(x, y)$", "per_token_rewards",
     "rewards[torch.arange(len(scores)), last] += scores"),
    ("$V_\\psi(s_t)$, the critic from the reward model", "train_ppo", "critic = copy.deepcopy(reward.model)"),
    ("$\\hat A_t$, GAE with $V_\\psi(s_{T+1}) = 0$", "token_advantages",
     "terminated[torch.arange(batch), last] = True"),
    ("$L^{\\text{CLIP}}$ with the per-token ratio $\\rho_t$", "ppo_update",
     "policy_loss, log_ratio = clipped_surrogate_loss("),
    ("$\\mathrm{KL}(\\pi_\\theta \\,\\|\\, \\pi^{\\text{ref}})$, logged as `kl_ref`", "collect",
     "kl_ref = (dist.kl(ref_dist) * mask).sum(dim=1)"),
]


def code_line(function: str, fragment: str) -> str:
    """The stripped source line of ``function`` in this file that contains ``fragment``."""
    import inspect

    for line in inspect.getsource(globals()[function]).splitlines():
        if fragment in line:
            return line.strip()
    raise LookupError(f"{function} has no line containing {fragment!r}")


def collect_docs_data(results_dir: Path, cfg: RLHFConfig) -> dict:
    """The figures of the docs section: summaries of seeds 1-3 for --kl-coef's default and for 0."""
    data = {"config": dataclasses.asdict(cfg), "runs": {}}
    for beta in (cfg.kl_coef, 0.0):
        for seed in DOCS_SEEDS:
            path = run_dir_for(results_dir, beta, seed) / "summary.json"
            if not path.is_file():
                raise UsageError(f"argument --write-docs: {path} not found; run: python {PROG} --seed {seed}"
                                 + ("" if beta == cfg.kl_coef else f" --kl-coef {beta_name(beta)}"))
            s = json.loads(path.read_text(encoding="utf-8"))
            if s["config"] != {**data["config"], "kl_coef": beta}:
                raise UsageError(f"argument --write-docs: {path} was made with other settings than the "
                                 f"defaults; rerun: python {PROG} --seed {seed}")
            run = {k: s[k] for k in ("seed", "kl_coef", "rm_val_accuracy", "rm_val_accuracy_true_rule", "sft",
                                     "ppo", "wall_time_s", "threads")}
            # where beta = 0's true score peaked along its run (10-update moving averages, as plotted)
            curve = s["curves"]["0"]
            true, proxy = smooth(curve["true_score"]), smooth(curve["rm_score"])
            peak = int(np.argmax(true))
            run["beta0_peak"] = {"update": peak + 1, "true_score": round(float(true[peak]), 4),
                                 "kl_ref": round(float(smooth(curve["kl_ref"])[peak]), 4),
                                 "rm_score": round(float(proxy[peak]), 4),
                                 "final_true_score": round(float(true[-1]), 4),
                                 "final_rm_score": round(float(proxy[-1]), 4)}
            data["runs"][f"{beta_name(beta)}/{seed}"] = run
            if beta == cfg.kl_coef and seed == DOCS_SEEDS[0]:
                data["samples"] = s["samples"]
                data["plot_seed"] = seed
    return data


def mean_spread(values, digits: int = 2) -> str:
    """'mean ± sample std (min to max)' of the per-seed figures."""
    values = np.asarray(values, dtype=float)
    return (f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f} "
            f"({values.min():.{digits}f} to {values.max():.{digits}f})")


def render_docs_section(data: dict) -> str:
    """The Markdown between the rlhf markers of docs/08, from ``collect_docs_data``'s figures."""
    cfg = data["config"]
    beta = beta_name(cfg["kl_coef"])
    runs = data["runs"]
    seeds = sorted({r["seed"] for r in runs.values()})
    main = [runs[f"{beta}/{s}"] for s in seeds]
    hack = [runs[f"0/{s}"] for s in seeds]
    n = len(seeds)
    improved = sum(r["ppo"][beta]["true_score"] > r["sft"]["true_score"] for r in main)
    proxy_up = sum(h["ppo"]["0"]["rm_score"] > m["ppo"][beta]["rm_score"] for m, h in zip(main, hack))
    true_down = sum(h["ppo"]["0"]["true_score"] < m["ppo"][beta]["true_score"] for m, h in zip(main, hack))
    peaks = [r["beta0_peak"] for r in main]
    lines = [
        f"Generated by `python {PROG} --write-docs` from the runs below; rerun them and regenerate after "
        "changing the script:",
        "",
        "```bash",
        *[f"python {PROG} --seed {s}" for s in seeds],
        *[f"python {PROG} --seed {s} --kl-coef 0" for s in seeds],
        f"python {PROG} --write-docs",
        "```",
        "",
        f"Each run trains the SFT model and the reward model, then PPO once per beta of "
        f"`--sweep-kl-coefs` ({', '.join(map(beta_name, parse_betas(cfg['sweep_kl_coefs'])))}), "
        f"{cfg['ppo_updates']} updates of {cfg['batch_size']} responses each, and scores "
        f"{cfg['eval_responses']} fresh samples of each final policy. Wall time of one run with one thread, "
        f"on a shared 2-core machine: {mean_spread([r['wall_time_s'] for r in main + hack], 0)} s.",
        "",
        f"**What each stage shows** (mean ± standard deviation over seeds {', '.join(map(str, seeds))}, "
        "then the range):",
        "",
        "| stage | measure | value |",
        "|---|---|---|",
        f"| 1. SFT, $\\pi^{{\\text{{ref}}}}$ | true score of its samples (the best response scores 3) | "
        f"{mean_spread([r['sft']['true_score'] for r in main])} |",
        f"| 2. reward model | held-out accuracy on the noisy labels ({cfg['label_noise']:g} flipped) | "
        f"{mean_spread([r['rm_val_accuracy'] for r in main])} |",
        "| 2. reward model | held-out accuracy against the noise-free rule | "
        f"{mean_spread([r['rm_val_accuracy_true_rule'] for r in main])} |",
        f"| 3. PPO, beta = {beta} | proxy score (SFT: 0 by normalization) | "
        f"{mean_spread([r['ppo'][beta]['rm_score'] for r in main])} |",
        f"| 3. PPO, beta = {beta} | true score | "
        f"{mean_spread([r['ppo'][beta]['true_score'] for r in main])} |",
        f"| 3. PPO, beta = {beta} | true score minus SFT's | "
        f"{mean_spread([r['ppo'][beta]['true_score'] - r['sft']['true_score'] for r in main])} |",
        f"| 3. PPO, beta = {beta} | KL to $\\pi^{{\\text{{ref}}}}$, nats per response | "
        f"{mean_spread([r['ppo'][beta]['kl_ref'] for r in main])} |",
        f"| 4. PPO, beta = 0 | proxy score | {mean_spread([r['ppo']['0']['rm_score'] for r in hack])} |",
        f"| 4. PPO, beta = 0 | true score | {mean_spread([r['ppo']['0']['true_score'] for r in hack])} |",
        f"| 4. PPO, beta = 0 | KL to $\\pi^{{\\text{{ref}}}}$, nats per response | "
        f"{mean_spread([r['ppo']['0']['kl_ref'] for r in hack])} |",
        "| 4. PPO, beta = 0 | peak of the true score during training | "
        f"{mean_spread([p['true_score'] for p in peaks])} |",
        "| 4. PPO, beta = 0 | KL at that peak, nats per response | "
        f"{mean_spread([p['kl_ref'] for p in peaks])} |",
        "",
        f"With beta = {beta} the true score of the final policy is above the SFT model's on {improved} "
        f"of {n} seeds. Without the penalty the proxy ends higher than with it on {proxy_up} of {n} seeds "
        f"and the true score lower on {true_down} of {n}. Along the beta = 0 run, from the update where "
        f"the true score peaked to the last one, the proxy changed by "
        f"{np.mean([p['final_rm_score'] - p['rm_score'] for p in peaks]):+.2f} and the true score by "
        f"{np.mean([p['final_true_score'] - p['true_score'] for p in peaks]):+.2f} (means over seeds, "
        "10-update moving averages): past the peak, optimizing the proxy harder no longer helps the true "
        "objective and then hurts it (Gao et al. 2023).",
        "",
        "Per seed, final policy (proxy / true score / KL):",
        "",
        f"| seed | SFT true | beta = {beta} | beta = 0 | RM accuracy, true rule | wall time (s), "
        f"beta = {beta} / 0 |",
        "|---|---|---|---|---|---|",
    ]
    for m, h in zip(main, hack):
        f, g = m["ppo"][beta], h["ppo"]["0"]
        lines.append(f"| {m['seed']} | {m['sft']['true_score']:.2f} "
                     f"| {f['rm_score']:.2f} / {f['true_score']:.2f} / {f['kl_ref']:.1f} "
                     f"| {g['rm_score']:.2f} / {g['true_score']:.2f} / {g['kl_ref']:.1f} "
                     f"| {m['rm_val_accuracy_true_rule']:.2f} "
                     f"| {m['wall_time_s']:.0f} / {h['wall_time_s']:.0f} |")
    lines += [
        "",
        f"![Proxy and true score against KL to the reference, one curve per beta, seed {data['plot_seed']}]"
        f"({DOCS_PLOT})",
        "",
        f"Sampled responses to the same prompts, seed {data['plot_seed']} (proxy: the normalized "
        "reward-model score; true: the hidden rule):",
        "",
        samples_markdown(data["samples"]).rstrip("\n"),
        "",
        "**Where each term of the objective is computed** in `rlhf_toy.py`:",
        "",
        "| term | function | the line |",
        "|---|---|---|",
    ]
    for term, function, fragment in OBJECTIVE_TERMS:
        line = code_line(function, fragment).replace("|", "\\|")
        lines.append(f"| {term} | `{function}()` | `{line}` |")
    return "\n".join(lines) + "\n"


def write_docs(results_dir: Path, docs_dir: Path, cfg: RLHFConfig) -> None:
    page = docs_dir / DOCS_PAGE
    text = page.read_text(encoding="utf-8")
    if not SECTION.search(text):
        raise UsageError(f"argument --write-docs: {page} has no <!-- rlhf:start --> ... "
                         "<!-- rlhf:end --> markers")
    data = collect_docs_data(results_dir, cfg)
    plot = run_dir_for(results_dir, cfg.kl_coef, data["plot_seed"]) / "overoptimization.png"
    body = render_docs_section(data)
    (docs_dir / DOCS_DATA).parent.mkdir(exist_ok=True)
    write_json_atomic(docs_dir / DOCS_DATA, data)
    shutil.copyfile(plot, docs_dir / DOCS_PLOT)
    page.write_text(SECTION.sub(lambda m: m.group(1) + body + m.group(3), text), encoding="utf-8")
    print(f"updated {page} and {docs_dir / DOCS_PLOT}")


# -- command line -------------------------------------------------------------------------

def parse_args(argv):
    parser = OneLineParser(prog=PROG, formatter_class=DefaultsFormatter,
                           description="SFT, reward model, PPO with a KL penalty and a beta sweep on a tiny "
                                       "GRU language model (docs/08_ppo_in_rlhf.md).")
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="seeds numpy and torch")
    parser.add_argument("--results-dir", default="results/rlhf", metavar="DIR",
                        help="runs go to DIR/kl_coef_<beta>/seed_<seed>/")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="torch.set_num_threads")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: only when stderr is a terminal)")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"train nothing: rebuild docs/{DOCS_PAGE}'s 'Run it' section from the runs of "
                             f"seeds {', '.join(map(str, DOCS_SEEDS))} in --results-dir")
    parser.add_argument("--docs-dir", default=str(ROOT / "docs"), metavar="DIR", help="for --write-docs")
    docs = field_docs(RLHFConfig)
    hints = typing.get_type_hints(RLHFConfig)
    group = parser.add_argument_group("hyperparameters")
    for f in dataclasses.fields(RLHFConfig):
        convert = {int: int, float: finite_float, str: str}[hints[f.name]]
        group.add_argument(flag(f.name), dest=f.name, type=convert, default=f.default,
                           metavar={int: "N", float: "X", str: "LIST"}[hints[f.name]],
                           help=docs[f.name].replace("%", "%%"))  # argparse %-formats help
    args = parser.parse_args(argv)
    cfg = RLHFConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RLHFConfig)})
    validate(cfg)
    if not 0 <= args.seed < 2**31:
        raise UsageError(f"argument --seed: must be an integer in [0, 2**31), got {args.seed}")
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    return args, cfg


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    try:
        args, cfg = parse_args(argv)
        if args.write_docs:
            write_docs(Path(args.results_dir), Path(args.docs_dir), cfg)
            return 0
        out = run_dir_for(args.results_dir, cfg.kl_coef, args.seed)
        check_writable(out, "--results-dir")
        create_folder(out, "--results-dir")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    # Ctrl-C and SIGTERM end the run the same way; SIGINT explicitly, because a shell starts a
    # background job with SIGINT ignored and Python then never raises KeyboardInterrupt
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = run_pipeline(cfg, args.seed, out, args.progress)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the rows written so far are in {out}/", file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print_summary(summary, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
