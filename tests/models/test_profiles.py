import pytest

from maker_local.core.errors import UsageError
from maker_local.models.profiles import (APIS, KINDS, PROMPT_STYLES, PaperFigures,
                                         check_sizes, list_profiles, load_profile)

SHIPPED = ["gpt-4.1-mini", "gpt-oss-20b", "hanoi-step", "qwen3-4b-instruct"]


def test_shipped_profiles_load_with_every_field():
    assert set(SHIPPED) <= set(list_profiles())
    for name in list_profiles():
        p = load_profile(name)
        assert p.name == name and p.model
        assert p.kind in KINDS and p.api in APIS and p.prompt_style in PROMPT_STYLES
        assert p.max_tokens >= 1 and 0 <= p.temperature_first <= p.temperature <= 2
        if p.kind == "local":
            assert p.price.usd_per_gpu_hour is not None
        else:
            assert p.price.usd_per_m_in is not None and p.price.usd_per_m_out is not None


@pytest.mark.parametrize("name,error,tokens,k,cost", [
    ("gpt-oss-20b", 0.0358, 1104, 6, 1700), ("gpt-4.1-mini", 0.0022, 538, 3, 3500),
    ("qwen3-4b-instruct", 0.2342, 449, 15, 11500)])
def test_paper_figures(name, error, tokens, k, cost):
    assert load_profile(name).paper == PaperFigures(error, tokens, k, cost,
                                                    load_profile(name).paper.note)


def test_gpt_oss_profile():
    p = load_profile("gpt-oss-20b")
    assert p.model == "openai/gpt-oss-20b" and not p.is_local_path
    assert p.reasoning_effort == "low" and p.max_tokens >= 1104
    assert p.env["VLLM_SYSTEM_START_DATE"]


def test_bundled_model_path_is_relative_to_the_profiles_folder():
    p = load_profile("hanoi-step")
    assert p.is_local_path and p.path is not None
    assert p.model == str(p.path.parent / "hanoi-step" / "model")
    assert p.prompt_style == "compact" and p.price.usd_per_gpu_hour == 0


def test_unknown_profile_suggests_and_lists():
    with pytest.raises(UsageError) as e:
        load_profile("gpt-oss20b")
    msg = str(e.value)
    assert "did you mean 'gpt-oss-20b'" in msg
    assert all(name in msg for name in SHIPPED)


MINIMAL = """model = "org/m"
kind = "local"
api = "completions"
prompt_style = "paper"
max_tokens = 100
temperature_first = 0.0
temperature = 0.5
"""


def test_models_folder_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    (tmp_path / "mine.toml").write_text(MINIMAL + '[serve]\nargs = ["--seed", "1"]\n')
    (tmp_path / "weights").mkdir()
    (tmp_path / "local.toml").write_text(MINIMAL.replace("org/m", "weights"))
    assert list_profiles() == ["local", "mine"]
    p = load_profile("mine")
    assert (p.model, p.api, p.serve_args, p.env, p.paper) == ("org/m", "completions",
                                                             ("--seed", "1"), {}, None)
    assert load_profile("local").model == str(tmp_path / "weights")


@pytest.mark.parametrize("change,message", [
    ("max_token = 5\n", "unknown key 'max_token'"),
    ("[price]\nusd_per_hour = 1.0\n", "unknown key 'usd_per_hour' in [price]"),
    ("reasoning_effort = \"max\"\n", "reasoning_effort must be one of"),
    ("[serve]\nenv = { A = 1 }\n", "env values must be strings"),
])
def test_bad_profiles_say_what_is_wrong(tmp_path, monkeypatch, change, message):
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    (tmp_path / "bad.toml").write_text(MINIMAL + change)
    with pytest.raises(UsageError, match="bad.toml") as e:
        load_profile("bad")
    assert message in str(e.value)


def test_missing_field(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    (tmp_path / "bad.toml").write_text(MINIMAL.replace("max_tokens = 100\n", ""))
    with pytest.raises(UsageError, match="missing max_tokens"):
        load_profile("bad")


def test_the_bundled_model_states_the_sizes_it_supports():
    from maker_local.tasks.hanoi import Hanoi
    from maker_local.tasks.multiply import Multiply
    p = load_profile("hanoi-step")
    assert p.sizes == (3, 20) and "3..20" in p.sizes_reason and p.task == "hanoi"
    check_sizes(p, [Hanoi(3), Hanoi(10), Hanoi(20)])
    with pytest.raises(UsageError) as e:
        check_sizes(p, [Hanoi(2), Hanoi(10), Hanoi(25)])
    msg = str(e.value)
    assert msg.startswith("--disks 2, 25: model profile hanoi-step supports 3..20 disks (")
    assert p.sizes_reason in msg and "\n" not in msg
    check_sizes(None, [Hanoi(25)])  # no profile, no range: anything goes
    assert load_profile("gpt-oss-20b").sizes is None
    with pytest.raises(UsageError, match="is for task hanoi, not multiply"):
        check_sizes(p, [Multiply(12, 34)])


@pytest.mark.parametrize("change,message", [
    ("sizes = [20, 3]\n", "sizes must be [lo, hi]"),
    ("sizes = [3]\n", "sizes must be [lo, hi]"),
    ("sizes = [0, 5]\n", "sizes must be [lo, hi]"),
    ("sizes = [3, 20.5]\n", "sizes must be [lo, hi]"),
    ("sizes = [true, 20]\n", "sizes must be [lo, hi]"),
    ("sizes = \"3-20\"\n", "sizes has the wrong type"),
    ("sizes_reason = \"small\"\n", "give sizes = [lo, hi] too"),
    ("sizes = [3, 9]\nsizes_reason = 5\n", "sizes_reason has the wrong type"),
])
def test_bad_sizes_say_what_is_wrong(tmp_path, monkeypatch, change, message):
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    (tmp_path / "bad.toml").write_text(MINIMAL + change)
    with pytest.raises(UsageError) as e:
        load_profile("bad")
    assert message in str(e.value)


def test_sizes_are_optional_and_read_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    from maker_local.tasks.hanoi import Hanoi
    (tmp_path / "m.toml").write_text(MINIMAL + "sizes = [4, 4]\n")
    p = load_profile("m")
    assert (p.sizes, p.sizes_reason) == ((4, 4), "")
    with pytest.raises(UsageError, match=r"--disks 5: model profile m supports 4..4 disks; "):
        check_sizes(p, [Hanoi(5)])
