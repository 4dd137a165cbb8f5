"""Replay a finished run's recorded votes under another voting rule (the paper's Figure 8 idea).

For every decided step, the valid samples of its final epoch are fed, in vote-index order, to a
rule of `maker_local.voting.rules.RULES` (with its own k): the same rule classes that vote
live. Reads the ledger only (`store.reads`).

Caveat: the ledger holds only the votes the run's own rule asked for. A rule that needs more
votes than were drawn for a step "runs out" (reported as `out_of_votes`): it is undecided with
the samples available, not necessarily wrong. A rule that stops earlier uses a prefix of them,
which is exactly what it would have drawn (seeds are a pure function of step and vote index).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..voting.chain import replay as replay_step
from ..voting.pool import plan_of
from ..voting.rules import RULES, get_rule, rule_of
from ..store import Ledger, reads

_WRONG_LISTED = 20  # wrong decisions listed by step number per rule


def parse_rule(spec: str, default_k: int) -> tuple[str, int]:
    """'first-to-k', 'first-to-k:2' or 'ahead-by-k:5' -> (rule, k); ValueError explains."""
    name, _, k = spec.partition(":")
    get_rule(name)  # ValueError names the rules there are
    try:
        kk = int(k) if k else default_k
    except ValueError:
        raise ValueError(f"k in --rule {spec!r} must be an integer") from None
    if kk < 1:
        raise ValueError(f"k must be at least 1 (got {kk} in --rule {spec!r})")
    return name, kk


def replay(run_dir: Path, rules: list[tuple[str, int]]) -> dict[str, Any]:
    """Replay the run's decided steps under the run's own rule and each of `rules`.

    Returns {"run_dir", "rule", "k", "steps", "rules": [{rule, k, as_run, decided, wrong,
    out_of_votes, votes_mean, votes_max, agree, wrong_steps}]}; `as_run` marks the run's own
    rule at the run's k, which must reproduce the run exactly.
    """
    led = Ledger.read(run_dir)
    try:
        run = led.config["run"]
        k_run, rule_run = int(run["k"]), rule_of(run)
        todo = [(rule_run, k_run)] + [r for r in rules if r != (rule_run, k_run)]
        voters = [(RULES[name], k) for name, k in todo]
        plan = plan_of(run)  # a pooled run's votes combine by voting/pool.py's rule
        acc = [{"rule": name, "k": k, "as_run": i == 0, "decided": 0, "wrong": 0,
                "out_of_votes": 0, "votes": 0, "votes_max": 0, "agree": 0, "wrong_steps": []}
               for i, (name, k) in enumerate(todo)]
        steps = 0
        for sv in reads.final_votes(led):
            steps += 1
            for (rule, k), a in zip(voters, acc):
                # answer ids stand in for the keys: one id per key
                won, used = replay_step(rule, k, sv.votes,
                                        None if plan is None else sv.sources, plan)
                if won is None:
                    a["out_of_votes"] += 1
                    continue
                a["decided"] += 1
                a["votes"] += used
                a["votes_max"] = max(a["votes_max"], used)
                a["agree"] += won == sv.winner
                if sv.correct[won] == 0:
                    a["wrong"] += 1
                    if len(a["wrong_steps"]) < _WRONG_LISTED:
                        a["wrong_steps"].append(sv.step)
    finally:
        led.close()
    for a in acc:
        a["votes_mean"] = a.pop("votes") / a["decided"] if a["decided"] else 0.0
    return {"run_dir": str(run_dir), "rule": rule_run, "k": k_run, "steps": steps,
            "rules": acc}


def format_replay(r: dict[str, Any]) -> str:
    """A small table, one row per rule; each column as wide as its widest cell, two spaces
    apart, so large counts (1,048,575 votes) never run into their neighbours."""
    head = ("rule", "k", "decided", "wrong", "out of votes", "votes/step", "max", "agree")
    rows = [(a["rule"], f"{a['k']}", f"{a['decided']:,}", f"{a['wrong']:,}",
             f"{a['out_of_votes']:,}", f"{a['votes_mean']:.3f}", f"{a['votes_max']:,}",
             f"{a['agree']:,}") for a in r["rules"]]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]

    def line(cells: tuple[str, ...]) -> str:
        # the rule's name on the left, numbers right-aligned under their headers
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [f"replayed {r['steps']:,} decided steps of {r['run_dir']} (run: "
             f"{rule_of(r)}, k={r['k']})", line(head)]
    for a, cells in zip(r["rules"], rows):
        lines.append(line(cells) + ("  (as run)" if a["as_run"] else ""))
    lines.append("out of votes: undecided with the votes the run recorded (it stopped earlier); "
                 "agree: same answer as the run")
    return "\n".join(lines)
