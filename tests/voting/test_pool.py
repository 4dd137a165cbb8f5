"""Second opinions, prompt pools and escalation (voting/pool.py): the combining rule, the
plan's sources in the ledger, resume, verify, and a model that is confidently wrong on a few
steps outvoted without the reference."""
import sqlite3
import threading

import pytest

from maker_local.backends.pooled import PoolBackend
from maker_local.core.types import Backend
from maker_local.backends.sim import SimBackend, SimModel
from maker_local.voting.chain import replay
from maker_local.voting.pool import Contested, Plan, Pool, PoolVotes, Source
from maker_local.voting.schedule import Schedule, VoteConfig
from maker_local.voting.seeds import Temperatures, split_seed
from maker_local.voting.rules import AheadByK, FirstToK
from maker_local.tasks.hanoi import Hanoi


class Stubborn(Backend):
    """A real sim model that is wrong on every sample at a few steps: the same wrong answer
    each time (what a model that learned something wrong does)."""

    name = "stubborn"
    reads_prompts = False

    def __init__(self, task, model, bad_steps):
        self.sim, self.task, self.bad = SimBackend(task, model), task, set(bad_steps)

    def sample(self, requests):
        out = self.sim.sample(requests)
        for req, samples in zip(requests, out):
            if req.step in self.bad:
                wrong = self.task.text(self.task.wrong_answers(req.x, 1)[0])
                for s in samples:
                    s.text, s.finish_reason = wrong, "stop"
        return out

    def describe(self):
        return {"backend": self.name, "bad": sorted(self.bad)}

    def close(self):
        pass


BAD = (37, 150)


def make_pool(task, escalate=True, rotation=(0, 1), contest_after=9, bad=BAD):
    good = SimModel(error=0.01, valid=0.95, seed=2)
    engines = [Stubborn(task, SimModel(error=0.01, valid=0.95, seed=1), bad),
               SimBackend(task, good), SimBackend(task, SimModel(error=0.02, seed=3))]
    temps = Temperatures(0.0, 1.0)
    sources = tuple(Source(f"m{i}", task, temps, 750, True, False, e.describe())
                    for i, e in enumerate(engines))
    plan = Plan(rotation, (2,) if escalate else (), contest_after)
    return Pool(sources, plan), PoolBackend(engines, [0, 1, 2])


def drive(task, pool, backend, **cfg):
    sched = Schedule(task, VoteConfig(k=3, pool=pool, prompts=False, **cfg), "rounds")
    decided, samples, reqs = [], [], []
    while not sched.finished:
        batch = sched.next_batch()
        rows = sched.accept(batch, backend.sample(batch))
        decided += rows.decided
        samples += rows.samples
        reqs += batch
    return decided, samples, reqs


# ------------------------------------------------------------------- the combining rule
def test_pooled_votes_decide_only_when_every_source_agrees():
    v = PoolVotes(AheadByK, 2, Plan((0, 1), (), 100))
    assert not v.add("R", 0) and v.add("R", 1) and v.winner == "R"  # both agree: decided
    v = PoolVotes(AheadByK, 2, Plan((0, 1), (), 100))
    for key, src in [("R", 0), ("W", 1), ("R", 0), ("R", 0)]:
        done = v.add(key, src)
    # R leads W by 2, but source 1's own top answer is W: not decided
    assert not done and v.winner is None and v.needed() == 1
    assert v.add("R", 1) is False  # source 1 now ties R and W: still no
    assert v.add("R", 1) is True and v.winner == "R"


def test_a_fifty_fifty_split_is_contested_not_decided_by_luck():
    v = PoolVotes(AheadByK, 3, Plan((0, 1), (), 8))
    for i in range(8):
        assert not v.add("W" if i % 2 == 0 else "R", i % 2)
    assert v.contested and v.winner is None and v.needed() == 0
    # pooled ahead-by-k alone can end such a split at either answer: here at W
    plain = AheadByK(3)
    for key in ["W", "R", "W", "W", "R", "W", "W"]:
        plain.add(key)
    assert plain.winner == "W"


def test_escalation_decides_a_contested_step_from_its_own_votes():
    v = PoolVotes(AheadByK, 2, Plan((0, 1), (2,), 4))
    for i in range(4):
        v.add("W" if i % 2 == 0 else "R", i % 2)
    assert v.contested and v.esc is not None
    assert v.source_at(4) == 2 and v.esc_start == 4 and v.source_at(5) == 2
    assert not v.add("W", 0)  # a rotation vote asked before the contest: not counted
    assert not v.add("R", 2) and v.add("R", 2) and v.winner == "R" and v.votes == 2


def test_needed_stops_at_the_contest_point_and_first_to_k_works_too():
    v = PoolVotes(AheadByK, 3, Plan((0,), (1,), 4))
    assert v.needed() == 3
    v.add("A", 0), v.add("B", 0)
    assert v.needed() == 2  # ahead-by-3 would need 3 more; the contest comes after 2
    f = PoolVotes(FirstToK, 2, Plan((0, 1), (), 10))
    assert not f.add("A", 0) and f.add("A", 1) and f.winner == "A"


def test_replay_reproduces_the_live_decision():
    votes = [("W", 0), ("R", 1), ("W", 0), ("R", 1), ("R", 2), ("R", 2)]
    keys, sources = [k for k, _ in votes], [s for _, s in votes]
    assert replay(AheadByK, 2, keys, sources, Plan((0, 1), (2,), 4)) == ("R", 2)
    assert replay(AheadByK, 2, keys[:4], sources[:4], Plan((0, 1), (), 4)) == (None, 4)


def test_plan_refuses_nonsense():
    with pytest.raises(ValueError, match="rotation"):
        Plan((0, 1), (1,), 3)
    with pytest.raises(ValueError):
        Plan((), (), 3)
    with pytest.raises(ValueError):
        Plan((0,), (), 0)


# ------------------------------------------------------------------------- a schedule
def test_stubborn_model_alone_is_wrong_and_the_pool_fixes_it():
    task = Hanoi(9)
    pool, backend = make_pool(task)
    alone = Schedule(task, VoteConfig(k=3, prompts=False, temperatures=Temperatures(0, 1)),
                     "rounds")
    errors = 0
    while not alone.finished:
        b = alone.next_batch()
        errors += alone.accept(b, backend.backends[0].sample(b)).errors
    assert errors == len(BAD)  # voting makes its wrong answer certain

    decided, samples, reqs = drive(task, pool, backend)
    assert len(decided) == task.num_steps() and all(d.correct == 1 for d in decided)
    by_step = {}
    for s in samples:
        by_step.setdefault(s.step, []).append(s)
    for step in BAD:  # contested after 9 rotation votes, then escalated
        got = sorted(by_step[step], key=lambda s: s.idx)
        srcs = [s.source for s in got]
        e = srcs.index(2)  # the rotation until 9 valid votes, then the escalation only
        assert srcs[:e] == [i % 2 for i in range(e)] and set(srcs[e:]) == {2}
        assert sum(s.answer is not None for s in got[:e]) == 9
    # every sample's source is the one the plan names for its index; seeds stay pure
    for r in reqs:
        assert split_seed(r.seed)[1:] == (r.step, r.first_index)
        if r.source != 2:  # the rotation: one vote per request, alternating by index
            assert r.source == r.first_index % 2 and r.n == 1


def test_contested_without_escalation_stops_the_run_and_names_the_step():
    task = Hanoi(8)
    pool, backend = make_pool(task, escalate=False, bad=(20,))
    with pytest.raises(Contested, match="step 20 is contested.*--escalate"):
        drive(task, pool, backend)


def test_prompt_pool_sources_share_an_engine_and_render_their_own_style():
    task, paper = Hanoi(6, style="compact"), Hanoi(6, style="paper")
    sim = SimBackend(task, SimModel(error=0.0, seed=1))
    temps = Temperatures(0.0, 1.0)
    sources = (Source("m", task, temps, 750), Source("m", paper, temps, 750))
    pool = Pool(sources, Plan((0, 1), (), 9))
    backend = PoolBackend([sim], [0, 0])
    sched = Schedule(task, VoteConfig(k=3, pool=pool, prompts=True), "rounds")
    reqs = sched.next_batch()
    by_src = {r.source: r.messages for r in reqs if r.step == 0}
    assert by_src[0] != by_src[1]  # two renderings of one step
    assert by_src[0] == task.render(task.initial()) and by_src[1] == paper.render(
        task.initial())


# -------------------------------------------------------------- ledger, resume, verify
def spec(task, **kw):
    from maker_local.driver.run import RunSpec
    pool, backend = make_pool(task, **kw)
    vote = VoteConfig(k=3, pool=pool, prompts=False, window=64,
                      temperatures=Temperatures(0.0, 1.0))
    return RunSpec(task, backend, vote)


def rows(run_dir):
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    out = [con.execute("SELECT step, idx, epoch, round, seed, answer, flag, source FROM samples "
                       "ORDER BY step, idx").fetchall(),
           con.execute("SELECT * FROM decided ORDER BY step").fetchall(),
           con.execute("SELECT digest FROM rounds ORDER BY round").fetchall()]
    con.close()
    return out


class Stop(Exception):
    pass


def test_a_pooled_run_resumes_to_the_uninterrupted_result_and_verifies(tmp_path):
    from maker_local.analysis.verify import verify
    from maker_local.driver.run import solve

    task = Hanoi(9)
    whole = solve(spec(task), tmp_path / "whole", progress=False)
    assert whole["steps"]["errors"] == 0
    assert set(BAD) <= set(whole["pool"]["contested"]["first"])
    assert [s["source"] for s in whole["pool"]["sources"]] == [0, 1, 2]

    seen = {"n": 0}

    def kill_after_3(_rows):
        seen["n"] += 1
        if seen["n"] == 3:
            raise Stop
    with pytest.raises(Stop):
        solve(spec(task), tmp_path / "cut", progress=False, on_round=kill_after_3)
    with pytest.raises(Exception, match="another run"):  # the pool is the run's identity
        solve(spec(task, contest_after=7), tmp_path / "cut", resume=True, progress=False)
    solve(spec(task), tmp_path / "cut", resume=True, progress=False)
    assert rows(tmp_path / "cut") == rows(tmp_path / "whole")

    v = verify(tmp_path / "whole")
    assert v["ok"] and v["decisions"]["problems"] == 0
    con = sqlite3.connect(tmp_path / "whole" / "ledger.sqlite")  # forge a vote's source
    con.execute("UPDATE samples SET source = 1 WHERE step = ? AND idx = 0", (BAD[0],))
    con.commit()
    con.close()
    bad = verify(tmp_path / "whole")
    assert not bad["ok"] and bad["chain"]["verified"] is False


# ------------------------------------------------------- no decision reads the reference
class LyingReference:
    """Hanoi whose reference answer is wrong at a few steps; everything else is Hanoi's."""

    def __init__(self, task, lie_at):
        self._task, self._lie = task, set(lie_at)
        self._steps = {}

    def __getattr__(self, name):
        return getattr(self._task, name)

    def reference(self, x):
        ref = self._task.reference(x)
        step = self._task_step(x)
        if step in self._lie:
            wrong = self._task.wrong_answers(x, 1)[0]
            return self._task.parse(self._task.text(wrong), x)
        return ref

    def _task_step(self, x):
        if not self._steps:
            y = self._task.initial()
            for i in range(self._task.num_steps()):
                self._steps[repr(y)] = i
                y = self._task.next_input(y, self._task.reference(y).answer)
        return self._steps.get(repr(x))


def decide_all(task, backend, pool):
    sched = Schedule(task, VoteConfig(k=3, pool=pool, prompts=False), "rounds")
    keys, decided = {}, []
    while not sched.finished:
        b = sched.next_batch()
        rows = sched.accept(b, backend.sample(b))
        keys.update({(a.step, a.epoch, a.id): a.key for a in rows.answers})
        decided += rows.decided
    return decided, {d.step: keys[(d.step, d.epoch, d.answer)] for d in decided}


def test_decisions_come_from_votes_not_from_the_reference():
    """The same votes decide the same answers when the task's reference lies: the lie shows
    up only as a divergence and an 'error' against it, never in what was decided."""
    task = Hanoi(7)
    pool, backend = make_pool(task, bad=())  # every source samples from the true task
    truth, won = decide_all(task, backend, pool)
    pool2, backend2 = make_pool(task, bad=())
    lied, won_lied = decide_all(LyingReference(task, {10, 40}), backend2, pool2)
    assert all(d.correct == 1 for d in truth) and len(won) == task.num_steps()
    assert won_lied == won  # every step decided the same answer
    assert sum(d.divergent for d in lied) == 2 and sum(d.correct == 0 for d in lied) == 2


# -------------------------------------------------------------- engines work at once
class Meeting(Backend):
    """An engine whose `sample` returns only once every engine of the call is inside its own
    `sample` (a barrier): a pool that asked its engines one after another would time out."""

    def __init__(self, inner, barrier, fail=False):
        self.inner, self.barrier, self.fail, self.threads = inner, barrier, fail, []

    def sample(self, requests):
        self.threads.append(threading.current_thread().name)
        self.barrier.wait()
        if self.fail:
            raise RuntimeError("engine b fell over")
        return self.inner.sample(requests)

    def describe(self):
        return self.inner.describe()

    def close(self):
        pass


def meeting_pool(fail_second=False):
    """Two Meeting engines (sims of seeds 1, 2), a pool rotating over them, the first round's
    requests: (engines, backend, requests)."""
    task = Hanoi(6)
    barrier = threading.Barrier(2, timeout=20)
    engines = [Meeting(SimBackend(task, SimModel(error=0.0, seed=s)), barrier,
                       fail=fail_second and s == 2) for s in (1, 2)]
    temps = Temperatures(0.0, 1.0)
    sources = tuple(Source(f"m{i}", task, temps, 750) for i in range(2))
    sched = Schedule(task, VoteConfig(k=3, pool=Pool(sources, Plan((0, 1), (), 9)),
                                      prompts=False), "rounds")
    return engines, PoolBackend(engines, [0, 1]), sched.next_batch()


def test_a_pools_engines_work_at_the_same_time_and_answer_in_order():
    engines, backend, reqs = meeting_pool()
    got = backend.sample(reqs)
    assert len(got) == len(reqs)
    alone = [engines[r.source].inner.sample([r])[0] for r in reqs]
    assert [[s.text for s in g] for g in got] == [[s.text for s in g] for g in alone]
    assert sorted(e.threads[0] == threading.main_thread().name for e in engines) == [False,
                                                                                      True]


def test_an_engine_that_fails_in_its_thread_fails_the_call():
    _engines, backend, reqs = meeting_pool(fail_second=True)
    with pytest.raises(RuntimeError, match="engine b fell over"):
        backend.sample(reqs)
