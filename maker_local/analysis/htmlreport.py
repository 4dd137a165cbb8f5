"""One self-contained HTML page per run: `write_html(run_dir)` -> run_dir/report.html.

Reads the ledger only (`build_report`, `replay` and `store.reads`); every plot is a
matplotlib PNG embedded as base64, and there are no external assets, scripts or fonts, so the
page can be mailed, archived or opened offline.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..core.stats import length_bins, wilson
from ..voting.rules import RULES, rule_of
from ..store import Ledger, reads
from ..driver.report import build_report

HTML_NAME = "report.html"
_MAX_ROWS = 500_000  # sample rows read for the length plots; larger runs use a step subsample

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}code{font-size:90%}
img{max-width:100%;display:block;margin:.5em 0}.ok{color:#070}.bad{color:#b00}"""


def _png(fig: Any) -> str:
    """An <img> with the figure inlined as a base64 PNG."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list[Any]], left: tuple[int, ...] = (0,)) -> str:
    """A table; columns in `left` are left-aligned text, the rest numbers; cells escaped."""
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i in left else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"
    out = ["<table><tr>" + "".join(cell("th", i, h) for i, h in enumerate(head)) + "</tr>"]
    out += ["<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows]
    return "\n".join(out) + "</table>"


def _figures(rep: dict[str, Any], s: np.ndarray) -> tuple[dict[str, str], list[dict]]:
    """The plots as <img> tags, and the error-by-length bins."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, str] = {}
    und = rep["rounds"]["undecided_after"]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if und:
        ax.plot(range(len(und)), und, marker="o")
        ax.set_yscale("symlog", linthresh=1)
    ax.set(xlabel="voting round", ylabel="undecided steps",
           title=f"Undecided steps after each round (k={rep['k']})")
    ax.grid(alpha=0.3)
    figs["undecided"] = _png(fig)

    hist = rep["votes_histogram"]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if hist:
        ax.bar([int(v) for v in hist], list(hist.values()), width=0.8)
        ax.set_yscale("log")
    ax.set(xlabel="valid votes to decide a step", ylabel="steps", title="Votes per step")
    ax.grid(alpha=0.3)
    figs["votes"] = _png(fig)

    flags = rep["samples"]["flagged_by_reason"]
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.barh(list(flags), list(flags.values()), color="#c55")
    ax.set(xlabel="red-flagged samples", title="Red flags by reason")
    figs["flags"] = _png(fig)

    # error against output length, among valid samples whose correctness is known
    known = (s[:, 3] == 1) & (s[:, 4] >= 0)
    bins = length_bins(s[known, 1].astype(float), s[known, 4] == 0)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if bins:
        y = np.array([b["error"] for b in bins])
        err = np.maximum(0, [[b["error"] - b["low"] for b in bins],
                             [b["high"] - b["error"] for b in bins]])
        ax.errorbar([(b["lo"] + b["hi"]) / 2 for b in bins], y, yerr=err, marker="o", capsize=3)
    ax.set(xlabel="output tokens", ylabel="error rate (95% Wilson)",
           title="Error against output length (valid samples)")
    ax.grid(alpha=0.3)
    figs["length"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if s.size:
        edges = np.histogram_bin_edges(s[:, 1], bins=50)
        ax.hist(s[:, 1], bins=edges, alpha=0.7, label="all samples")
        if known.any():
            ax.hist(s[known & (s[:, 4] == 0), 1], bins=edges, alpha=0.8, label="wrong answers")
        ax.set_yscale("log")
        ax.legend()
    ax.set(xlabel="output tokens", ylabel="samples", title="Output length")
    figs["tokens"] = _png(fig)
    return figs, bins


def _stats_row(name: str, total: int, v: np.ndarray) -> list[Any]:
    if v.size == 0:
        return [name, f"{total:,}", 0, 0, 0, 0, 0]
    q = np.percentile(v, [50, 90, 99])
    return [name, f"{total:,}", f"{v.mean():.1f}", f"{q[0]:g}", f"{q[1]:g}",
            f"{q[2]:g}", f"{int(v.max()):,}"]


def render(run_dir: Path) -> str:
    """The page as a string."""
    from .replay import replay

    rep = build_report(run_dir)
    led = Ledger.read(run_dir)
    try:  # (tokens_in, tokens_out, tokens_reasoning, valid, correct) per sample
        s = reads.sample_sizes(led, _MAX_ROWS)
    finally:
        led.close()
    figs, bins = _figures(rep, s)
    st, sm = rep["steps"], rep["samples"]
    title = f"{run_dir.name}: {rep['task_label']}, k={rep['k']}"
    err_cls = "ok" if st["errors"] == 0 else "bad"
    summary = _table(["", "value"], [
        ["task", f"{rep['task_label']} ({st['total']:,} steps)"],
        ["backend / schedule", f"{rep['backend']} / {rep['schedule']}"],
        ["voting rule, k", f"{rule_of(rep)}, k={rep['k']}"],
        ["finished", rep["finished"]],
        ["decided steps", f"{st['decided']:,} / {st['total']:,}"],
        ["errors vs reference", st["errors"]], ["divergences", st["divergences"]],
        ["steps needing > k votes", f"{st['more_than_k_votes']:,}"],
        ["samples (valid / flagged)", f"{sm['total']:,} ({sm['valid']:,} / {sm['flagged']:,})"],
        ["votes per step (mean / p99 / max)", f"{rep['votes_per_step']['mean']:.3f} / "
         f"{rep['votes_per_step']['p99']:g} / {rep['votes_per_step']['max']:g}"],
        ["rounds (max for one step)", f"{rep['rounds']['total']} "
         f"({rep['rounds']['max_per_step']})"],
        ["collisions (first two valid votes wrong)", rep["collisions"]],
        ["wall time in rounds", f"{rep['wall_seconds']:.1f} s"]])
    flags = _table(["reason", "samples", "share of samples"],
                   [[r, f"{n:,}", f"{n / max(1, sm['total']):.2%}"]
                    for r, n in sm["flagged_by_reason"].items()])
    length = _table(["tokens out", "valid samples", "error", "95% interval"],
                    [[f"{b['lo']:g}..{b['hi']:g}", b["n"], f"{b['error']:.4f}",
                      f"{b['low']:.4f}..{b['high']:.4f}"] for b in bins])
    # a reasoning model's output is thought + answer: both are paid for, only one votes
    cols = {"in": s[:, 0], "out": s[:, 1], "reasoning": s[:, 2], "answer": s[:, 1] - s[:, 2]}
    tokens = _table(["tokens per sample", "total", "mean", "p50", "p90", "p99", "max"],
                    [_stats_row(n, rep["tokens"][n], cols[n]) for n in cols])
    cost = rep.get("cost_usd")
    if cost:
        tokens += _table(["cost (USD)", "input", "thought", "answer", "total"],
                         [[cost["basis"], *(f"{cost[k]:,.4f}" for k in
                                            ("input", "thought", "answer", "total"))]])
    hard = []
    for h in rep["hardest_steps"]:
        for i, a in enumerate(h["answers"]):
            mark = "right" if a["correct"] == 1 else "wrong" if a["correct"] == 0 else "?"
            hard.append([h["step"] if i == 0 else "", h["samples"] if i == 0 else "",
                         a["key"], a["votes"], mark + (" (won)" if a["winner"] else "")])
    hardest = _table(["step", "samples", "answer (vote key)", "votes", ""], hard, left=(2, 4))
    # the run's recorded votes under the other rules at the run's k
    others = [(name, rep["k"]) for name in RULES if name != rule_of(rep)]
    rp = replay(run_dir, others)
    replay_t = _table(["rule", "k", "decided", "wrong", "out of votes", "votes/step"],
                      [[a["rule"] + (" (as run)" if a["as_run"] else ""), a["k"], a["decided"],
                        a["wrong"], a["out_of_votes"], f"{a['votes_mean']:.3f}"]
                       for a in rp["rules"]])
    lo, hi = wilson(st["errors"], max(1, st["decided"]))
    body = f"""<h1>{html.escape(title)}</h1>
<section id="summary"><h2>Summary</h2>{summary}
<p class="{err_cls}">{st['errors']} wrong decisions in {st['decided']:,} decided steps
(per-step error 95% interval {float(lo):.2e}..{float(hi):.2e}).</p></section>
<section id="undecided"><h2>Undecided steps by round</h2>
<p>The paper's Figure 8: how many steps still lack a decision after each voting round.</p>
{figs['undecided']}</section>
<section id="votes"><h2>Votes per step</h2>{figs['votes']}</section>
<section id="flags"><h2>Red flags</h2>{flags}{figs['flags']}</section>
<section id="length"><h2>Output length against error</h2>
<p>Valid samples by output length (quantile bins); long answers that are more often wrong
argue for a lower <code>--max-tokens</code>.</p>{figs['length']}{length}</section>
<section id="tokens"><h2>Tokens</h2>{tokens}{figs['tokens']}</section>
<section id="hardest"><h2>Hardest steps</h2><p>The steps that needed the most samples, with
their competing answers.</p>{hardest}</section>
<section id="replay"><h2>Voting rules replayed</h2><p>The run's recorded votes replayed under
{html.escape(", ".join(name for name, _ in others))}; "out of votes" means the run stopped
before that rule could decide.</p>
{replay_t}</section>"""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def write_html(run_dir: Path) -> Path:
    """Write run_dir/report.html and return its path."""
    run_dir = Path(run_dir)
    path = run_dir / HTML_NAME
    path.write_text(render(run_dir), encoding="utf-8")
    return path
