"""A model's per-sample accuracy p: where it comes from, which p plans a run, and k from it.

Sources (`model_accuracy` gathers them, best first):
  a calibration file  `maker-local calibrate`: a measured p with its 95% Wilson interval
  the model card      `card.json` beside a local model: the measured p of this task size
                      with its 95% interval at the card's temperature, else the exact
                      (teacher-forced) p at the run's; `card_classes.json`: exact p_i of
                      checked steps per class of steps, for k by class
  the backend         the sim knows its own p (1 - --sim-error): exact
  the user            plan --error, bench --p, a profile's [paper] figures: taken as given

Which p plans a run: `Estimate.conservative`, the LOW END of the 95% interval where the
source has one, else the value itself: k is chosen for the model the measurement cannot
rule out, not for its luckiest reading (p = 1.0000 measured on a few hundred samples is not
k = 1). Which k: THE rule, `maker_local.voting.krule.choose_k`, over the per-step
distribution the source measured (a calibration: its fitted beta plus hopeless steps, the
error at the interval's end; a card's class table; else independent errors at that p).
solve's and bench's `--k auto`, bench's projection, `plan --calibration` and `calibrate`'s
recommendation all call it, so one file or card gives one k, or one refusal, everywhere.

Pure: reads calibration files and model cards, starts nothing, prints nothing; what
`k auto` says is returned (`KChoice.message`) for the command to print. Plain values in,
no argparse.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import kind
from ..core.errors import UsageError
from ..voting.rules import DEFAULT_RULE, plans_k

DEFAULT_K = 3  # without a measured accuracy (or with a rule whose laws we lack)


@dataclass(frozen=True)
class Estimate:
    """A per-sample accuracy: the point value, the low end of its 95% interval (None: exact
    or given, no interval) and where it came from."""

    p: float
    low: float | None = None
    where: str = ""
    # a calibration's per-step distribution as `engine.krule.planning_distribution` reads it
    # (None: independent errors at `conservative`)
    cal: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def plan_source(self) -> str:
        """Where `distribution` came from, in the words every message uses."""
        if self.cal is not None and (self.cal.get("correlation") or {}).get("fit"):
            return (f"{self.where}: its per-step distribution, at p={self.conservative:.4f}, "
                    f"the low end of the 95% interval around the measured p={self.p:.4f}")
        return f"independent errors at p={self.conservative:.4f}, {self.source}"

    def distribution(self) -> Any:
        """The per-step distribution THE rule plans with (`engine.krule`)."""
        from ..voting.krule import planning_distribution
        from ..voting.steperrors import StepErrors
        if self.cal is not None:
            return planning_distribution(self.cal)
        return StepErrors(min(max(1 - self.conservative, 0.0), 0.999))

    @property
    def conservative(self) -> float:
        """The p that plans (the module's rule): the interval's low end, else p."""
        return self.p if self.low is None else min(self.low, self.p)

    @property
    def source(self) -> str:
        """Where `conservative` came from, in the words every message uses."""
        if self.low is None:
            return self.where
        if self.low < self.p:
            return (f"{self.where}: the low end of the 95% interval around the measured "
                    f"p={self.p:.4f}")
        return f"{self.where}: measured"


@dataclass(frozen=True)
class ClassTable:
    """A card's exact p_i per class of steps: {class: (steps in the class, p_i of its
    checked steps)}; exact (teacher-forced), so there is no interval to take the low end of."""

    table: dict[str, tuple[int, list[float]]]
    where: str


@dataclass(frozen=True)
class ModelAccuracy:
    """What is known of a model's accuracy on one task."""

    measured: Estimate | None = None  # a calibration or the card: makes k auto the default
    classes: ClassTable | None = None  # the card's class table (no calibration given)
    told: Estimate | None = None       # the backend's own (the sim's --sim-error)


@dataclass(frozen=True)
class KChoice:
    """k for a run; with k auto, what to print and what the run records."""

    k: int
    message: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------- sources
def read_calibration(path: Path | str) -> tuple[dict[str, Any], Estimate]:
    """A calibration file and the accuracy it vouches for; ValueError says what to fix."""
    from ..calibrate import load_calibration

    cal = load_calibration(path)
    return cal, from_calibration(cal, path)


def from_calibration(cal: dict[str, Any], path: object) -> Estimate:
    """The accuracy a calibration (as loaded) measured, with its interval."""
    p = float(cal["p"])
    return Estimate(p, float(cal.get("p_low", p)), str(path), cal)


def card_accuracy(profile: Any, task: Any, temperature: float) -> Estimate | None:
    """p from a model card (`card.json` in or beside the model folder) for this task's size
    at this temperature; None without a card or a row for it. At the card's temperature the
    row's 95% interval comes with it; at another, the exact teacher-forced p, if recorded."""
    from ..models.profiles import applies_to

    if not profile.is_local_path or not applies_to(profile, task):
        return None
    folder = Path(profile.model)
    path = next((p for p in (folder / "card.json", folder.parent / "card.json") if p.exists()),
                None)
    if path is None:
        return None
    card = json.loads(path.read_text())
    row = next((r for r in card.get("rows", []) if r.get("size") in (task.size, "all")), None)
    if row is None:
        return None
    where = f"{path.parent.name}/{path.name}, {task.label()} at T={temperature:g}"
    if abs(float(card.get("temperature", -1)) - temperature) < 1e-9 and "ci95" in row:
        return Estimate(float(row["p"]), float(row["ci95"][0]), where)
    exact = row.get("p_exact_by_temperature", {})
    key = next((k for k in exact if abs(float(k) - temperature) < 1e-9), None)
    if key is None:
        return None
    return Estimate(float(exact[key]), None, f"{where}, teacher-forced p")


def card_classes(profile: Any, task: Any, temperature: float) -> ClassTable | None:
    """The model card's class table (`card_classes.json` beside the model folder) for this
    task size at this temperature; None without one."""
    from ..models.profiles import applies_to

    if not profile.is_local_path or not applies_to(profile, task):
        return None
    path = Path(profile.model).parent / "card_classes.json"
    if not path.exists():
        return None
    card = json.loads(path.read_text())
    if abs(float(card.get("temperature", -1)) - temperature) > 1e-9:
        return None
    rows = [r for r in card.get("classes", [])
            if r.get("size") in (task.size, "all") and r.get("p")]
    if not rows:
        return None
    # a row counts its own steps (per size), or the task counts its steps by
    # class for this run (multiply: how often each input occurs)
    counts = task.class_counts() if any("class_steps" not in r for r in rows) else {}
    table = {task.class_name(r): (int(r["class_steps"]) if "class_steps" in r
                                  else counts.get(r["class"], 0), [float(v) for v in r["p"]])
             for r in rows}
    table = {c: v for c, v in table.items() if v[0] > 0}  # classes this run never meets
    return ClassTable(table, f"{path.parent.name}/{path.name}: {task.label()} at "
                             f"T={temperature:g}")


def model_accuracy(*, calibration: Path | str | None, profile: Any, task: Any,
                   temperature: float, backend: str, told: float | None = None
                   ) -> ModelAccuracy:
    """Everything known of the accuracy of the model `backend` runs: a calibration file
    wins over the card (and then the card's class table is not read); the card is about a
    model, so the sim never reads one. `told`: the backend's own p (the sim's). A file that
    cannot be read is a UsageError."""
    measured = classes = None
    if calibration is not None:
        try:
            measured = read_calibration(calibration)[1]
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"cannot read --calibration {calibration}: {e}") from None
    elif profile is not None and kind(backend).has_model:
        measured = card_accuracy(profile, task, temperature)
        classes = card_classes(profile, task, temperature)
    return ModelAccuracy(measured, classes,
                         None if told is None else
                         Estimate(told, None, f"the {backend} backend's --sim-error"))


# ------------------------------------------------------------------------------- k
def choose_k(k: int | str | None, known: ModelAccuracy, steps: int, target: float,
             rule: str = DEFAULT_RULE, backend: str = "this backend") -> KChoice:
    """k for a run of `steps` steps: `k` as given (an int, 'auto', or None: auto when the
    accuracy was measured, else DEFAULT_K). Auto is `engine.krule.choose_k` (THE rule) over
    the card's class table if there is one, else over the best estimate's distribution; a
    k no rule reaches the target with is a UsageError that says what to do. A k given with
    a measured accuracy comes with one line of what the measurement predicts for it."""
    planned_odds = plans_k(rule)  # the rule says whether the scaling laws are its odds
    if not planned_odds:
        if k == "auto":
            raise UsageError(f"--k auto picks k by the scaling law of ahead-by-k voting; with "
                             f"--rule {rule} give --k N")
        if k is None:
            return KChoice(DEFAULT_K)
    if k is None:
        if known.measured is None:
            return KChoice(DEFAULT_K)
        k = "auto"
    if k != "auto":
        try:
            k = int(k)
        except ValueError:
            raise UsageError(f"--k must be a positive integer or 'auto' (got {k!r})") from None
        if k < 1:
            raise UsageError(f"--k must be at least 1 (got {k})")
        planned = _planned(known) if planned_odds else None
        if planned is None:
            return KChoice(k)
        dist, where = planned
        from ..voting.krule import prediction_line
        return KChoice(k, prediction_line(dist, k, steps, target, where))
    if known.classes is not None:
        return k_by_class(known.classes, steps, target)
    est = known.measured or known.told
    if est is None:
        raise UsageError(f"--k auto needs a measured accuracy for {backend}: give "
                         "--calibration FILE (maker-local calibrate), or --k N")
    return k_auto(est, steps, target)


def _planned(known: ModelAccuracy) -> tuple[Any, str] | None:
    """The distribution k auto would plan with, and where it came from (None: not
    measured, so nothing to predict a given k with)."""
    from ..voting.krule import classes_distribution
    if known.classes is not None:
        return classes_distribution(known.classes.table), known.classes.where
    if known.measured is not None:
        return known.measured.distribution(), known.measured.plan_source
    return None


def refused(rule: Any) -> UsageError:
    """The refusal every command gives when no k reaches the target (exit 2)."""
    return UsageError(f"--k auto: {rule.line()}; or give --k N to run anyway")


def k_auto(est: Estimate, steps: int, target: float) -> KChoice:
    """THE rule over the estimate's distribution (`Estimate.distribution`)."""
    from ..voting.krule import choose_k as rule_k

    try:
        got = rule_k(est.distribution(), steps, target, where=est.plan_source)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if got.k is None:
        raise refused(got)
    p = est.conservative
    return KChoice(got.k, f"k auto: {got.line()}",
                   {"k_auto": {"p": p, "source": est.source, "steps": steps,
                               "target": target, "k": got.k, "rule": got.as_dict()}})


def k_by_class(classes: ClassTable, steps: int, target: float) -> KChoice:
    """THE rule over a card's class table (each checked step at its exact p_i)."""
    from ..voting.krule import Points, choose_k as rule_k, classes_distribution

    got = rule_k(classes_distribution(classes.table), steps, target, where=classes.where)
    if got.k is None:
        bad = [c for c, (_, ps) in classes.table.items() if min(ps) <= 0.5]
        raise refused(got) if not bad else UsageError(
            f"--k auto: {got.line()}; the classes with such steps: {', '.join(bad)}; or give "
            "--k N to run anyway")

    def class_wrong(c: str) -> float:  # the class's wrong decisions at k - 1
        count, ps = classes.table[c]
        return count * Points(tuple(1 - p for p in ps), (1 / len(ps),) * len(ps)).wrong_rate(
            max(got.k - 1, 1))
    setter = max(classes.table, key=class_wrong)
    return KChoice(got.k, f"k auto: {got.line()}, the product over the "
                          f"{len(classes.table)} step classes of the card; the class that sets "
                          f"k: {setter}",
                   {"k_auto": {"by_class": True, "source": classes.where, "steps": steps,
                               "target": target, "k": got.k, "p_run": got.p_full,
                               "setter": setter, "rule": got.as_dict()}})


# ------------------------------------------------------------------------------- plugged
def plugged(*, calibration: Path | str | None, paper_figures: str | None, p: float | None,
            tokens_out: float | None, tokens_in: float | None, valid: float | None,
            tokens_per_second: float | None, run_steps: int, target: float) -> Any:
    """The accuracy bench's projection plugs in (`maker_local.analysis.bench.Accuracy`), or None:
    a calibration (its conservative p, the module's rule), a profile's [paper] figures, or
    --p; the flags win over a file or profile. Checked now, so a bad value is a usage error
    before minutes of engine start-up."""
    from ..voting.scaling import plan
    from .bench import Accuracy

    if calibration is not None and paper_figures is not None:
        raise UsageError("give --calibration or --paper-figures, not both")
    base: dict[str, Any] = {}
    if paper_figures is not None:
        from ..models.profiles import load_profile
        fig = load_profile(paper_figures).paper
        if fig is None:
            raise UsageError(f"profile {paper_figures} has no [paper] table; give --p "
                             "and --tokens-out instead")
        where = f"[paper] of {paper_figures}"
        base = {"p": 1 - fig.error, "tokens_out": fig.tokens_out, "source": where}
    elif calibration is not None:
        try:
            cal, est = read_calibration(calibration)
        except ValueError as e:
            raise UsageError(str(e)) from None
        where = str(calibration)
        base = {"p": est.conservative, "tokens_out": cal["tokens_out_mean"],
                "valid": cal["valid"], "tokens_in": cal["tokens_in_mean"],
                "source": est.source}
    given = {k: v for k, v in (("p", p), ("tokens_out", tokens_out), ("tokens_in", tokens_in),
                               ("valid", valid)) if v is not None}
    if not base and not given:
        if tokens_per_second is not None:
            raise UsageError("--tokens-per-second feeds the projection from a plugged-in "
                             "accuracy: add --p and --tokens-out, --calibration or "
                             "--paper-figures")
        return None
    if not base and "p" not in given:
        raise UsageError("--tokens-out/--tokens-in/--valid need --p (or --calibration, "
                         "--paper-figures)")
    acc = {"source": "--p", **base, **given}
    if base and "p" in given:  # the flag's p, the file's or profile's other figures
        acc["source"] = f"--p (the rest from {where})"
    if "tokens_out" not in acc:
        raise UsageError("--p needs --tokens-out (mean output tokens per sample)")
    if acc["tokens_out"] <= 0 or not 0 < acc.get("valid", 1.0) <= 1:
        raise UsageError("--tokens-out must be > 0 and --valid in (0, 1]")
    if tokens_per_second is not None and tokens_per_second <= 0:
        raise UsageError("--tokens-per-second must be > 0")
    try:
        plan(acc["p"], run_steps, target, acc.get("valid", 1.0))
    except ValueError as e:
        raise UsageError(str(e)) from None
    # the projection's k: THE rule, over the calibration's distribution when its p is the p
    from ..voting.krule import choose_k as rule_k
    from ..voting.steperrors import StepErrors
    dist = (est.distribution() if calibration is not None and "p" not in given else
            StepErrors(1 - acc["p"]))
    acc["k"] = rule_k(dist, run_steps, target, where=acc["source"]).k
    return Accuracy(**acc)
