"""A run's ledger as a certificate: check it without trusting the process that wrote it.

`verify(run_dir)` reads the ledger only and checks, in one pass over each table:
1. the digest chain (`store/integrity.py`): no row changed, deleted or inserted since written;
2. every decision, replayed from the recorded votes in recorded order under the run's voting
   rule (`voting/chain.py` replay: the classes of `voting/rules.py` that voted live;
   ahead-by-k for ledgers that do not name one): the same winner after the same number of votes, and the first undecided
   step's recorded votes do not already decide it;
3. every input, re-derived from the decisions (the first step's from the task, step i+1's
   from step i's voted answer: `voting/chain.py`, as the schedule follows them), and every
   error and divergence against the task's reference answer for that input.
Problems name the first step they affect. Memory: one step's votes at a time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..voting.chain import follow, replay, start_input
from ..voting.pool import plan_of
from ..voting.rules import get_rule, label, rule_of
from ..store import Ledger, reads

MAX_LISTED = 10  # problems listed per check (all are counted)


def _task(run: dict[str, Any]) -> Any:
    from ..tasks import from_describe
    return from_describe(run["task"])


def verify(run_dir: Path) -> dict[str, Any]:
    led = Ledger.read(run_dir)
    try:
        return _verify(led)
    finally:
        led.close()


def _verify(led: Ledger) -> dict[str, Any]:
    run = led.config["run"]
    k, rounds_mode, rule = int(run["k"]), run["schedule"] == "rounds", rule_of(run)
    task = _task(run)
    plan = plan_of(run)  # a pooled run: its votes combine by voting/pool.py's rule
    rule_cls = get_rule(rule)

    def decide(votes: list[Any]) -> tuple[str | None, int]:
        valid = [v for v in votes if v.answer is not None]
        return replay(rule_cls, k, [v.key for v in valid],
                      None if plan is None else [v.source for v in valid], plan)
    chain = led.verify()
    problems: dict[str, list[dict[str, Any]]] = {"decisions": [], "inputs": []}
    counts = {"decisions": 0, "inputs": 0, "problems_decisions": 0, "problems_inputs": 0}

    def problem(kind: str, step: int, what: str) -> None:
        counts[f"problems_{kind}"] += 1
        if len(problems[kind]) < MAX_LISTED:
            problems[kind].append({"step": step, "problem": what})

    votes = reads.votes_by_step(led)  # StepSamples, one step at a time
    current = next(votes, None)
    epoch_now = 0  # the epoch of undecided steps: one per divergence so far
    start = int(run["slice"][0]) if run.get("slice") else 0  # a slice run starts there
    x = start_input(task, start)
    errors = recorded_errors = 0
    expected_step = start
    for d, key in reads.decisions_with_keys(led):
        step, epoch = d.step, d.epoch
        counts["decisions"] += 1
        if step != expected_step:
            problem("decisions", expected_step, f"no decision recorded for step "
                    f"{expected_step}, but one for step {step}")
            expected_step = step
        expected_step += 1
        while current is not None and current.step < step:  # votes of a step with no decision
            current = next(votes, None)
        rows = current.votes if current is not None and current.step == step else []
        if rows:
            current = next(votes, None)
        mine = [v for v in rows if v.epoch == epoch]
        # 2. the decision, replayed
        if key is None:
            problem("decisions", step, f"its winning answer {d.answer} is not among its "
                    "answers")
        else:
            winner, used = decide(mine)
            if winner != key:
                problem("decisions", step, f"the recorded votes give {winner!r}, the ledger "
                        f"says {key!r} won" if winner else "the recorded votes decide "
                        f"nothing, the ledger says {key!r} won")
            elif used != d.votes:
                problem("decisions", step, f"decided after {used} votes by the recorded "
                        f"votes, the ledger says {d.votes}")
            if len(mine) != d.samples:
                problem("decisions", step, f"{len(mine)} samples recorded, the ledger's "
                        f"decision counts {d.samples}")
        # 3. the input and the reference
        counts["inputs"] += 1
        ref = task.reference(x) if x is not None else None
        right = None if ref is None else int(key == ref.key)
        recorded_errors += int(d.correct == 0)
        errors += int(right == 0)
        if right != d.correct:
            problem("inputs", step, f"against the reference answer for its input the "
                    f"decision is {'right' if right else 'wrong'}, the ledger says "
                    f"{'right' if d.correct else 'wrong' if d.correct == 0 else 'unknown'}")
        div = int(rounds_mode and ref is not None and key != ref.key)
        if div != d.divergent:
            problem("inputs", step, f"the decision {'leaves' if div else 'follows'} the "
                    f"draft, the ledger says it {'does' if d.divergent else 'does not'}")
        epoch_now += div
        if key is None:
            x = None
        else:
            try:
                if x is None:  # no input to follow, but the key must still be an answer
                    task.answer_from_key(key)
                else:
                    x = follow(task, x, key, ref)
            except (ValueError, KeyError, IndexError, TypeError):
                problem("inputs", step, f"its winning key {key!r} is not an answer")
                x = None
    # undecided steps: the first one's recorded votes (current epoch) must not decide it, or
    # it would have been made final (later ones may wait for it with a winner)
    undecided = 0
    while current is not None:
        step, rows = current.step, [v for v in current.votes if v.epoch == epoch_now]
        undecided += 1
        winner, _ = decide(rows)
        if winner is not None and step == expected_step:
            problem("decisions", step, f"undecided in the ledger, but its recorded votes "
                    f"decide {winner!r}")
        current = next(votes, None)
    firsts = [p[0]["step"] for p in problems.values() if p]
    ok = chain.ok is not False and not firsts
    return {
        "ok": ok, "rule": rule, "k": k, "chain": chain.as_dict(),
        "decisions": {"checked": counts["decisions"], "undecided_checked": undecided,
                      "problems": counts["problems_decisions"],
                      "listed": problems["decisions"]},
        "inputs": {"checked": counts["inputs"], "problems": counts["problems_inputs"],
                   "listed": problems["inputs"]},
        "errors": {"rederived": errors, "recorded": recorded_errors},
        "first_step": min(firsts) if firsts else (chain.steps[0] if chain.steps else None),
    }


def format_verify(r: dict[str, Any]) -> str:
    from ..store.integrity import Verdict

    c = r["chain"]
    chain = Verdict.from_dict(c).line()
    d, i, e = r["decisions"], r["inputs"], r["errors"]
    lines = [f"chain      {chain}",
             f"decisions  {d['checked']:,} replayed under "
             f"{label(rule_of(r), r['k'])} from the recorded "
             f"votes (and {d['undecided_checked']:,} undecided steps): "
             + ("all agree" if not d["problems"] else f"{d['problems']:,} disagree"),
             f"inputs     {i['checked']:,} re-derived from the decisions: "
             + ("all agree" if not i["problems"] else f"{i['problems']:,} disagree")
             + f"; {e['rederived']:,} errors against the reference (ledger: {e['recorded']:,})"]
    for kind in ("decisions", "inputs"):
        lines += [f"  step {p['step']}: {p['problem']}" for p in r[kind]["listed"]]
    lines.append("verdict    " + ("the ledger holds up" if r["ok"] else
                                  f"ALTERED: first affected step {r['first_step']}"))
    return "\n".join(lines)
