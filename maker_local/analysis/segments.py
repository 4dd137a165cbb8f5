"""One run's report from the reports of its segments: a long run done as slices
(`solve --steps A:B`) one after another, each with its own ledger, so that what a session
finished survives in a small committed file (the ledgers stay on the machine that wrote them).

A slice starts from the reference input at A. Slices that tile 0..N, all finished, all verified
and each with 0 errors form one chain: every decision equals the reference's, so each slice's
last decision leads to exactly the input the next one started from, and the joined report is
the report of a run over all N steps (with other seeds). A segment with an error breaks the
chain (the next segment did not start where this run would have gone), and `join` refuses it.

The joined report has report.json's shape (`maker_local.driver.report`): sums, the votes
histogram and the undecided-after-round counts added up, means and quantiles recomputed from the
histogram, the correlation block recomputed from the summed counts, the hardest steps of all
segments, and `segments` (each slice's range, seconds, resumes, the commit that ran it and its
ledger's head digest).
"""
from __future__ import annotations

from typing import Any

# what must be the same in every segment: the run, not its slice
SAME = ("task", "backend", "k", "rule", "schedule")


class SegmentError(ValueError):
    """Segments that do not make one run (gap, overlap, another run, unfinished, errors)."""


def _hist_quantile(hist: dict[int, int], q: float) -> float:
    """numpy's default (linear) percentile of the values a histogram counts."""
    values = sorted(hist)
    n = sum(hist.values())
    pos = q / 100 * (n - 1)
    lo_i, frac = int(pos), pos - int(pos)

    def at(i: int) -> int:
        seen = 0
        for v in values:
            seen += hist[v]
            if i < seen:
                return v
        return values[-1]
    lo = at(lo_i)
    return float(lo + (at(lo_i + 1) - lo) * frac) if frac else float(lo)


def _summary(hist: dict[int, int], digits: int = 4) -> dict[str, float]:
    n = sum(hist.values())
    if not n:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    mean = sum(v * c for v, c in hist.items()) / n
    return {"mean": round(mean, digits), "p50": _hist_quantile(hist, 50),
            "p99": _hist_quantile(hist, 99), "max": float(max(hist))}


def _add(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Numbers added key by key (nested dicts too); other values from the first."""
    out = dict(into)
    for key, value in more.items():
        if isinstance(value, bool) or key not in out:
            out.setdefault(key, value)
        elif isinstance(value, (int, float)):
            out[key] = out[key] + value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _add(out[key], value)
    return out


def check(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segments in step order, or SegmentError saying what keeps them from being one
    run and what to do."""
    if not reports:
        raise SegmentError("no segment reports: run the segments first (solve --steps A:B)")
    segs = sorted(reports, key=lambda r: (r.get("slice") or [0])[0])
    first = segs[0]
    total = first["task"]["steps"]
    at = 0
    names: dict[int, str] = {}  # each source's name, from the segments it voted in
    for r in segs:
        where = f"segment {r.get('run_dir', '?')}"
        lo, hi = r.get("slice") or (0, total)
        for key in SAME:
            if r.get(key) != first.get(key):
                raise SegmentError(f"{where}: its {key} is {r.get(key)!r}, the first "
                                   f"segment's {first.get(key)!r}: not the same run")
        if _plan(r) != _plan(first):
            raise SegmentError(f"{where}: another lever plan than the first segment's")
        for source, name in _source_names(r).items():
            if names.setdefault(source, name) != name:
                raise SegmentError(f"{where}: its source {source} is {name!r}, an earlier "
                                   f"segment's {names[source]!r}: not the same run")
        if lo != at:
            raise SegmentError(f"{where} covers steps {lo:,}..{hi - 1:,}, but the segments "
                               f"before it end at step {at - 1:,}: "
                               + ("a gap: run --steps {at}:{lo}" if lo > at else "they overlap"))
        if not r.get("finished") or r["steps"]["decided"] != hi - lo:
            raise SegmentError(f"{where} is not finished ({r['steps']['decided']:,} of "
                               f"{hi - lo:,} steps decided): resume it")
        if r["steps"]["errors"]:
            raise SegmentError(f"{where} decided {r['steps']['errors']} step(s) against the "
                               "reference: the next segment did not start where this run "
                               "went, so the segments are not one run")
        ledger = r.get("ledger") or {}
        if ledger.get("verified") is not True or ledger.get("unverified_rounds"):
            raise SegmentError(f"{where}: its ledger did not verify when the report was "
                               "written: run maker-local verify on it, then maker-local "
                               "report")
        at = hi
    if at != total:
        raise SegmentError(f"the segments end at step {at - 1:,} of {total:,}: run "
                           f"--steps {at}:{total}")
    return segs


def _plan(r: dict[str, Any]) -> Any:
    p = r.get("pool")
    if p is None:
        return None
    return (p["rotation"], p["escalate"], p["contest_after"])


def _source_names(r: dict[str, Any]) -> dict[int, str]:
    """The sources that voted in a segment, by index. A report lists only those, so a segment
    whose escalation never ran lacks that source: the segments agree where they both name one."""
    return {s["source"]: s["name"] for s in (r.get("pool") or {}).get("sources", [])}


def _correlation(hist: dict[int, int], collisions: int, first: dict[str, Any],
                 hardest: list[dict[str, Any]]) -> dict[str, Any]:
    """The within-step correlation of the whole run (`correlation.from_decisions`): it reads
    only counts (steps decided with exactly k votes, collisions, steps decided wrong), and
    the segments' counts add up; every segment decided every step right (check)."""
    import numpy as np

    from ..voting.correlation import from_decisions
    votes = np.repeat(np.array(list(hist), dtype=np.int64), list(hist.values()))
    return from_decisions(votes, np.zeros(votes.size, dtype=np.int64), collisions,
                          first["k"], first["task"]["steps"], hardest[:1])


def join(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of the run the segments make (see the module's doc); SegmentError when
    they do not make one."""
    segs = check(reports)
    first = segs[0]
    hist: dict[int, int] = {}
    undecided: list[int] = []
    sums: dict[str, Any] = {}
    for r in segs:
        for v, c in r["votes_histogram"].items():
            hist[int(v)] = hist.get(int(v), 0) + c
        for i, n in enumerate(r["rounds"]["undecided_after"]):
            undecided += [0] * (i + 1 - len(undecided))
            undecided[i] += n
        sums = _add(sums, {key: r[key] for key in ("steps", "samples", "failures", "tokens")})
    samples = sums["samples"]["total"]
    decided = sums["steps"]["decided"]
    hardest = sorted((h for r in segs for h in r.get("hardest_steps", [])),
                     key=lambda h: (-h["samples"], h["step"]))
    collisions = sum(r["collisions"] for r in segs)
    out: dict[str, Any] = {
        "run_dir": "segments",
        **{key: first.get(key) for key in ("task", "task_label", "backend", "k", "rule",
                                           "schedule")},
        "slice": None, "finished": True,
        "resumes": sum(r.get("resumes", 0) for r in segs),
        "versions": first.get("versions", {}),
        "steps": {**sums["steps"], "total": first["task"]["steps"]},
        "samples": sums["samples"],
        "votes_per_step": _summary(hist),
        "votes_histogram": {str(v): hist[v] for v in sorted(hist)},
        "samples_per_step": {"mean": round(samples / decided, 4) if decided else 0.0},
        "rounds": {"total": sum(r["rounds"]["total"] for r in segs),
                   "max_per_step": max(r["rounds"]["max_per_step"] for r in segs),
                   "undecided_after": undecided},
        "collisions": collisions,
        "correlation": _correlation(hist, collisions, first, hardest),
        "failures": sums["failures"],
        "endpoints": None,
        "tokens": sums["tokens"],
        "cost_usd": None,
        "wall_seconds": round(sum(r["wall_seconds"] for r in segs), 3),
        "hardest_steps": hardest[:5],
        # each segment's ledger verified when its report was written (check); the ledgers
        # stay on the machines that wrote them
        "segments": [{"steps": r.get("slice") or [0, first["task"]["steps"]],
                      "wall_seconds": r["wall_seconds"], "resumes": r.get("resumes", 0),
                      "commit": r.get("versions", {}).get("commit"),
                      "ledger_head": r["ledger"]["head"],
                      "ledger_rounds": r["ledger"]["rounds"]} for r in segs],
    }
    if first.get("pool") is not None:
        sources: dict[int, dict[str, Any]] = {}
        for r in segs:
            for s in r["pool"]["sources"]:
                got = sources.get(s["source"])
                counts = {key: s[key] for key in ("samples", "valid", "right", "wrong")}
                sources[s["source"]] = dict(s) if got is None else _add(got, counts)
        contested = [st for r in segs for st in r["pool"]["contested"]["first"]]
        out["pool"] = {**{key: first["pool"][key] for key in
                          ("rotation", "escalate", "contest_after")},
                       "sources": [sources[i] for i in sorted(sources)],
                       "contested": {"steps": sum(r["pool"]["contested"]["steps"]
                                                  for r in segs),
                                     "first": contested[:20]}}
    return out
