"""Model profiles: one TOML file per model in the repo's `models/` folder.

A profile says everything the project needs to know about one model: how to serve it, how to
prompt it, where its red-flag cap is, what it costs, and what the paper measured for it. It
knows nothing about processes or HTTP (that is `serving.py`) or about samples (the backends).

Where profiles live: `models/*.toml` next to the package, or the folder named by the
environment variable `MAKER_LOCAL_MODELS` (tests and users point it elsewhere).

Fields (top level of `models/<name>.toml`):
    name               the file's stem (`gpt-oss-20b.toml` is profile `gpt-oss-20b`); not a key.
    description        one line for humans (optional).
    model              Hugging Face id (`openai/gpt-oss-20b`) or a local folder. A value that
                       starts with `/`, `./`, `../` or `~`, or whose first part is a folder in
                       the profiles folder (`hanoi-step/model`), is a path; relative paths are
                       relative to the profiles folder. For `kind = "api"`: the API's model id.
    kind               "local" (served here by vLLM) or "api" (a hosted OpenAI-compatible API,
                       kept for comparison runs).
    api                "chat" (/v1/chat/completions) or "completions" (/v1/completions).
    prompt_style       "paper" (the paper's full Hanoi prompt) or "compact" (the bundled step
                       model's `n= p= s=` format).
    max_tokens         red-flag cap on output tokens; for reasoning models it includes the
                       reasoning tokens, so it is larger than the paper's 750.
    temperature_first  temperature of each step's first vote (0 = greedy, as in the paper).
    temperature        temperature of every later vote.
    reasoning_effort   "low" | "medium" | "high" for reasoning models (optional); reaches the
                       engine as the request's reasoning_effort (server) or the chat template's
                       kwarg (in-process, hf).
    reasoning_parser   vLLM's reasoning parser for a model that thinks before it answers
                       (`openai_gptoss`, `qwen3`, `deepseek_r1`; optional): the grammar applies
                       only after the thought, the answer is read only from the text after
                       it, and a sample whose thinking never ends is a red flag.
    grammar_backend    vLLM's structured-outputs engine: xgrammar (default), guidance,
                       outlines, lm-format-enforcer or auto (`--grammar-backend`).
    constrained        send the task's output constraint (default true); false lets a model
                       that knows its format show its slips as red flags instead of having
                       them forced into well-formed answers.
    draft_sampling     in-process vLLM draws each step's votes against the step's draft
                       answer from one prefill (exact; voting/draft.py): pays for models that
                       are usually right and write short answers (default false).
    sizes              the task sizes the model supports, [lo, hi] (optional; the task's own
                       size, e.g. Hanoi's): solve, calibrate and bench refuse a task outside
                       it before anything starts.
    sizes_reason       why, in a few words from the model's card (optional; needs sizes).
    task               the task the model was trained for (optional): sizes and the card
                       apply to it only.
    base_url           kind "api" only: the API's base URL (optional; e.g. OpenAI's).
    api_key_env        kind "api" only: the environment variable holding the key (optional).

Tables:
    [chat_template_kwargs]  extra keyword arguments of the model's chat template (e.g.
             enable_thinking = true for Qwen3), sent with every request.
    [serve]  args      extra `vllm serve` flags, a list of strings, appended as given.
             env       environment variables for the server, a table of strings.
    [levers] second_opinion  profiles that vote on every step in turn with this one
             prompt_pool     other renderings (styles) of this model, in turn
             escalate        profiles that decide a contested step
             contest_after   valid votes after which an undecided step is contested
             (each the default of its flag: --second-opinion, --prompt-pool, --escalate,
             --contest-after; voting/pool.py says how the votes combine)
    [price]  usd_per_gpu_hour             kind "local": what an hour of one server costs.
             usd_per_m_in, usd_per_m_out  kind "api": USD per million input/output tokens.
    [paper]  the paper's calibration of this model (optional; the model the paper measured,
             which may differ in size from ours): error (= 1 - p, per-sample error), tokens_out
             (mean output tokens), k (k_min for a 95% chance of a zero-error 1,048,575-step
             run), cost_usd (projected cost of that run), note (free text: prices, temperature).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser under its old name
    import tomli as tomllib  # type: ignore[no-redef]

from ..core.errors import UsageError, did_you_mean

KINDS = ("local", "api")
APIS = ("chat", "completions")
PROMPT_STYLES = ("paper", "compact")
REASONING_EFFORTS = ("low", "medium", "high")
GRAMMAR_BACKENDS = ("xgrammar", "guidance", "outlines", "lm-format-enforcer", "auto")
DEFAULT_GRAMMAR = "xgrammar"  # vLLM's own default structured-outputs engine
_TOP = {"description", "model", "kind", "api", "prompt_style", "max_tokens",
        "temperature_first", "temperature", "reasoning_effort", "base_url", "api_key_env",
        "constrained", "draft_sampling", "sizes", "sizes_reason", "task", "reasoning_parser",
        "grammar_backend", "chat_template_kwargs", "serve", "price", "paper", "levers"}
_TABLES = {"serve": {"args", "env"},
           "price": {"usd_per_gpu_hour", "usd_per_m_in", "usd_per_m_out"},
           "paper": {"error", "tokens_out", "k", "cost_usd", "note"},
           "levers": {"second_opinion", "prompt_pool", "escalate", "contest_after"}}


@dataclass(frozen=True)
class Price:
    """USD: per server-hour for local models, per million tokens for hosted APIs."""
    usd_per_gpu_hour: float | None = None
    usd_per_m_in: float | None = None
    usd_per_m_out: float | None = None


@dataclass(frozen=True)
class PaperFigures:
    """What the paper measured for this model (its calibration table)."""
    error: float
    tokens_out: int
    k: int
    cost_usd: float
    note: str = ""


@dataclass(frozen=True)
class Profile:
    """One model profile; see the module docstring for each field."""
    name: str
    model: str  # HF id, or an absolute path once loaded
    kind: str
    api: str
    prompt_style: str
    max_tokens: int
    temperature_first: float
    temperature: float
    reasoning_effort: str | None = None
    reasoning_parser: str | None = None  # vLLM's name; see reasoning.PARSERS
    grammar_backend: str = DEFAULT_GRAMMAR
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    constrained: bool = True
    draft_sampling: bool = False  # in-process vLLM samples against the draft (voting/draft.py)
    sizes: tuple[int, int] | None = None  # task sizes supported, lo..hi; None: any
    sizes_reason: str = ""
    task: str | None = None  # the task it was trained for (sizes and card apply to it)
    description: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    serve_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    price: Price = Price()
    paper: PaperFigures | None = None
    path: Path | None = None  # the file it came from
    # the levers against correlated errors ([levers]; commands/levers.py, voting/pool.py)
    levers: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local_path(self) -> bool:
        """True when `model` is a folder on disk rather than a Hugging Face id."""
        return Path(self.model).is_absolute()


def models_dir() -> Path:
    """The profiles folder: $MAKER_LOCAL_MODELS, else the repo's `models/`."""
    env = os.environ.get("MAKER_LOCAL_MODELS")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "models"


def list_profiles() -> list[str]:
    """Names of the profiles in the profiles folder, sorted."""
    folder = models_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_profile(name: str) -> Profile:
    """The profile called `name`; a UsageError that lists the known ones if there is none."""
    path = models_dir() / f"{name}.toml"
    if not path.is_file():
        known = list_profiles()
        raise UsageError(f"unknown profile {name!r}{did_you_mean(name, known)}; known profiles: "
                         f"{', '.join(known) or '(none)'} (in {models_dir()}; "
                         "add models/<name>.toml or set MAKER_LOCAL_MODELS)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"profile {path}: not valid TOML: {e}") from None
    return _parse(name, path, data)


def resolve_model(model: str, folder: Path) -> str:
    """A path-like `model` becomes an absolute path; a Hugging Face id is kept as is."""
    first = model.split("/", 1)[0]
    if model.startswith(("/", "./", "../", "~")) or (first and (folder / first).is_dir()):
        return str((folder / Path(model).expanduser()).resolve())
    return model


def _parse(name: str, path: Path, d: dict[str, Any]) -> Profile:
    def bad(msg: str) -> UsageError:
        return UsageError(f"profile {path}: {msg}")

    # Unknown keys are errors: a typo (`max_token`) must not silently fall back to a default.
    if extra := sorted(d.keys() - _TOP):
        raise bad(f"unknown key {extra[0]!r}; keys are {', '.join(sorted(_TOP))}")
    if not isinstance(d.get("chat_template_kwargs", {}), dict):
        raise bad("[chat_template_kwargs] must be a table")
    for table, keys in _TABLES.items():
        if not isinstance(d.get(table, {}), dict):
            raise bad(f"[{table}] must be a table")
        if extra := sorted(d.get(table, {}).keys() - keys):
            raise bad(f"unknown key {extra[0]!r} in [{table}]; keys are {', '.join(sorted(keys))}")

    def get(key: str, typ: type | tuple[type, ...], default: Any = ..., table: str = "") -> Any:
        src = d.get(table, {}) if table else d
        where = f"[{table}] {key}" if table else key
        if key not in src:
            if default is ...:
                raise bad(f"missing {where}")
            return default
        value = src[key]
        # bool is an int in Python; a `true` where a number belongs is a mistake.
        if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
            raise bad(f"{where} has the wrong type ({type(value).__name__})")
        return value

    def choice(key: str, options: tuple[str, ...], default: Any = ...) -> Any:
        value = get(key, str, default)
        if value is not None and value not in options:
            raise bad(f"{key} must be one of {', '.join(options)} (got {value!r})")
        return value

    num = (int, float)
    kind = choice("kind", KINDS)
    max_tokens = get("max_tokens", int)
    if max_tokens < 1:
        raise bad("max_tokens must be at least 1")
    args = get("args", list, [], "serve")
    env = get("env", dict, {}, "serve")
    if not all(isinstance(a, str) for a in args):
        raise bad("[serve] args must be a list of strings")
    if not all(isinstance(v, str) for v in env.values()):
        raise bad("[serve] env values must be strings (quote numbers)")
    price = Price(get("usd_per_gpu_hour", num, None, "price"),
                  get("usd_per_m_in", num, None, "price"),
                  get("usd_per_m_out", num, None, "price"))
    levers: dict[str, Any] = {}
    for key in ("second_opinion", "prompt_pool", "escalate"):
        value = get(key, list, None, "levers")
        if value is not None:
            if not all(isinstance(v, str) and v for v in value):
                raise bad(f"[levers] {key} must be a list of names (strings)")
            levers[key] = list(value)
    if "contest_after" in d.get("levers", {}):
        levers["contest_after"] = get("contest_after", int, table="levers")
        if levers["contest_after"] < 1:
            raise bad("[levers] contest_after must be at least 1")
    paper = None
    if "paper" in d:
        paper = PaperFigures(get("error", num, table="paper"),
                             get("tokens_out", int, table="paper"),
                             get("k", int, table="paper"),
                             get("cost_usd", num, table="paper"),
                             get("note", str, "", "paper"))
    sizes = get("sizes", list, None)
    if sizes is not None and (len(sizes) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in sizes)
            or not 1 <= sizes[0] <= sizes[1]):
        raise bad(f"sizes must be [lo, hi] with 1 <= lo <= hi, e.g. [3, 20] (got {sizes})")
    sizes_reason = get("sizes_reason", str, "")
    if sizes_reason and sizes is None:
        raise bad("sizes_reason explains sizes: give sizes = [lo, hi] too")
    model = get("model", str)
    parser = get("reasoning_parser", str, None)
    if parser is not None:
        from .reasoning import markers
        try:
            markers(parser)
        except UsageError as e:
            raise bad(str(e)) from None
    return Profile(
        name=name,
        model=resolve_model(model, path.parent) if kind == "local" else model,
        kind=kind,
        api=choice("api", APIS),
        prompt_style=choice("prompt_style", PROMPT_STYLES),
        max_tokens=max_tokens,
        temperature_first=float(get("temperature_first", num)),
        temperature=float(get("temperature", num)),
        reasoning_effort=choice("reasoning_effort", REASONING_EFFORTS, None),
        reasoning_parser=parser,
        grammar_backend=choice("grammar_backend", GRAMMAR_BACKENDS, DEFAULT_GRAMMAR),
        chat_template_kwargs=dict(d.get("chat_template_kwargs", {})),
        constrained=get("constrained", bool, True),
        draft_sampling=get("draft_sampling", bool, False),
        sizes=tuple(sizes) if sizes is not None else None,
        sizes_reason=sizes_reason,
        task=get("task", str, None),
        description=get("description", str, ""),
        base_url=get("base_url", str, None),
        api_key_env=get("api_key_env", str, None),
        serve_args=tuple(args),
        env=dict(env),
        price=price,
        paper=paper,
        path=path,
        levers=levers,
    )


def applies_to(profile: Profile, task: Any) -> bool:
    """Whether the profile's sizes and card are about this task (a profile without `task`
    is taken to be about Hanoi, the task of every profile before there were others)."""
    return (profile.task or "hanoi") == task.name


def check_sizes(profile: Profile | None, tasks: list[Any]) -> None:
    """Refuse tasks outside the profile's `sizes` range, or of another task than the model
    was trained for: one line with the range, the card's reason and what to do (a
    UsageError). No range, no profile: anything goes."""
    if profile is None:
        return
    for task in tasks:
        if profile.task is not None and profile.task != task.name:
            raise UsageError(f"model profile {profile.name} is for task {profile.task}, not "
                             f"{task.name}: choose --task {profile.task} or another --profile")
    if profile.sizes is None or not tasks or not applies_to(profile, tasks[0]):
        return
    lo, hi = profile.sizes
    outside = [t for t in tasks if not lo <= t.size <= hi]
    if outside:
        why = f" ({profile.sizes_reason})" if profile.sizes_reason else ""
        t = outside[0]
        flag = t.size_flag or "size"
        raise UsageError(f"{flag} {', '.join(str(o.size) for o in outside)}: model profile "
                         f"{profile.name} supports {lo}..{hi} {t.size_label}{why}; choose "
                         f"{flag} in {lo}..{hi}, or another --profile")


def structured_config(backend: str = DEFAULT_GRAMMAR, reasoning_parser: str | None = None
                      ) -> dict[str, Any]:
    """vLLM's StructuredOutputsConfig for an engine (offline `LLM(structured_outputs_config=)`,
    or the server's `--structured-outputs-config`). Without `disable_any_whitespace` (xgrammar
    and guidance only) a weak model can pad JSON with whitespace until the red-flag cap. With
    a reasoning parser the grammar applies only after the end of thinking
    (`enable_in_reasoning` off): a reasoning model thinks freely, then answers in form."""
    cfg: dict[str, Any] = {"backend": backend}
    if backend in ("xgrammar", "guidance"):
        cfg["disable_any_whitespace"] = True
    if reasoning_parser:
        cfg["reasoning_parser"] = reasoning_parser
        cfg["enable_in_reasoning"] = False
    return cfg
