"""Calibration: measure a model's per-step accuracy on random steps and recommend k and a cap.

One job per module: `measure.py` samples steps through a backend (the only I/O besides
files), `estimate.py` turns the observations into the calibration (pure; its statistics are
`maker_local.core.stats`), `files.py` writes and reads calibration.json (the command draws the
plots). This file only re-exports.
"""
from ..core.stats import heterogeneity, length_bins, wilson
from .estimate import estimate
from .files import REQUIRED, VERSION, load_calibration, write
from .measure import CalibrationConfig, Observation, Observations, calibrate, collect

__all__ = ["REQUIRED", "VERSION", "CalibrationConfig", "Observation", "Observations",
           "calibrate", "collect", "estimate", "heterogeneity", "length_bins",
           "load_calibration", "wilson", "write"]
