"""One settings value: flags over the profile over the defaults, settled once and frozen; the
parsed flags are only read (no engine starts here)."""
import dataclasses

import pytest

from maker_local.cli import make_parser
from maker_local.commands.settings import resolve
from maker_local.commands.solve import plan_run


def parse(*argv: str):
    return make_parser().parse_args(list(argv))


def test_a_plan_reads_the_flags_and_never_writes_them(tmp_path):
    args = parse("solve", "--disks", "20", "--profile", "hanoi-step-v2.2", "--backend", "vllm",
                 "--second-opinion",
                 "hanoi-think", "--escalate", "hanoi-step", "--request-timeout", "7",
                 "--run-dir", str(tmp_path / "run"), "--dry-run")
    flags = dict(vars(args))
    plan = plan_run(args)
    assert vars(args) == flags
    assert not (tmp_path / "run").exists()  # a plan makes no file
    s = plan.settings
    assert (s.backend, s.profile_name, s.max_tokens, s.temperature) == (
        "vllm", "hanoi-step-v2.2", 64, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_tokens = 5
    assert plan.config(args)["levers"] == {"second_opinion": ["hanoi-think"],
                                           "escalate": ["hanoi-step"]}


def test_a_lever_source_takes_its_own_profile_and_the_runs_other_flags():
    args = parse("solve", "--disks", "20", "--profile", "hanoi-step-v2.2", "--max-tokens", "50",
                 "--temperature", "0.5", "--request-timeout", "7", "--concurrency", "3")
    run = resolve(args)
    other = resolve(args, source="hanoi-think@http://127.0.0.1:8999/v1")
    # the run's own flags are the run's
    assert (run.max_tokens, run.temperature) == (50, 0.5)
    # the source's cap, temperatures, style and server are its profile's and its own
    assert (other.profile_name, other.max_tokens, other.temperature, other.style) == (
        "hanoi-think", 128, 1.0, "compact")
    assert (other.backend, other.base_url) == ("vllm-http", ("http://127.0.0.1:8999/v1",))
    # the flags that are not a profile's travel with it
    assert (other.options.request_timeout, other.options.concurrency) == (7.0, 3)
    assert other.model is None  # a server's model: asked of the server
    in_process = resolve(args, source="hanoi-think")
    # in process: the engine installed here (vLLM, else transformers), the profile's weights
    assert in_process.backend in ("vllm", "hf")
    assert in_process.model.endswith("hanoi-think/model")


def test_a_source_without_a_profile_name_is_one_line():
    from maker_local.core.errors import UsageError
    with pytest.raises(UsageError, match="name a profile"):
        resolve(parse("solve", "--backend", "sim"), source="@http://127.0.0.1:8999/v1")


def test_calibrates_generous_cap_is_a_new_value_not_an_edit():
    from maker_local.commands.calibrate import generous_cap
    args = parse("calibrate", "--backend", "sim", "--disks", "4,6", "--out", "/tmp/unused.json")
    s = resolve(args)
    wide = s.with_cap(generous_cap(args, s))
    assert (s.max_tokens, wide.max_tokens, args.max_tokens) == (750, 3000, None)
    assert dataclasses.replace(wide, max_tokens=750) == s
