"""Sampling *against a draft*: exact samples from one prefill of prompt + draft answer.

In `rounds`, every step's draft answer (the reference) is known before it is voted. One
forward pass over prompt + draft gives, at every draft position t, the model's distribution
p(. | prompt, draft[:t]). Autoregressive sampling reproduces draft token t with probability
p_T(draft[t] | ...) (p_T: the distribution at temperature T), so a sample is drawn exactly by
walking the draft: at position t accept the draft token with that probability; at the first
rejection draw the sample's token from p_T with the draft token removed (renormalised), and
from there ordinary decoding takes over. Accepting with probability q and otherwise drawing
from the rest is drawing from p_T itself, so every sample has exactly the distribution of
plain decoding; only where the randomness comes from differs. Greedy (T = 0) accepts while the
draft token is the argmax and otherwise takes the argmax.

A sample that keeps the whole draft (eos included) is the draft's answer and costs no decoding
at all: for a model that is usually right, the k votes of a step cost one prefill.

Pure numpy: the backend supplies the log-probabilities; the uniforms come from the sample's
seed, so a resumed run draws exactly what an uninterrupted one drew.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Walk:
    """Where one sample leaves the draft: `at` = number of draft tokens kept (len(draft) when
    it keeps all of them, eos included), `token` = its own token at position `at` (None when
    it keeps the draft; decoding continues after it)."""

    at: int
    token: int | None

    @property
    def kept(self) -> bool:
        return self.token is None


def _uniforms(seed: int, size: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(seed)).random(size)


def rejection(q: np.ndarray, seed: int) -> int | None:
    """First draft position whose token a sample at temperature T does not reproduce, given
    q[t] = p_T(draft[t] | prompt, draft[:t]); None: the sample keeps the whole draft."""
    u = _uniforms(seed, len(q) + 1)
    off = np.flatnonzero(u[:-1] >= q)
    return int(off[0]) if len(off) else None


def residual(row: np.ndarray, draft_token: int, temperature: float, seed: int,
             length: int) -> int:
    """The sample's own token at its first rejection: drawn from p_T (row: the raw T=1
    log-probabilities of that position, whole vocabulary) with the draft token removed, with
    the last uniform of the sample's stream (`length` = draft length). If the draft token
    holds all the mass (its q < 1 only by rounding), the draft token itself: decoding goes on
    from there, which is as exact."""
    lp = row if temperature == 1.0 else row / temperature
    p = np.exp(lp - np.logaddexp.reduce(lp))
    p[draft_token] = 0.0
    total = p.sum()
    if not total > 0.0:
        return int(draft_token)
    u = _uniforms(seed, length + 1)[-1]
    tok = int(np.searchsorted(np.cumsum(p), u * total, side="right"))
    return min(tok, len(p) - 1)


def walk(logprobs: np.ndarray, draft: list[int] | np.ndarray, temperature: float,
         seed: int) -> Walk:
    """One sample against the draft, from the whole table of log-probabilities.

    logprobs: [len(draft), vocab] raw (T = 1) log-probabilities; row t is the model's
    distribution for draft position t given the prompt and draft[:t]. (Backends that get
    only the draft tokens' log-probabilities use `rejection` and `residual` directly.)
    """
    draft = np.asarray(draft)
    if temperature == 0.0:
        best = logprobs.argmax(axis=1)
        off = np.flatnonzero(best != draft)
        if len(off) == 0:
            return Walk(len(draft), None)
        t = int(off[0])
        return Walk(t, int(best[t]))
    lp = logprobs if temperature == 1.0 else logprobs / temperature
    lp = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
    t = rejection(np.exp(lp[np.arange(len(draft)), draft]), seed)
    if t is None:
        return Walk(len(draft), None)
    return Walk(t, residual(logprobs[t], int(draft[t]), temperature, seed, len(draft)))


__all__ = ["Walk", "walk", "rejection", "residual"]
