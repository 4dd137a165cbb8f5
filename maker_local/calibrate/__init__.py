"""Calibration: measure a model's per-step accuracy on random steps and recommend k and a cap.

One job per module: `measure.py` samples steps through a backend (the only I/O besides
files), `estimate.py` turns the observations into the calibration (pure; its statistics are
`maker_local.core.stats` and `maker_local.voting`), `files.py` writes and reads
calibration.json (the command draws the plots). `calibrate` here does the first two.
"""
from __future__ import annotations

from typing import Any

from .estimate import estimate
from .files import REQUIRED, VERSION, load_calibration, write
from .measure import CalibrationConfig, Observation, Observations, collect


def calibrate(cfg: CalibrationConfig, backend: Any) -> dict[str, Any]:
    """Collect and estimate (no files written)."""
    info = backend.describe()
    return estimate(collect(cfg, backend), cfg, info)


__all__ = ["REQUIRED", "VERSION", "CalibrationConfig", "Observation", "Observations",
           "calibrate", "collect", "estimate", "load_calibration", "write"]
