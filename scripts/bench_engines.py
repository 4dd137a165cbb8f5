"""Benchmark: how much of an engine's throughput the MAKER loop keeps.

Two ratios, each measured in one run on the same model, prompts and n:
  inproc  MAKER loop (schedule + in-process vLLM + ledger) against a bare `LLM.chat` of exactly
          the requests the loop issued, in one call (goal >= 0.95);
  http    MAKER loop through `vllm-http` against a bare asyncio OpenAI-client flood of the
          same requests at the same concurrency (goal >= 0.95).
Throughput is samples per second; a ratio is MAKER's over the bare baseline's.

Method: one untimed MAKER run records the requests; then `--repeats` pairs, MAKER and bare in
alternating order, are timed on the same warm engine. The ratio is the bare median over the
MAKER median, and each pair's own ratio is shown: on a shared 2-core machine one pair's ratio
moves by several percent from pair to pair (measured), more than the gap being measured.

    python scripts/bench_engines.py --model models/hanoi-step/model --disks 8 --which inproc
    python scripts/bench_engines.py --model models/hanoi-step/model --which http \
        --base-url http://127.0.0.1:8000/v1
    python scripts/bench_engines.py --profile hanoi-oss --disks 8 --which both \
        --base-url http://127.0.0.1:8000/v1       # gpt-oss: thought first, harmony read
With --profile, the model, prompt style, cap, reasoning parser and effort are the profile's
(for gpt-oss the bare in-process baseline is `LLM.generate` of the same harmony-rendered
prompts with the same structural tags, rendered before the clock starts).
Prints a table, then one JSON line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maker_local.core.types import Backend  # noqa: E402
from maker_local.driver.run import RunSpec, solve  # noqa: E402
from maker_local.voting.schedule import VoteConfig  # noqa: E402
from maker_local.voting.seeds import Temperatures  # noqa: E402
from maker_local.tasks.hanoi import Hanoi  # noqa: E402


class Recorder(Backend):
    """Wraps a backend; keeps every request it was asked (the bare baseline replays them)."""

    def __init__(self, inner):
        self.inner, self.requests = inner, []
        self.name, self.default_window = inner.name, inner.default_window

    def sample(self, reqs):
        self.requests += reqs
        return self.inner.sample(reqs)

    def describe(self):
        return self.inner.describe()

    def close(self):
        pass


def maker_loop(backend, task, args) -> tuple[float, int, list]:
    rec = Recorder(backend)
    vote = VoteConfig(k=args.k, max_tokens=args.max_tokens, window=args.window,
                      temperatures=Temperatures(0.0, args.temperature))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = solve(RunSpec(task, rec, vote, "rounds"), Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - t0
    return wall, report["samples"]["total"], rec.requests


def bare_inproc(backend, requests) -> float:
    params = [backend._params(r) for r in requests]
    if getattr(backend, "harmony", False):
        from maker_local.backends import harmony
        effort = backend.template_kwargs.get("reasoning_effort")
        prompts = [{"prompt_token_ids": harmony.render(r.messages, effort)} for r in requests]
        t0 = time.perf_counter()
        backend.llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - t0
    t0 = time.perf_counter()
    backend.llm.chat([r.messages for r in requests], params, use_tqdm=False,
                     chat_template_kwargs=backend.template_kwargs or None)
    return time.perf_counter() - t0


def bare_http(base_url: str, model: str, requests, concurrency: int,
              effort: str | None = None) -> float:
    from openai import AsyncOpenAI

    from maker_local.backends.shaping import request_body

    async def flood():
        client = AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(r):
            body = request_body(r, model, "chat", effort)
            extra = {k: body.pop(k) for k in ("structured_outputs", "return_token_ids",
                                              "reasoning_effort") if k in body}
            async with sem:
                await client.chat.completions.create(**body, extra_body=extra)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        wall = time.perf_counter() - t0
        await client.close()
        return wall

    return asyncio.run(flood())


def paired(maker, bare, repeats: int) -> dict:
    """`repeats` timed pairs in alternating order: the medians, their ratio, each pair's."""
    ms, bs = [], []
    for i in range(repeats):
        if i % 2 == 0:
            ms.append(maker()); bs.append(bare())
        else:
            bs.append(bare()); ms.append(maker())
    m, b = statistics.median(ms), statistics.median(bs)
    return {"maker_s": [round(x, 3) for x in ms], "bare_s": [round(x, 3) for x in bs],
            "maker_median_s": round(m, 3), "bare_median_s": round(b, 3),
            "ratio": round(b / m, 3), "pair_ratios": [round(y / x, 3) for x, y in zip(ms, bs)]}


def rows_of(label: str, bare_label: str, r: dict, samples: int, goal: float) -> list:
    pairs = " ".join(f"{x:.3f}" for x in r["pair_ratios"])
    return [(f"{label}: MAKER loop (median)", f"{r['maker_median_s']:.2f} s  "
                                             f"{samples / r['maker_median_s']:,.0f} samples/s"),
            (f"{label}: {bare_label} (median)", f"{r['bare_median_s']:.2f} s  "
                                               f"{samples / r['bare_median_s']:,.0f} samples/s"),
            (f"{label}: each pair's ratio", pairs),
            (f"{label} ratio (goal >= {goal})", f"{r['ratio']:.3f}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder (the bundled step model)")
    ap.add_argument("--profile", default=None,
                    help="take model, style, cap, reasoning parser and effort from a profile")
    ap.add_argument("--style", default="compact")
    ap.add_argument("--disks", type=int, default=8)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--window", type=int, default=4096)
    ap.add_argument("--which", choices=("inproc", "http", "both"), default=None,
                    help="default: both with --base-url, else inproc")
    ap.add_argument("--base-url", default=None, help="a running server for --which http")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed pairs, alternating which goes first (default 3)")
    ap.add_argument("--max-model-len", type=int, default=None,
                    help="engine context length (default: the model's own)")
    args = ap.parse_args()
    parser = effort = None
    if args.profile:
        import os

        from maker_local.models.profiles import load_profile
        prof = load_profile(args.profile)
        args.model = args.model or prof.model
        args.style, args.max_tokens = prof.prompt_style, prof.max_tokens
        parser, effort = prof.reasoning_parser, prof.reasoning_effort
        for key, value in prof.env.items():
            os.environ.setdefault(key, value)
    if not args.model:
        sys.exit("give --model or --profile")
    if args.which is None:
        args.which = "both" if args.base_url else "inproc"
    task = Hanoi(args.disks, style=args.style)
    result: dict = {"bench": "engines", "model": Path(args.model).name, "disks": args.disks,
                    "k": args.k, "reasoning_parser": parser, "reasoning_effort": effort}
    rows = []
    if args.which in ("inproc", "both"):
        from maker_local.backends.vllm import VLLMBackend
        b = VLLMBackend(args.model, max_model_len=args.max_model_len, reasoning_parser=parser,
                        chat_template_kwargs={"reasoning_effort": effort} if effort else None)
        bare_inproc(b, maker_loop(b, Hanoi(3, style=args.style), args)[2])  # warm-up
        _, samples, reqs = maker_loop(b, task, args)  # records the requests (untimed)
        r = paired(lambda: maker_loop(b, task, args)[0], lambda: bare_inproc(b, reqs),
                   args.repeats)
        rows += rows_of("in-process", "bare LLM.chat", r, samples, 0.95)
        result.update({f"inproc_{k}": v for k, v in r.items()}, inproc_samples=samples,
                      vllm=b.version)
    if args.which in ("http", "both"):
        if not args.base_url:
            sys.exit("--which http needs --base-url (start a server with maker-local serve)")
        from maker_local.backends.vllm_http import VLLMHTTPBackend
        b = VLLMHTTPBackend([args.base_url], concurrency=args.concurrency,
                            reasoning_parser=parser, reasoning_effort=effort)
        bare_http(args.base_url, b.model, maker_loop(b, Hanoi(3, style=args.style), args)[2],
                  args.concurrency, effort)  # warm-up
        _, samples, reqs = maker_loop(b, task, args)  # records the requests (untimed)
        r = paired(lambda: maker_loop(b, task, args)[0],
                   lambda: bare_http(args.base_url, b.model, reqs, args.concurrency, effort),
                   args.repeats)
        rows += rows_of("http", "bare OpenAI-client flood", r, samples, 0.95)
        result.update({f"http_{k}": v for k, v in r.items()}, http_samples=samples,
                      concurrency=args.concurrency)
        b.close()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
