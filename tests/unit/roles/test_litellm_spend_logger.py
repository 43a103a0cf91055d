"""The gateway's spend log (roles/litellm_gateway/files/codestack_spend.py): what one line holds
for LiteLLM's standard logging payload, what it never holds, and the file it writes. The real
proxy writing it is exercised in tests/integration/test_ide_agents.py."""

import asyncio
import importlib.util
import json
import os
import stat

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "litellm_gateway", "files",
                      "codestack_spend.py")
spec = importlib.util.spec_from_file_location("codestack_spend", SCRIPT)
spend = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spend)

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

KEY = "sk-ide-0123456789abcdefghij"
PROMPT = "the secret design of project X"


def payload(**over):
    base = {
        "model_group": "coder", "model_id": "coder--coder-qwen-rtx4090", "model": "fast",
        "custom_llm_provider": "hosted_vllm", "stream": True,
        "prompt_tokens": 812, "completion_tokens": 133,
        "startTime": 1796126400.0, "endTime": 1796126402.5, "completionStartTime": 1796126400.25,
        "response_cost": 0.0, "cache_hit": None, "status": "success",
        "messages": [{"role": "user", "content": PROMPT}], "response": {"content": "answer"},
        "metadata": {"user_api_key_alias": "ide", "user_api_key_hash": "ab" * 32},
        "hidden_params": {"model_id": "coder--coder-qwen-rtx4090", "litellm_model_name": "hosted_vllm/coder",
                          "api_key": KEY},
    }
    base.update(over)
    return base


def test_a_stream_on_a_gpu_route():
    line = spend.record(payload(), "success", {"input_cost_per_second": 0.0001, "output_cost_per_second": 0.0,
                                               "api_key": KEY})
    assert line["alias"] == "coder"
    assert line["deployment"] == "coder-qwen-rtx4090"
    assert line["route"] == "coder--coder-qwen-rtx4090"
    assert line["model"] == "hosted_vllm/coder"
    assert line["key"] == "ide"
    assert (line["tokens_in"], line["tokens_out"]) == (812, 133)
    assert line["latency_s"] == 2.5 and line["ttft_s"] == 0.25
    # LiteLLM reported 0 for a per-second price: GPU time = rate x latency
    assert line["cost_usd"] == pytest.approx(0.00025) and line["cost_source"] == "per_second"
    assert line["ts"] == "2026-12-01T12:00:02.500Z"
    assert line["status"] == "success" and line["error"] is None


def test_litellm_cost_is_kept_and_no_ttft_without_a_stream():
    line = spend.record(payload(stream=False, response_cost=0.0123), "success", {"input_cost_per_second": 1.0})
    assert line["cost_usd"] == 0.0123 and line["cost_source"] == "litellm"
    assert line["ttft_s"] is None


def test_master_key_is_named_admin():
    meta = {"user_api_key_alias": None, "user_api_key_user_id": "codestack-admin"}
    assert spend.record(payload(metadata=meta), "success")["key"] == "admin"
    assert spend.record(payload(metadata={}), "success")["key"] is None


def test_failure_keeps_the_class_and_code_not_the_message():
    info = {"error_class": "RateLimitError", "error_code": "429", "error_message": "quota for " + PROMPT,
            "traceback": "Traceback ... " + PROMPT}
    line = spend.record(payload(error_information=info, completion_tokens=0), "failure")
    assert line["status"] == "failure"
    assert line["error"] == {"class": "RateLimitError", "code": "429"}


def test_never_the_key_nor_the_prompt():
    text = json.dumps(spend.record(payload(error_information={"error_message": PROMPT}), "failure",
                                   {"api_key": KEY, "input_cost_per_second": 0.1}))
    assert KEY not in text and PROMPT not in text and "answer" not in text and "ab" * 32 not in text


def test_an_empty_payload_still_gives_a_line():
    line = spend.record(None, "failure")
    assert line["alias"] is None and line["tokens_in"] == 0 and line["cost_usd"] == 0.0


def test_file_is_0600_and_one_line_per_call(tmp_path):
    path = tmp_path / "spend.jsonl"
    logger = spend.SpendLogger(path=str(path))
    assert isinstance(logger, CustomLogger)
    old = os.umask(0o000)
    try:
        asyncio.run(logger.async_log_success_event({"standard_logging_object": payload()}, None, None, None))
        asyncio.run(logger.async_log_failure_event({"standard_logging_object": payload()}, None, None, None))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(row) for row in path.read_text().splitlines()]
    assert [row["status"] for row in lines] == ["success", "failure"]


def test_a_write_error_does_not_raise(tmp_path):
    logger = spend.SpendLogger(path=str(tmp_path / "missing-dir" / "spend.jsonl"))
    asyncio.run(logger.async_log_success_event({"standard_logging_object": payload()}, None, None, None))
    asyncio.run(logger.async_log_success_event({"standard_logging_object": payload()}, None, None, None))
    assert logger.lost == 2


def test_env_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESTACK_SPEND_LOG", str(tmp_path / "x.jsonl"))
    assert spend.SpendLogger().path == str(tmp_path / "x.jsonl")


def test_a_failing_otel_import_is_remembered_once(monkeypatch):
    """Where LiteLLM's OTel fan-out cannot be imported, the failure is remembered (a None entry:
    the next import fails at once) and the import still fails as it did; where it imports, or is
    already settled, nothing is touched."""
    modules = {}
    calls = []

    def failing(name, *args, **kwargs):
        calls.append(name)
        raise ModuleNotFoundError("No module named 'opentelemetry.sdk'")

    monkeypatch.setattr("builtins.__import__", failing)
    assert spend.remember_missing_otel(modules) is True
    assert modules == {spend.OTEL_FAN_OUT: None}
    assert spend.remember_missing_otel(modules) is False
    assert calls == [spend.OTEL_FAN_OUT]
    monkeypatch.undo()
    settled = {spend.OTEL_FAN_OUT: object()}
    assert spend.remember_missing_otel(settled) is False and settled[spend.OTEL_FAN_OUT] is not None


def test_a_none_entry_makes_the_import_fail_at_once(monkeypatch):
    """The mechanism the proxy relies on: LiteLLM's own ``from ... import`` raises ImportError,
    which its auth catches, as it catches today's ModuleNotFoundError."""
    import sys  # pylint: disable=import-outside-toplevel
    monkeypatch.setitem(sys.modules, spend.OTEL_FAN_OUT, None)
    with pytest.raises(ImportError):
        __import__(spend.OTEL_FAN_OUT, fromlist=["fan_out_provider"])
