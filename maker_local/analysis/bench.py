"""What one reliable step costs on this machine: a timed slice of a real solve.

A bench votes Hanoi steps [start, start + warmup) untimed (engine warm-up: CUDA graphs, the
prompt prefix in the cache), then [start + warmup, start + warmup + steps) timed, in rounds,
exactly as `solve` votes them (`maker_local.driver.slice`: same schedule, seeds, red flags,
driver loop), but in memory: no ledger, and a slice ends early (as data) where a solve would
stop.
Every count comes from the `RoundRows` the schedule returns. From the slice come throughput and
the cost of a reliable (decided) step, projected to a full run; with a plugged-in accuracy
(a calibration, --p, a profile's paper figures) the scaling laws project instead, timing each
sample as tokens_out / output tokens per second. No printing here: `commands/bench.py` formats.

JSON keys (the last line `maker-local bench` prints; `--out` adds "metadata"):
  model, backend, profile, k, rule, task, start, warmup, steps    what ran (start: first
                                                   warm-up step; rule: the voting rule)
  decided, rounds, samples, valid, errors          counts in the timed slice; errors = decided
                                                   steps that disagree with the reference
  stopped                                          null, or why the slice ended early
  wall_s, samples_per_s, votes_per_step (valid votes per decided step), samples_per_step,
  red_flag_rate, flags {reason: count}, tokens_out_per_s, tokens_in_per_s, tokens_out_mean,
  tokens_reasoning_mean and tokens_answer_mean (a reasoning model's thought and answer),
  usd_per_step_split {thought, answer} (usd_per_step shared by output tokens),
  tokens_in_mean (every sample counts its request's prompt), prefix_cache_hit_rate (vllm-http
  /metrics deltas; null = n/a)
  machines, machine_unit                           what wall time is multiplied by
  machine_s_per_step, price_per_hour, usd_per_step per reliable step
  run_steps, projected_wall_s, projected_usd       the full run at the measured rate
  plugged                                          null, or the scaling-law projection: source,
      p, valid, tokens_out, tokens_in, tokens_per_s, target, k, votes_per_step,
      samples_per_step, s_per_sample, machine_s_per_step, usd_per_million_steps,
      wall_s, machine_s, usd, formula (the cost per million steps with numbers substituted)
  correlation                                      the slice's votes against independent
      errors (`maker_local.voting.correlation.from_run`: within-step rho from each step's first
      k votes, collisions, steps decided wrong, expected wrong decisions of run_steps)
  paper [{model, error, k, usd_per_m_out, usd, source}]   the paper's API projections
  metadata (--out only): model, backend, engine, engine_version, device, date, git_commit,
      maker_local, python, params (every flag)
Values that cannot be computed (nothing decided, no tokens) are null.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..driver.slice import SliceStats
from ..voting.scaling import plan, token_costs

# The paper's projected API cost of its million-step (1,048,575-step) run, from its table of
# per-model calibrations (Meyerson et al. 2025, arXiv 2511.09030: cost per million output
# tokens, 1-p, k_min, projected cost). Used where models/<name>.toml has no [paper] table.
PAPER_API: dict[str, dict[str, float]] = {
    "gpt-4.1-mini": {"error": 0.0022, "k": 3, "usd_per_m_out": 1.6, "usd": 3500},
    "gpt-oss-20b": {"error": 0.0358, "k": 6, "usd_per_m_out": 0.2, "usd": 1700},
    "o3-mini": {"error": 0.0018, "k": 3, "usd_per_m_out": 4.4, "usd": 9400},
}
def _rate(a: float, b: float) -> float | None:
    return a / b if b else None  # nothing decided (or no tokens): n/a, not a crash


def cache_hit_rate(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Prefix-cache hit rate between two /metrics snapshots (None if the server has none)."""
    key = "vllm:prefix_cache_%s_total"
    queries = after.get(key % "queries", 0.0) - before.get(key % "queries", 0.0)
    hits = after.get(key % "hits", 0.0) - before.get(key % "hits", 0.0)
    return _rate(hits, queries)


def summarize(s: SliceStats, machines: float, price_per_hour: float, run_steps: int
              ) -> dict[str, Any]:
    """Throughput and cost per reliable step of a timed slice, and the full run at that rate."""
    per_step = _rate(s.wall_s * machines, s.decided)  # machine-seconds per decided step
    wall_per_step = _rate(s.wall_s, s.decided)
    usd = None if per_step is None else per_step * price_per_hour / 3600
    return {
        "decided": s.decided, "rounds": s.rounds, "samples": s.samples, "valid": s.valid,
        "errors": s.errors, "stopped": s.stopped, "wall_s": s.wall_s,
        "samples_per_s": _rate(s.samples, s.wall_s),
        "votes_per_step": _rate(s.votes, s.decided),
        "samples_per_step": _rate(s.samples, s.decided),
        "red_flag_rate": _rate(s.samples - s.valid, s.samples), "flags": dict(s.flags),
        "tokens_out_per_s": _rate(s.tokens_out, s.wall_s),
        "tokens_in_per_s": _rate(s.tokens_in, s.wall_s),
        "tokens_out_mean": _rate(s.tokens_out, s.samples),
        "tokens_in_mean": _rate(s.tokens_in, s.samples),
        # a reasoning model's output: thought (paid for, never a vote) and answer
        "tokens_reasoning_mean": _rate(s.tokens_reasoning, s.samples),
        "tokens_answer_mean": _rate(s.tokens_out - s.tokens_reasoning, s.samples),
        "machine_s_per_step": per_step, "price_per_hour": price_per_hour, "usd_per_step": usd,
        # the machine's cost per step shared by thought and answer tokens (token_costs)
        "usd_per_step_split": None if usd is None else {
            k: v for k, v in token_costs(0, s.tokens_out, s.tokens_reasoning,
                                         machine_usd=usd).items() if k in ("thought", "answer")},
        "run_steps": run_steps,
        "projected_wall_s": None if wall_per_step is None else wall_per_step * run_steps,
        "projected_usd": None if usd is None else usd * run_steps,
        "correlation": _correlation(s, run_steps),
    }


def _correlation(s: SliceStats, run_steps: int) -> dict[str, Any] | None:
    """The slice's votes against independent errors (None: nothing decided)."""
    from ..voting.correlation import from_run
    if not s.decision_rows or s.k < 1:
        return None
    return from_run(s.step_votes(), s.k, run_steps)


@dataclass
class Accuracy:
    """A model's accuracy and output length, plugged in when it cannot be measured here."""

    p: float
    tokens_out: float
    tokens_in: float = 0.0
    valid: float = 1.0
    source: str = "--p"
    k: int | None = None  # THE rule's k (engine.krule) for the full run; None: no k reaches it


def project_plugged(acc: Accuracy, tokens_per_s: float, machines: float,
                    price_per_hour: float, run_steps: int, target: float,
                    k: int | None = None) -> dict[str, Any]:
    """The full run from the scaling laws: at k (given, else the rule's `acc.k`, else the
    independent formula's k_min), samples per step from `acc`, each sample taking
    tokens_out / tokens_per_s seconds of the machine(s)."""
    pl = plan(acc.p, run_steps, target, acc.valid, k if k is not None else acc.k,
              acc.tokens_in, acc.tokens_out)
    s_per_sample = acc.tokens_out / tokens_per_s
    machine_s_per_step = pl.samples_per_step * s_per_sample * machines
    per_million = machine_s_per_step * price_per_hour / 3600 * 1e6
    wall = pl.samples_total * s_per_sample
    r = (1 - acc.p) / acc.p
    formula = "\n".join([
        (f"k = {pl.k}: given" if k is not None else
         f"k = {pl.k}: the rule (engine.krule) over {acc.source}" if acc.k is not None else
         f"k_min = ceil(ln(t^(-1/s) - 1) / ln((1-p)/p)) = ceil(ln({target:g}^(-1/{run_steps})"
         f" - 1) / ln({1 - acc.p:.6g}/{acc.p:.6g})) = {pl.k}"),
        f"votes/step = k/(2p-1) * (1-r^k)/(1+r^k), r=(1-p)/p={r:.6g}: {pl.k}/(2*{acc.p:.6g}-1)"
        f" * (1-r^{pl.k})/(1+r^{pl.k}) = {pl.votes_per_step:.6g}",
        f"samples/step = votes/step / valid = {pl.votes_per_step:.6g} / {acc.valid:.6g} = "
        f"{pl.samples_per_step:.6g}",
        f"USD per 1M reliable steps = samples/step * tokens_out / tokens_per_s * machines * "
        f"USD_per_hour / 3600 * 1e6 = {pl.samples_per_step:.6g} * {acc.tokens_out:.6g} / "
        f"{tokens_per_s:.6g} * {machines:g} * {price_per_hour:g} / 3600 * 1e6 = "
        f"${per_million:,.2f}",
    ])
    return {"source": acc.source, "p": acc.p, "valid": acc.valid, "tokens_out": acc.tokens_out,
            "tokens_in": acc.tokens_in, "tokens_per_s": tokens_per_s, "target": target,
            "k": pl.k, "votes_per_step": pl.votes_per_step,
            "samples_per_step": pl.samples_per_step, "s_per_sample": s_per_sample,
            "machine_s_per_step": machine_s_per_step, "usd_per_million_steps": per_million,
            "wall_s": wall, "machine_s": wall * machines, "usd": per_million * run_steps / 1e6,
            "formula": formula}


def paper_projections() -> list[dict[str, Any]]:
    """The paper's API projections: from the profiles' [paper] tables, else PAPER_API."""
    from ..core.errors import UsageError
    from ..models.profiles import list_profiles, load_profile

    known = set(list_profiles())
    out = []
    for name, row in PAPER_API.items():
        entry = {"model": name, **row, "source": "paper (bench.py constant)"}
        try:
            fig = load_profile(name).paper if name in known else None
        except UsageError:  # a broken profile must not break a benchmark
            fig = None
        if fig is not None:
            entry.update(error=fig.error, k=fig.k, usd=fig.cost_usd,
                         source=f"models/{name}.toml [paper]")
        out.append(entry)
    return out


# ------------------------------------------------------------------------------- table
def _correlation_rows(c: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The correlation block as table rows (label, value)."""
    if not c:
        return []
    from ..voting.correlation import format_lines
    labels = {"collisions": "collisions (first 2 votes wrong)",
              "correlation": "within-step correlation", "p_i <= 0.5": "steps with p_i <= 0.5",
              "run errors": "wrong decisions, full run"}
    rows = []
    for line in format_lines(c, 0):
        key = next(lab for lab in labels if line.startswith(lab))
        rows.append((labels[key], line[len(key):].strip()))
    return rows


def _num(v: float | None, spec: str = ",.1f", unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def _usd(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"${v:,.2f}" if v >= 0.01 or v == 0 else f"${v:.3g}"


def duration(s: float | None) -> str:
    """Seconds as a readable span: 42.0 s, 3h 05m, 12d 4h."""
    if s is None:
        return "n/a"
    if s < 120:
        return f"{s:.3g} s"
    m = s / 60
    if m < 120:
        return f"{m:.1f} min"
    h, m = divmod(round(m), 60)
    return f"{h}h {m:02d}m" if h < 48 else f"{h // 24}d {h % 24}h"


def format_table(r: dict[str, Any]) -> str:
    """The bench result as an aligned two-column table (the JSON line follows it)."""
    first = r["start"] + r["warmup"]
    flags = ", ".join(f"{k} {v:,}" for k, v in sorted(r["flags"].items())) or "none"
    unit = f"{r['machines']:g} {r['machine_unit']}"
    rows = [
        ("model / backend", f"{r['model']} on {r['backend']}, k={r['k']}"
         + (f" ({r['rule']})" if r.get("rule") else "")),
        ("slice", f"{r['task_label']}, steps {first:,}..{first + r['steps'] - 1:,} timed "
         f"after {r['warmup']:,} warm-up steps"),
        ("decided steps", f"{r['decided']:,} of {r['steps']:,} in {r['rounds']} rounds"
         + (f" (stopped: {r['stopped']})" if r["stopped"] else "")),
        ("wall (timed)", duration(r["wall_s"])),
        ("samples/s", _num(r["samples_per_s"])),
        ("valid votes / decided step", _num(r["votes_per_step"], ".3f")),
        ("samples / decided step", _num(r["samples_per_step"], ".3f")),
        ("red-flag rate", f"{_num(r['red_flag_rate'], '.2%')} ({flags})"),
        ("output tokens/s", _num(r["tokens_out_per_s"])),
        ("output tokens / sample", f"{_num(r['tokens_out_mean'], '.1f')} (thought "
         f"{_num(r['tokens_reasoning_mean'], '.1f')}, answer "
         f"{_num(r['tokens_answer_mean'], '.1f')})"),
        ("input tokens/s", _num(r["tokens_in_per_s"]) + " (each sample counts its prompt)"),
        ("prefix-cache hit rate", _num(r["prefix_cache_hit_rate"], ".1%") if
         r["prefix_cache_hit_rate"] is not None else "n/a (vllm-http /metrics only)"),
        ("machine-s / reliable step", _num(r["machine_s_per_step"], ".4g")
         + f" (wall x {unit})"),
        ("USD / reliable step", f"{_usd(r['usd_per_step'])} at ${r['price_per_hour']:g} "
         f"per {r['machine_unit'].split(' (')[0]}-hour"
         + (f" (thought {_usd(sp['thought'])}, answer {_usd(sp['answer'])})"
            if (sp := r.get("usd_per_step_split")) else "")),
        (f"full run ({r['run_steps']:,} steps)",
         f"{duration(r['projected_wall_s'])} wall, {_usd(r['projected_usd'])}"),
        ("errors in slice", f"{r['errors']:,} (decided steps that disagree with the "
         "reference)"),
        *_correlation_rows(r.get("correlation")),
        ("paper's API projections", ", ".join(f"{p['model']} ${p['usd'] / 1000:g}K"
                                              for p in r["paper"])),
    ]
    width = max(len(a) for a, _ in rows) + 2
    lines = [f"{'metric':<{width}}value"] + [f"{a:<{width}}{b}" for a, b in rows]
    pl = r.get("plugged")
    if pl:
        lines += ["", f"projection from plugged-in accuracy ({pl['source']}):",
                  f"  p={pl['p']:.6g} valid={pl['valid']:.6g} tokens_out={pl['tokens_out']:g} "
                  f"tokens_in={pl['tokens_in']:g} tokens/s={pl['tokens_per_s']:.6g} "
                  f"machines={r['machines']:g} USD/h={r['price_per_hour']:g} "
                  f"target={pl['target']:g} steps={r['run_steps']:,}",
                  *("  " + f for f in pl["formula"].splitlines()),
                  f"  full run: {duration(pl['wall_s'])} wall, "
                  f"{pl['machine_s'] / 3600:,.1f} machine-hours, {_usd(pl['usd'])}"]
    return "\n".join(lines)
