"""The paper's scaling laws for first-to-ahead-by-k voting over a task of s steps.

p is the per-sample probability of the right answer among valid samples, v the share of
samples that pass the red flags. Formulas assume independent errors that all vote for one
wrong answer (the worst case); `maker-local calibrate` measures how far a model is from that.

The odds of one step are written once, here (`decides_for`, `votes_to_decide`, the gambler's
ruin): the scalar laws below and the vectorised ones over a spread of error rates
(`voting.steperrors`: `p_wrong`, `wrong_at`, `votes_needed`) call them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


def _check_p(p: float) -> None:
    if not 0.5 < p <= 1.0:
        raise ValueError(f"per-sample accuracy p must be in (0.5, 1] (got {p}); "
                         "voting cannot fix a model that is wrong at least half the time")


def decides_for(mine: Any, other: Any) -> Any:
    """THE ODDS of ahead-by-k (the gambler's ruin, one wrong answer: the worst case): the
    probability that a step is decided for the answer of weight `mine`, mine / (mine + other).

    With per-vote accuracy p the weights are p^k (the right answer) and (1-p)^k (the wrong
    one), or any common multiple of them (1 and ((1-p)/p)^k): only their ratio counts. Plain
    arithmetic, so floats and numpy arrays alike; each caller keeps the form that holds its
    digits (`p_step` the ratio's, `voting.steperrors` the powers', exact at tiny errors).
    """
    return mine / (mine + other)


def votes_to_decide(k: Any, drift: Any, right: Any, wrong: Any) -> Any:
    """Expected valid votes until one answer leads by k (the gambler's-ruin time to margin
    +-k): k (right - wrong) / (drift (right + wrong)), with the weights of `decides_for` and
    drift = 2p - 1 the margin's mean step per vote. Its limit as drift -> 0 (p = 1/2) is k^2,
    which a caller that allows p = 1/2 puts in itself."""
    return k * (right - wrong) / drift / (right + wrong)


def p_step(p: float, k: int) -> float:
    """Probability that first-to-ahead-by-k picks the right answer: 1 / (1 + ((1-p)/p)^k)."""
    _check_p(p)
    return decides_for(1.0, ((1.0 - p) / p) ** k)


def p_full(p: float, k: int, s: int) -> float:
    """Probability that all s steps are right: p_step^s."""
    return math.exp(s * math.log(p_step(p, k))) if p < 1 else 1.0


def k_min(p: float, s: int, t: float) -> int:
    """Smallest k with p_full >= t: ceil(ln(t^(-1/s) - 1) / ln((1-p)/p))."""
    _check_p(p)
    if not 0 < t < 1:
        raise ValueError(f"target success probability must be in (0, 1) (got {t})")
    if p == 1.0:
        return 1
    k = math.ceil(math.log(math.expm1(-math.log(t) / s)) / math.log((1 - p) / p))
    return max(1, k)


def expected_votes(p: float, k: int) -> float:
    """Expected valid votes per step: the gambler's-ruin time to margin +-k.

    Equals (k/(2p-1)) * (1-r^k)/(1+r^k) with r=(1-p)/p; the paper's k/(2p-1) is its r->0 limit.
    """
    _check_p(p)
    if p == 1.0:
        return float(k)
    r = (1 - p) / p
    # k/(2p-1) taken first and a drift of 1 (dividing by 1.0 is exact): the same floating
    # point steps this law always took, so plans keep their last digits
    return votes_to_decide(k / (2 * p - 1), 1.0, 1, r**k)


@dataclass
class Plan:
    p: float
    valid: float
    steps: int
    target: float
    k: int
    p_step: float
    p_full: float
    votes_per_step: float
    samples_per_step: float
    samples_total: float
    tokens_in_total: float
    tokens_out_total: float
    cost: float
    tokens_reasoning_total: float = 0.0  # the thought's share of tokens_out_total
    cost_in: float = 0.0
    cost_thought: float = 0.0
    cost_answer: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def token_costs(tokens_in: float, tokens_out: float, tokens_reasoning: float,
                price_in: float = 0.0, price_out: float = 0.0,
                machine_usd: float = 0.0) -> dict[str, float]:
    """USD of input, thought and answer tokens. Prices per million tokens price each kind
    (a thought is billed as output); a machine's cost (its hours x price) is shared by thought
    and answer in proportion to their output tokens: decoding is where a sample's time goes
    (the prompt's prefill is not separated out)."""
    answer = tokens_out - tokens_reasoning
    cost = {"input": tokens_in * price_in / 1e6, "thought": tokens_reasoning * price_out / 1e6,
            "answer": answer * price_out / 1e6}
    if machine_usd and tokens_out:
        cost["thought"] += machine_usd * tokens_reasoning / tokens_out
        cost["answer"] += machine_usd * answer / tokens_out
    elif machine_usd:
        cost["answer"] += machine_usd
    cost["total"] = cost["input"] + cost["thought"] + cost["answer"]
    return cost


def plan(p: float, steps: int, target: float, valid: float = 1.0, k: int | None = None,
         tokens_in: float = 0.0, tokens_out: float = 0.0, price_in: float = 0.0,
         price_out: float = 0.0, tokens_reasoning: float = 0.0) -> Plan:
    """k (k_min for the target unless given), success odds, samples and cost of a run.

    Prices are per million tokens; every sample pays for its input and output tokens, of
    which `tokens_reasoning` (mean per sample) are thought: priced apart, never votes.
    """
    if tokens_reasoning > tokens_out:
        raise ValueError(f"thought tokens ({tokens_reasoning:g}) are part of the output "
                         f"tokens ({tokens_out:g}): give tokens_out >= tokens_reasoning")
    if not 0 < valid <= 1:
        raise ValueError(f"valid rate must be in (0, 1] (got {valid})")
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (got {steps})")
    kk = k if k is not None else k_min(p, steps, target)
    votes = expected_votes(p, kk)
    samples = votes / valid
    total = samples * steps
    c = token_costs(total * tokens_in, total * tokens_out, total * tokens_reasoning, price_in,
                    price_out)
    return Plan(p, valid, steps, target, kk, p_step(p, kk), p_full(p, kk, steps), votes, samples,
                total, total * tokens_in, total * tokens_out, c["total"],
                total * tokens_reasoning, c["input"], c["thought"], c["answer"])


@dataclass
class ClassK:
    """k_min over step classes (the task's own, from a model card): the run succeeds
    when every step does, so P(run) = prod over classes of prod over its steps of p_step."""
    k: int | None  # None: no k reaches the target (a class has a step with p_i <= 0.5)
    p_run: float  # P(all steps right) at k (or at the largest k tried)
    setter: str  # the class with the smallest P(all its steps right) at k - 1: it sets k
    hopeless: list[str]  # classes with a checked step at p_i <= 0.5: voting cannot fix them


def class_k_min(classes: dict[str, tuple[int, list[float]]], t: float,
                k_max: int = 64) -> ClassK:
    """Smallest k with P(all steps right) >= t over classes of steps.

    classes: name -> (steps in the class, measured p_i of the checked steps). A class's
    success is estimated as exp(steps * mean_i ln p_step(p_i, k)): its checked steps stand
    for all of its steps, each with its own p_i (errors that cluster on some steps count
    as such, not averaged away as one pooled p would).
    """
    if not 0 < t < 1:
        raise ValueError(f"target success probability must be in (0, 1) (got {t})")
    hopeless = [c for c, (_, ps) in classes.items() if min(ps) <= 0.5]

    def log_success(k: int) -> dict[str, float]:
        out = {}
        for c, (count, ps) in classes.items():
            if c in hopeless:
                out[c] = -math.inf
                continue
            logs = [math.log(p_step(p, k)) if p < 1 else 0.0 for p in ps]
            out[c] = count * sum(logs) / len(logs)
        return out

    prev = log_success(1)
    if sum(prev.values()) >= math.log(t):
        return ClassK(1, math.exp(sum(prev.values())), min(prev, key=prev.get), hopeless)
    if hopeless:
        return ClassK(None, 0.0, hopeless[0], hopeless)
    for k in range(2, k_max + 1):
        cur = log_success(k)
        if sum(cur.values()) >= math.log(t):
            return ClassK(k, math.exp(sum(cur.values())), min(prev, key=prev.get), [])
        prev = cur
    return ClassK(None, math.exp(sum(prev.values())), min(prev, key=prev.get), [])
