"""scripts/inject_faults.py --quick: every fault it injects (kills, a full disk, a read-only
run dir, a faulty fake server, edited ledgers) has the expected outcome, in its table and in
its JSON line."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("openai", reason="the fake-server faults drive the vllm-http backend")

FAULTS = ["SIGKILL", "disk full mid-run", "run dir read-only mid-run", "server HTTP 500",
          "server hangs", "server resets", "server answers HTTP 400",
          "server answers truncated JSON", "edit a vote key of an undecided step",
          "edit a decided step's winning key", "delete a vote row", "truncate the ledger file"]


def test_every_injected_fault_has_the_expected_outcome(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "inject_faults.py"), "--quick",
                        "--keep", str(tmp_path)], capture_output=True, text=True, timeout=600)
    lines = r.stdout.strip().splitlines()
    result = json.loads(lines[-1])  # one compact JSON line, last
    rows = result["rows"]
    assert [next(f for f in FAULTS if row["fault"].startswith(f)) for row in rows] == FAULTS
    for row in rows:
        assert row["ok"], row
    assert result["ok"] and r.returncode == 0, r.stderr
    table = "\n".join(lines[:-1])
    assert "UNEXPECTED" not in table and f"{len(rows)} of {len(rows)} as expected" in table
    by = {f: row for f in FAULTS for row in rows if row["fault"].startswith(f)}
    # what the rows say, beyond "ok": the interrupted runs end as the uninterrupted one ...
    for f in FAULTS[:8]:
        if not by[f]["did"].startswith("skipped"):
            assert by[f]["verifies"] is True and by[f]["equal"] is True, by[f]
    assert by["SIGKILL"]["exit"].startswith("-9")
    assert by["disk full mid-run"]["exit"].split()[0] == "2"
    assert by["server answers HTTP 400"]["exit"].split()[0] == "3"
    # ... and every edited ledger fails verification and is refused
    for f in FAULTS[8:]:
        assert by[f]["verifies"] is False and by[f]["exit"].split()[1:] == ["2", "2"], by[f]


def test_its_flags_have_descriptions():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "inject_faults.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Fault injection" in r.stdout
    for flag in ("--disks", "--kills", "--quick", "--only", "--keep", "--seed", "--window"):
        assert flag in r.stdout
    assert "(default: 10)" in r.stdout
