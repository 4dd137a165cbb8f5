"""Voting schedules as sans-I/O state machines.

A schedule emits the next batch of `SampleRequest`s (`next_batch`) and takes their results
(`accept`), returning the rows a driver should persist. It never touches a backend, a clock or
a disk, so it is tested without any of them and one driver serves every backend.

- `sequential`: one step at a time; the next input is the voted next state (true chaining).
- `rounds` (speculative): a draft (the task's reference rollout from the chain) supplies the
  inputs of a window of steps, all voted at once. Each round asks every undecided step for
  exactly the votes it still needs to be able to finish under the run's voting rule
  (`voting/rules.py`; k - current margin under ahead-by-k) as one n-sample request (two
  when the step's first, greedy vote is among them). Decisions are final in step
  order; a final decision that differs from the draft is a divergence: it is counted, the chain
  follows the vote, the draft is re-derived from there and later steps start a new epoch (their
  earlier samples stay in the ledger, marked by their old epoch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from ..core.gcpause import gc_paused
from ..core.records import AnswerRow, DecisionRow, SampleRow
from ..core.types import Sample, SampleRequest
from ..tasks.base import Flag, Parsed, Task
from .chain import follow
from .redflags import classify
from .seeds import MAX_SAMPLES_PER_STEP, sample_seed, Temperatures
from .pool import Contested, Pool, PoolVotes
from .rules import DEFAULT_RULE, Rule, get_rule

SCHEDULES = ("rounds", "sequential")
_finish_reason = attrgetter("finish_reason")


@dataclass
class VoteConfig:
    k: int
    max_tokens: int = 750
    temperatures: Temperatures = field(default_factory=Temperatures)
    run_seed: int = 0
    check_legal: bool = False  # red-flag answers that break the task's rules
    max_samples: int = 1000
    window: int = 131072
    keep_text: str = "some"  # "some": flagged, losing and a share of winning samples; "all"
    keep_share: int = 100  # "some" keeps 1 in keep_share winning texts (by seed)
    constrained: bool = True  # send the task's output constraint to the engine
    # on a divergence, "vote": the chain follows the vote (a run); "draft": the chain stays on
    # the draft and the divergence is only counted (speed tests with random weights)
    follow: str = "vote"
    # attach the draft answer's text to requests (for backends that sample against a draft)
    drafts: bool = False
    rule: str = DEFAULT_RULE  # the voting rule (voting/rules.py RULES)
    # render each request's prompt (False when the backend reads none: the sim)
    prompts: bool = True
    # several sources vote on each step (voting/pool.py: second opinions, prompt pools,
    # escalation); None: the run's one model casts every vote
    pool: Pool | None = None


class StuckStep(Exception):
    """A step used its whole sample budget without a decision."""

    def __init__(self, step: int, samples: int, counts: dict[str, int]):
        self.step, self.samples, self.counts = step, samples, counts
        top = sorted(counts.values(), reverse=True)[:2]
        why = (f"top vote counts {top}" if top else
               "no sample asked yet: k is more than the sample budget" if samples == 0 else
               "every sample was red-flagged: the step may have no valid answer")
        super().__init__(f"step {step} is undecided after {samples} samples ({why})")


class StepState:
    """One step in the window: its input, reference, votes and the answers seen."""

    __slots__ = ("step", "x", "ref", "voter", "next_index", "samples", "rounds", "last_round",
                 "answers", "decided_round")

    def __init__(self, step: int, x: Any, ref: Parsed | None, voter: Rule, next_index: int):
        self.step, self.x, self.ref = step, x, ref
        self.voter = voter
        self.next_index = next_index  # vote index (and seed offset) of the next sample
        self.samples = 0  # samples in the current epoch
        self.rounds = 0  # rounds in which this step was asked, current epoch
        self.last_round = -1
        self.answers: dict[str, int] = {}  # vote key -> answer id within (step, epoch)
        self.decided_round = -1


@dataclass
class RoundRows:
    """What one round adds to the ledger; written in one transaction."""

    round: int
    samples: list[SampleRow] = field(default_factory=list)
    answers: list[AnswerRow] = field(default_factory=list)
    decided: list[DecisionRow] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    valid: int = 0
    errors: int = 0  # final decisions that disagree with the reference
    # samples by (step, idx), answers by (step, epoch, id), decisions by step: the order
    # the ledger hashes them in (a schedule makes them so: requests go out by step and
    # vote index, and their samples are counted in that order)
    ordered: bool = False

    @property
    def n_samples(self) -> int:
        return len(self.samples)


class Schedule:
    """Voting over a task's steps; `mode` is "rounds" or "sequential"."""

    def __init__(self, task: Task, cfg: VoteConfig, mode: str = "rounds", start: int = 0,
                 stop: int | None = None):
        """Vote steps start..stop-1 (default: the whole task). A slice starts from the
        task's reference input at `start` (`task.input_at`), so it certifies that range of
        the reference trajectory."""
        if mode not in SCHEDULES:
            raise ValueError(f"unknown schedule {mode!r}; choose one of {', '.join(SCHEDULES)}")
        if not 1 <= cfg.max_samples <= MAX_SAMPLES_PER_STEP:
            raise ValueError(f"max samples per step must be in 1..{MAX_SAMPLES_PER_STEP}")
        self.rule = get_rule(cfg.rule)
        self.rule(cfg.k)  # refuses a k the rule cannot use now, not at the first step
        self.pool = cfg.pool
        if self.pool is not None:
            rule, plan = self.rule, self.pool.plan
            self.rule = lambda k: PoolVotes(rule, k, plan)  # type: ignore[assignment]
        self.task, self.cfg, self.mode = task, cfg, mode
        self.total = task.num_steps() if stop is None else stop
        if not 0 <= start < self.total <= task.num_steps():
            raise ValueError(f"steps {start}:{self.total} is not a range of the task's "
                             f"{task.num_steps():,} steps")
        self.start = start
        self.window = 1 if mode == "sequential" else max(1, cfg.window)
        self.done = start  # steps finalized (a prefix of start..total-1)
        self.epoch = 0  # divergences so far
        self.round = 0
        self.pending: dict[int, StepState] = {}
        self.frontier = start  # next step to enter the window
        self.frontier_x: Any = task.initial() if start == 0 else task.input_at(start)
        self.chain_x: Any = self.frontier_x  # input of step `done`
        self.used: dict[int, int] = {}  # next vote index for steps with ledger samples (resume)

    # ------------------------------------------------------------------------------ emit
    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def _fill(self) -> None:
        limit = min(self.total, self.done + self.window)
        task, k, rule, pending, used = self.task, self.cfg.k, self.rule, self.pending, self.used
        reference, next_input = task.reference, task.next_input
        draft = self.mode == "rounds"
        step, x = self.frontier, self.frontier_x
        while step < limit and x is not None:
            ref = reference(x)
            pending[step] = StepState(step, x, ref, rule(k), used.pop(step, 0) if used else 0)
            step += 1
            # beyond the chain, inputs come from the draft: the reference rollout
            x = next_input(x, ref.answer) if ref is not None and draft else None
        self.frontier, self.frontier_x = step, x

    @gc_paused()
    def next_batch(self) -> list[SampleRequest]:
        """Requests for the next round (empty when the run is finished)."""
        self._fill()
        cfg, temps, task = self.cfg, self.cfg.temperatures, self.task
        render = task.render if cfg.prompts else None
        constraint = task.constraint if cfg.constrained else None
        run_seed, cap, drafts, budget = cfg.run_seed, cfg.max_tokens, cfg.drafts, cfg.max_samples
        out: list[SampleRequest] = []
        append = out.append
        if self.pool is not None:
            self._pool_requests(out)
            return out
        for st in self.pending.values():
            voter = st.voter
            if voter.winner is not None:
                continue
            need = voter.needed()
            i = st.next_index
            if st.samples + need > budget or i + need > MAX_SAMPLES_PER_STEP:
                raise StuckStep(st.step, st.samples, dict(voter.counts))
            step, x, ref = st.step, st.x, st.ref
            con = constraint(x) if constraint is not None else None
            msgs = render(x) if render is not None else None  # shared by the step's requests
            draft = task.text(ref.answer) if drafts and ref is not None else None
            seed0 = sample_seed(run_seed, step, 0)  # vote i has seed seed0 + i (i < 2^16)
            while need > 0:
                # the first vote of a step may be greedy: its own request of n=1
                t = temps.at(i)
                n = 1 if t != temps.at(i + 1) else need
                append(SampleRequest(step, x, msgs, n, t, cap, seed0 + i, con, i, draft))
                i += n
                need -= n
            st.next_index = i
        return out

    def _pool_requests(self, out: list[SampleRequest]) -> None:
        """`next_batch` for a pooled run: each vote index goes to the source the plan names
        for it; consecutive votes of one source at one temperature share a request."""
        cfg, pool = self.cfg, self.pool
        assert pool is not None
        sources = pool.sources
        run_seed, budget = cfg.run_seed, cfg.max_samples
        for st in self.pending.values():
            voter = st.voter
            if voter.winner is not None:
                continue
            need = voter.needed()
            if need == 0:  # contested, with nowhere to escalate
                raise Contested(st.step, voter.by_source,
                                [pool.label(i) for i in range(len(sources))])
            i = st.next_index
            if st.samples + need > budget or i + need > MAX_SAMPLES_PER_STEP:
                raise StuckStep(st.step, st.samples, dict(voter.counts))
            step, x, ref = st.step, st.x, st.ref
            seed0 = sample_seed(run_seed, step, 0)
            made: dict[int, tuple[Any, Any, Any]] = {}  # source -> (messages, constraint, draft)
            last: SampleRequest | None = None
            for j in range(i, i + need):
                src = voter.source_at(j)
                got = made.get(src)
                if got is None:
                    s = sources[src]
                    task = s.task
                    got = made[src] = (
                        task.render(x) if cfg.prompts else None,
                        task.constraint(x) if s.constrained else None,
                        task.text(ref.answer) if s.drafts and ref is not None else None)
                t = sources[src].temperatures.at(j)
                if (last is not None and last.source == src and last.temperature == t
                        and last.first_index + last.n == j):
                    last.n += 1
                    continue
                last = SampleRequest(step, x, got[0], 1, t, sources[src].max_tokens,
                                     seed0 + j, got[1], j, got[2], src)
                out.append(last)
            st.next_index = i + need

    # ---------------------------------------------------------------------------- accept
    @gc_paused()
    def accept(self, requests: list[SampleRequest], results: list[list[Sample]]) -> RoundRows:
        """Count the votes of one round; return the rows to persist."""
        rows = RoundRows(self.round, ordered=True)
        task, cfg, epoch, rnd = self.task, self.cfg, self.epoch, self.round
        rules, run_seed = cfg.check_legal, cfg.run_seed
        pool = self.pool
        out, flags, answers = rows.samples, rows.flags, rows.answers
        append = out.append
        spans: dict[int, int] = {}  # step -> index of its first row in this round
        cache: dict[str, Parsed | Flag] = {}  # text -> verdict, for the current step
        cache_step = -1
        # a failed request (error samples) is no vote and uses no vote index: its step's
        # requests of this round are dropped and asked again next round with the same seeds
        # (the driver normally asks again within the round, so this is a fallback)
        failed = {req.step for req, samples in zip(requests, results)
                  if "error" in map(_finish_reason, samples)}
        valid = 0  # votes among the round's samples
        if failed:  # rare (the driver asks failed requests again): rewind those steps
            first: dict[int, int] = {}
            for req in requests:
                if req.step in failed:
                    first[req.step] = min(first.get(req.step, req.first_index), req.first_index)
            for step in failed:
                if step in self.pending:
                    self.pending[step].next_index = first[step]
        pending = self.pending
        for req, samples in zip(requests, results):
            step = req.step
            st = pending.get(step)
            if st is None or len(samples) != req.n:
                raise ValueError(f"backend answered step {step} with {len(samples)} "
                                 f"samples for n={req.n}")
            if failed and step in failed:
                continue
            src = req.source
            if pool is not None:  # each source parses in its own rendering
                task = pool.sources[src].task
                if (step, src) != cache_step:
                    cache, cache_step = {}, (step, src)
            elif step != cache_step:
                cache, cache_step = {}, step
            if st.last_round != rnd:
                st.last_round = rnd
                st.rounds += 1
                spans.setdefault(step, len(out))
            voter, temp, x, seen = st.voter, req.temperature, st.x, st.answers
            idx = req.first_index
            seed = sample_seed(run_seed, step, idx)  # vote idx + j has seed + j
            st.samples += len(samples)
            for s in samples:
                text = s.text
                if s.finish_reason == "stop":
                    got = cache.get(text)
                    if got is None:
                        got = cache[text] = classify(s, task, x, rules)
                else:
                    got = classify(s, task, x, rules)
                if type(got) is Parsed:
                    valid += 1
                    key = got.key
                    aid = seen.get(key)
                    if aid is None:
                        aid = seen[key] = len(seen)
                        correct = None if st.ref is None else int(key == st.ref.key)
                        answers.append(AnswerRow(step, epoch, aid, key, correct))
                    if voter.winner is None and (voter.add(key) if pool is None
                                                 else voter.add(key, src)):
                        st.decided_round = rnd
                    flag = detail = None
                else:
                    aid, flag, detail = None, got.reason, got.detail
                    flags[flag] = flags.get(flag, 0) + 1
                lat = s.latency  # round() only when there is a latency (the sim has none)
                # ints as SQLite returns them (a backend may count with numpy)
                append(SampleRow(step, idx, epoch, rnd, seed, temp, aid, flag, detail,
                                 int(s.tokens_in), int(s.tokens_out), int(s.tokens_reasoning),
                                 round(lat * 1000.0, 3) if lat else lat * 1000.0, text, src))
                idx += 1
                seed += 1
        rows.valid = valid
        if cfg.keep_text != "all":
            for step, start in spans.items():
                self._trim_texts(self.pending[step], out, start)
        self._finalize(rows)
        self.round += 1
        return rows

    def _trim_texts(self, st: StepState, out: list[SampleRow], start: int) -> None:
        """Keep raw text for flagged and losing samples and a share of winners."""
        if st.voter.winner is None:
            return  # undecided: any of these may lose, so keep them all
        win = st.answers[st.voter.winner]
        share = self.cfg.keep_share
        for i in range(start, len(out)):
            r = out[i]
            if r.step != st.step:
                break
            if r.answer == win and r.seed % share != 0:
                r.text = None

    def _finalize(self, rows: RoundRows) -> None:
        """Make decisions final in step order; follow the vote on a divergence."""
        task = self.task
        while self.done < self.total:
            st = self.pending.get(self.done)
            if st is None or st.voter.winner is None:
                break
            del self.pending[self.done]
            win = st.voter.winner
            correct = None if st.ref is None else int(win == st.ref.key)
            divergent = int(self.mode == "rounds" and st.ref is not None and win != st.ref.key)
            if correct == 0:
                rows.errors += 1
            rows.decided.append(DecisionRow(st.step, self.epoch, st.answers[win],
                                            st.voter.votes, st.samples, st.rounds,
                                            st.voter.leader_and_margin()[1],
                                            st.decided_round, divergent, correct))
            self.done += 1
            if divergent and self.cfg.follow == "draft":
                divergent = 0  # counted as an error above; the chain keeps to the draft
                win = st.ref.key
            nxt = self.pending.get(self.done)
            if nxt is not None and st.ref is not None and win == st.ref.key:
                self.chain_x = nxt.x  # on the draft: the next step's input, in the window
            else:
                self.chain_x = follow(task, st.x, win, st.ref)
            if divergent or self.mode == "sequential" or self.frontier == self.done:
                # the chain leaves the draft (or has no draft): later inputs start from here
                if divergent:
                    self.epoch += 1
                    for s in [s for s in self.pending if s > st.step]:
                        self.used[s] = self.pending.pop(s).next_index
                    self.frontier = self.done
                if self.frontier == self.done:
                    self.frontier_x = self.chain_x

    # ---------------------------------------------------------------------------- resume
    @gc_paused()
    def restore(self, done: int, epoch: int, rounds: int, chain_x: Any,
                used: dict[int, int], replay: dict[int, list[tuple[int, int, str | None, int]]]
                ) -> None:
        """Rebuild the state an uninterrupted run had after its last persisted round.

        `used`: next vote index of every unfinished step with ledger samples (all epochs).
        `replay`: per step, its current-epoch samples (index, round, vote key or None,
        source), in vote-index order.
        """
        self.done, self.epoch, self.round = done, epoch, rounds
        self.chain_x = self.frontier_x = chain_x
        self.frontier = done
        self.pending.clear()
        self.used = dict(used)
        self._fill()
        for step, samples in replay.items():
            st = self.pending.get(step)
            if st is None:
                raise ValueError(f"ledger has samples for step {step} outside the window; "
                                 "resume with the --window the run started with")
            pooled = self.pool is not None
            for idx, rnd, key, src in samples:
                st.samples += 1
                if rnd != st.last_round:
                    st.last_round, st.rounds = rnd, st.rounds + 1
                if pooled:
                    st.voter.seen(idx, src)
                if key is None:
                    continue
                if key not in st.answers:
                    st.answers[key] = len(st.answers)
                if st.voter.winner is None and (st.voter.add(key, src) if pooled
                                                else st.voter.add(key)):
                    st.decided_round = rnd
