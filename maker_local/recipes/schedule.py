"""The learning-rate schedule every bundled model's trainer uses (models/*/train.py)."""
from __future__ import annotations

import math


def lr_at(step: int, elapsed: float, a) -> float:
    """Linear warmup over `a.warmup` steps, then a cosine from `a.lr` down to
    `a.min_lr_frac * a.lr`: over `a.minutes` of training time when that is set (> 0), else
    over `a.steps` optimizer steps."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    if getattr(a, "minutes", 0) > 0:
        t = min(1.0, elapsed / (a.minutes * 60))
    else:
        t = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))
