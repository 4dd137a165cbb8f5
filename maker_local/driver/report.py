"""Reports computed from a run's ledger only (never from a running process's memory)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.stats import summary
from ..voting.rules import rule_of
from ..store import Ledger, reads
from ..tasks.base import REASONS
from ..voting.correlation import format_lines as correlation_lines
from ..voting.correlation import from_decisions as correlation_of

REPORT_JSON = "report.json"


def collisions(led: Ledger) -> list[int]:
    """Decided steps whose first two valid votes (final epoch) were both wrong."""
    return reads.collision_steps(led)


def hardest(led: Ledger, k: int, count: int = 5) -> list[dict[str, Any]]:
    """The steps that needed the most samples, with their competing answers."""
    return reads.hardest_steps(led, k, count)


def build_report(run_dir: Path, verdict: Any = None) -> dict[str, Any]:
    """The report of a run's ledger. `verdict`: the ledger's integrity as the run that just
    wrote it knows it (`Ledger.chain_verdict`); without one, every digest is re-read."""
    led = Ledger.read(run_dir)
    try:
        report = _build(led)
        report["ledger"] = (verdict or led.verify()).as_dict()
        return report
    finally:
        led.close()


def _build(led: Ledger) -> dict[str, Any]:
    cfg = led.config
    run = cfg["run"]
    total_steps = run["task"]["steps"]
    if run.get("slice"):  # a slice a..b-1 of the task: its steps are the run's
        total_steps = run["slice"][1] - run["slice"][0]
    d = reads.decision_columns(led)
    votes, samples, rounds = d["votes"], d["samples"], d["rounds"]
    sm = reads.sample_totals(led, REASONS)
    n_samples, n_valid, flags = sm["total"], sm["valid"], sm["flags"]
    n_rounds, wall = reads.round_totals(led)
    # samples voted on a draft input that an earlier divergence replaced (none without one)
    abandoned = reads.abandoned_samples(led) if d["divergent"].any() else 0
    max_r = int(rounds.max()) if rounds.size else 0
    # the paper's Figure 8: steps still undecided after each voting round
    undecided = [int((rounds > r).sum()) for r in range(0, max_r + 1)]
    k = run["k"]
    return {
        "run_dir": str(led.path.parent.name),
        "task": run["task"], "task_label": task_label(run["task"]),
        "backend": run["backend"]["backend"], "k": k,
        "rule": rule_of(run),
        "slice": run.get("slice"),
        "schedule": run["schedule"],
        "finished": led.meta("finished") is not None,
        "resumes": int(led.meta("resumes", "0")),
        "versions": cfg.get("versions", {}),
        "steps": {"total": total_steps, "decided": int(votes.size),
                  "errors": int(d["wrong"].sum()), "divergences": int(d["divergent"].sum()),
                  "more_than_k_votes": int((votes > k).sum())},
        "samples": {"total": n_samples, "valid": n_valid, "flagged": n_samples - n_valid,
                    "flagged_by_reason": flags, "abandoned": abandoned},
        "votes_per_step": summary(votes, (50, 99), 4),
        "votes_histogram": {str(v): int(c) for v, c in enumerate(np.bincount(votes)) if c},
        "samples_per_step": summary(samples, (50, 99), 4),
        "rounds": {"total": n_rounds, "max_per_step": max_r, "undecided_after": undecided},
        "collisions": len(collisions(led)),
        # within-step correlation and what it means for a full run (decisions + first votes)
        "correlation": correlation_of(votes, d["wrong"], len(collisions(led)), k,
                                      run["task"]["steps"], hardest(led, k, 1)),
        # failed attempts at requests, asked again (never votes)
        "failures": reads.failure_counts(led),
        # vllm-http: HTTP requests sent to each server and how many failed (None: one engine)
        "endpoints": endpoint_counts(led),
        "tokens": {"in": sm["tokens_in"], "out": sm["tokens_out"],
                   "reasoning": sm["tokens_reasoning"],
                   "answer": sm["tokens_out"] - sm["tokens_reasoning"]},
        "cost_usd": run_cost(cfg.get("settings", {}).get("price") or {}, sm, wall),
        "wall_seconds": round(wall, 3),
        "hardest_steps": hardest(led, k),
        **({"pool": pool_section(led, run)} if run.get("pool") else {}),
    }


def pool_section(led: Ledger, run: dict[str, Any]) -> dict[str, Any]:
    """A pooled run (voting/pool.py): each source's samples and how often it was right, and
    the steps the escalation decided."""
    pool = run["pool"]
    names = [f"{s['name']} ({s['style']})" for s in pool["sources"]]
    role = {i: "rotation" for i in pool["rotation"]} | {i: "escalation" for i in pool["escalate"]}
    contested = reads.contested_steps(led, int(pool["contest_after"]))
    return {"rotation": pool["rotation"], "escalate": pool["escalate"],
            "contest_after": pool["contest_after"],
            "sources": [{"name": names[r["source"]], "role": role.get(r["source"]), **r}
                        for r in reads.votes_by_source(led)],
            "contested": {"steps": len(contested), "first": contested[:20]}}


def endpoint_counts(led: Ledger) -> dict[str, dict[str, int]] | None:
    """Requests sent to each server of a vllm-http run and how many failed
    (driver/failures.py keeps them in the ledger's meta table); None for a run on one engine."""
    from ..store.ledger import ENDPOINTS_META
    raw = led.meta(ENDPOINTS_META)
    return json.loads(raw) if raw else None


def write_report(run_dir: Path, report: dict[str, Any]) -> list[Path]:
    """report.json plus the plots: undecided steps by round (Figure 8) and votes per step."""
    (run_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    return [run_dir / REPORT_JSON, *plot(run_dir, report)]


def plot(run_dir: Path, report: dict[str, Any]) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = []
    und = report["rounds"]["undecided_after"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if und:
        ax.plot(range(len(und)), und, marker="o")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel("voting round")
    ax.set_ylabel("undecided steps")
    ax.set_title(f"Undecided steps after each round (k={report['k']})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.append(run_dir / "undecided.png")
    fig.savefig(out[-1], dpi=100)
    plt.close(fig)

    hist = report["votes_histogram"]
    fig, ax = plt.subplots(figsize=(6, 4))
    if hist:
        votes = [int(v) for v in hist]
        ax.bar(votes, list(hist.values()), width=0.8)
        counts = [c for c in hist.values() if c]
        if max(counts) > 100 * min(counts):  # a log axis only when counts span decades
            ax.set_yscale("log")
        ax.set_xlim(min(votes) - 1, max(votes) + 1)  # a lone bar is a bar, not a strip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("valid votes to decide a step")
    ax.set_ylabel("steps")
    ax.set_title("Votes per step")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.append(run_dir / "votes.png")
    fig.savefig(out[-1], dpi=100)
    plt.close(fig)
    return out


def task_label(d: dict[str, Any]) -> str:
    """E.g. 'multiply, 1000 x 100 digits (100,000 steps)': the task's own words for its size, from its plug-in; the raw
    parameters when the plug-in cannot be loaded here."""
    from ..tasks import from_describe
    try:
        return f"{d['task']}, {from_describe(d).label()}"
    except Exception:  # noqa: BLE001  (a report never fails for want of a label)
        params = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("task", "source"))
        return f"{d['task']} ({params})"


def run_cost(price: dict[str, float], sm: dict[str, Any], wall: float
             ) -> dict[str, Any] | None:
    """What the run cost, by input, thought and answer tokens, at the run's price (None
    without one): tokens x per-token prices, or machine time x the hourly price shared by
    output tokens (engine.scaling.token_costs)."""
    from ..voting.scaling import token_costs
    if not price:
        return None
    hourly = price.get("usd_per_hour", 0.0)
    c = token_costs(sm["tokens_in"], sm["tokens_out"], sm["tokens_reasoning"],
                    price.get("usd_per_m_in", 0.0), price.get("usd_per_m_out", 0.0),
                    wall / 3600 * hourly)
    c["basis"] = (f"{wall:.0f} s at ${hourly:g}/h, shared by output tokens" if hourly else
                  "per-token prices")
    return c


def format_report(r: dict[str, Any]) -> str:
    """A short human summary."""
    s, sm, v = r["steps"], r["samples"], r["votes_per_step"]
    fl = ", ".join(f"{k} {n}" for k, n in sm["flagged_by_reason"].items() if n) or "none"
    lines = [
        f"task       {r['task_label']}, "
        f"backend {r['backend']}, k={r['k']} ({rule_of(r)}), "
        f"schedule {r['schedule']}"
        + (f", steps {r['slice'][0]:,}..{r['slice'][1] - 1:,}" if r.get("slice") else ""),
        f"steps      {s['decided']:,} / {s['total']:,} decided, {s['errors']} errors vs "
        f"reference, {s['divergences']} divergences, {s['more_than_k_votes']:,} needed > k votes",
        f"samples    {sm['total']:,} ({sm['flagged']:,} red-flagged: {fl})",
        f"votes/step mean {v['mean']:.3f}, p50 {v['p50']:g}, p99 {v['p99']:g}, max {v['max']:g}",
        f"rounds     {r['rounds']['total']} (max {r['rounds']['max_per_step']} for one step), "
        f"collisions {r['collisions']}",
        *(correlation_lines(r["correlation"], 11) if r.get("correlation") else []),
        f"tokens     in {r['tokens']['in']:,}, out {r['tokens']['out']:,}"
        + (f" (thought {r['tokens']['reasoning']:,}, answer "
           f"{r['tokens']['out'] - r['tokens']['reasoning']:,})"
           if r["tokens"]["reasoning"] else ""),
        *([f"cost       ${c['total']:,.4f}: input ${c['input']:,.4f}, thought "
           f"${c['thought']:,.4f}, answer ${c['answer']:,.4f} ({c['basis']})"]
          if (c := r.get("cost_usd")) else []),
        *([f"failures   {r['failures']['requests']:,} failed requests asked again "
           f"({r['failures']['retryable']:,} retryable); none is a vote"]
          if r.get("failures", {}).get("requests") else []),
        *[f"{'servers' if i == 0 else '':10s} {url}: {c.get('requests', 0):,} requests, "
          f"{c.get('failures', 0):,} failed"
          for i, (url, c) in enumerate(sorted((r.get("endpoints") or {}).items()))],
        f"wall       {r['wall_seconds']:.1f} s in rounds"
        + (f", resumed {r['resumes']} time{'s' * (r['resumes'] != 1)}"
           if r.get("resumes") else ""),
    ]
    if (p := r.get("pool")) is not None:
        lines.append(f"levers     {p['contested']['steps']:,} contested steps (undecided after "
                     f"{p['contest_after']} votes of the rotation)"
                     + (", decided by the escalation" if p["escalate"] else ""))
        lines += [f"  source {x['source']} {x['name']} [{x['role']}]: {x['samples']:,} samples, "
                  f"{x['valid']:,} valid, {x['wrong']:,} wrong" for x in p["sources"]]
    if "ledger" in r:
        from ..store.integrity import Verdict
        v = r["ledger"]
        lines.append(f"ledger     {Verdict.from_dict(v).line()}")
    return "\n".join(lines)
