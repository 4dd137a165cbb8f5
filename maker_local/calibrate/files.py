"""calibration.json: write it, and read it back for `solve --k auto`, `plan` and `bench`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERSION = 1
REQUIRED = ("p", "valid", "tokens_out_mean", "tokens_in_mean")


def write(result: dict[str, Any], out: Path) -> Path:
    """Save the result as JSON (the command adds its plots beside it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return out


def load_calibration(path: Path | str) -> dict[str, Any]:
    """A calibration file for `solve --k auto` and `plan`; ValueError says what to fix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read calibration {path}: {e.strerror}; run maker-local "
                         "calibrate first (it writes runs/calibration/calibration.json)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a calibration file (invalid JSON: {e})") from None
    missing = [k for k in REQUIRED if not isinstance(data, dict)
               or not isinstance(data.get(k), (int, float))]
    if missing:
        raise ValueError(f"{path} is not a maker-local calibration (missing {missing}); "
                         "write one with maker-local calibrate")
    if data.get("version", VERSION) > VERSION:
        raise ValueError(f"{path} was written by a newer maker-local; upgrade to read it")
    return data
