# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The intent pass through a real LiteLLM proxy in front of a scripted OpenAI-compatible server.

One proxy per module (≈8 s to start) with two model groups: ``intent`` (an OpenAI-like backend
that accepts ``json_schema``) and ``intent-llamacpp`` (a backend that rejects it with HTTP 500
the way llama-cpp-python's server does).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._intent import (
    MAX_INPUT_TOKENS,
    MIN_OUTPUT_TOKENS,
    IntentError,
    request_intent,
)
from ansible_collections.llmops.codestack.tests.fakes.openai_chat import ScriptedChatServer
from ansible_collections.llmops.codestack.tests.integration._services import (
    start_litellm,
    stop_process,
)

pytestmark = pytest.mark.integration

BLUEPRINT = {
    "project": {"name": "todo-api", "description": "A REST API for todo lists"},
    "features": [
        {"name": "auth", "description": "Sign-up and login with JWT", "priority": "must"},
        {"name": "todos", "description": "CRUD for todo items", "priority": "must"},
        {"name": "export", "description": "CSV export", "priority": "could"},
    ],
    "constraints": {"budget_usd": 25, "deadline_hours": 8, "quality": "standard"},
}

VALID = {
    "reasoning": "Auth needs the most care; CRUD is routine; export is small.",
    "tasks": [
        {"role": "architect", "feature": "(project)", "title": "Design API and data model",
         "complexity": "medium", "input_tokens": 30000, "output_tokens": 3000},
        {"role": "coder", "feature": "auth", "title": "Implement JWT login",
         "complexity": "high", "input_tokens": 200000, "output_tokens": 15000},
        {"role": "coder", "feature": "todos", "title": "Implement CRUD",
         "complexity": "low", "input_tokens": 80000, "output_tokens": 8000},
        {"role": "coder", "feature": "export", "title": "CSV export",
         "complexity": "low", "input_tokens": 30000, "output_tokens": 2000},
        {"role": "reviewer", "feature": "auth", "title": "Security review",
         "complexity": "medium", "input_tokens": 40000, "output_tokens": 2000},
    ],
    "cost_drivers": [{"feature": "auth", "share": 0.55, "why": "security-sensitive code"},
                     {"feature": "todos", "share": 0.3, "why": "most endpoints"}],
}
VALID_TEXT = ("Step 1: auth is the riskiest feature, todos is plain CRUD.\n\n```json\n"
              + json.dumps(VALID) + "\n```")


@pytest.fixture(scope="module")
def backends():
    openai_like = ScriptedChatServer(default=VALID_TEXT).start()
    llamacpp_like = ScriptedChatServer(default=json.dumps(VALID), reject_json_schema=True).start()
    yield openai_like, llamacpp_like
    openai_like.stop()
    llamacpp_like.stop()


@pytest.fixture(scope="module")
def proxy(backends, tmp_path_factory):
    openai_like, llamacpp_like = backends
    config = {
        "model_list": [
            {"model_name": "intent", "litellm_params": {
                "model": "openai/intent", "api_base": openai_like.url + "/v1",
                "api_key": "backend-key-not-secret"}},
            {"model_name": "intent-llamacpp", "litellm_params": {
                "model": "openai/intent", "api_base": llamacpp_like.url + "/v1",
                "api_key": "backend-key-not-secret"}},
        ],
        "litellm_settings": {"num_retries": 0, "request_timeout": 30},
        "router_settings": {"num_retries": 0},
    }
    url, key, proc = start_litellm(config, tmp_path_factory.mktemp("litellm"))
    yield url, key
    stop_process(proc)


@pytest.fixture
def openai_like(backends):
    return backends[0].script([], default=VALID_TEXT)


def ask(proxy, model="litellm_proxy/intent", **kwargs):
    url, key = proxy
    base = url + "/v1" if model.startswith("openai/") else url
    kwargs.setdefault("timeout", 30)
    return request_intent(BLUEPRINT, model, api_base=base, api_key=key, **kwargs)


@pytest.mark.parametrize("model", ["litellm_proxy/intent", "openai/intent"])
def test_valid_json_path(proxy, openai_like, model):
    result = ask(proxy, model)
    assert result["source"] == "llm"
    assert result["model"] == model
    assert result["reasoning"] == VALID["reasoning"]
    assert result["tasks"] == VALID["tasks"]
    assert [d["feature"] for d in result["cost_drivers"]] == ["auth", "todos"]
    assert result["notes"] == []
    # The schema went through the proxy to the backend, with the blueprint's features.
    assert len(openai_like.requests) == 1
    sent = openai_like.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["tasks"]["items"]["properties"]["feature"]["enum"] == [
        "auth", "todos", "export", "(project)"]
    assert sent["messages"][0]["role"] == "system"


def test_retry_once_on_invalid_output(proxy, openai_like):
    openai_like.script(["I think the answer is {\"tasks\": [{\"role\": \"wizard\"}]}", VALID_TEXT])
    result = ask(proxy)
    assert result["tasks"] == VALID["tasks"]
    assert len(openai_like.requests) == 2
    feedback = openai_like.requests[1]["messages"][-1]
    assert feedback["role"] == "user"
    assert "tasks[0].input_tokens: Field required" in feedback["content"]
    assert openai_like.requests[1]["messages"][-2]["role"] == "assistant"
    assert result["notes"][0].startswith("the first answer was invalid")


def test_second_invalid_output_fails_naming_the_model(proxy, openai_like):
    openai_like.script(["no JSON at all", json.dumps({"tasks": [{"role": "ceo", "feature": "auth",
                                                                 "input_tokens": 1,
                                                                 "output_tokens": 1}]})])
    with pytest.raises(IntentError) as err:
        ask(proxy)
    message = str(err.value)
    assert message.startswith("intent model 'litellm_proxy/intent' failed: invalid output twice")
    assert "no JSON object found" in message
    assert "'ceo' is not one of architect, coder, debugger, reviewer" in message
    assert len(openai_like.requests) == 2


def test_backend_error_names_the_model_and_hides_the_key(proxy, openai_like):
    openai_like.script([{"status": 400, "message": "context window exceeded"}])
    with pytest.raises(IntentError) as err:
        ask(proxy)
    message = str(err.value)
    assert message.startswith("intent model 'litellm_proxy/intent' failed: HTTP 400")
    assert "context window exceeded" in message
    assert proxy[1] not in message


def test_wrong_proxy_key_and_unknown_alias(proxy, openai_like):
    url, _key = proxy
    with pytest.raises(IntentError) as err:
        request_intent(BLUEPRINT, "litellm_proxy/intent", api_base=url,
                       api_key="sk-wrong-key-0000000", timeout=30)
    assert "intent model 'litellm_proxy/intent' failed:" in str(err.value)
    assert "sk-wrong-key-0000000" not in str(err.value)
    with pytest.raises(IntentError) as err:
        ask(proxy, "litellm_proxy/no-such-alias")
    assert "intent model 'litellm_proxy/no-such-alias' failed: HTTP 400" in str(err.value)
    assert openai_like.requests == []


def test_absurd_numbers_are_clamped(proxy, openai_like):
    absurd = dict(VALID, tasks=[dict(VALID["tasks"][1], input_tokens=9 * 10 ** 15,
                                     output_tokens=-40)])
    openai_like.script([json.dumps(absurd)])
    result = ask(proxy)
    assert result["tasks"][0]["input_tokens"] == MAX_INPUT_TOKENS
    assert result["tasks"][0]["output_tokens"] == MIN_OUTPUT_TOKENS
    assert "tasks[0].input_tokens 9e+15 lowered to the maximum %d" % MAX_INPUT_TOKENS \
        in result["notes"]
    assert "tasks[0].output_tokens -40 raised to the minimum %d" % MIN_OUTPUT_TOKENS \
        in result["notes"]


def test_json_schema_rejected_falls_back_to_json_object_schema(proxy, backends):
    llamacpp_like = backends[1].script([], default=json.dumps(VALID))
    result = ask(proxy, "litellm_proxy/intent-llamacpp")
    assert result["tasks"] == VALID["tasks"]
    formats = [r.get("response_format", {}).get("type") for r in llamacpp_like.requests]
    assert formats[0] == "json_schema" and formats[-1] == "json_object"
    assert set(formats) == {"json_schema", "json_object"}
    schema = llamacpp_like.requests[-1]["response_format"]["schema"]
    assert schema["properties"]["reasoning"]["maxLength"] > 0
    assert any("rejected response_format json_schema" in n for n in result["notes"])


# --- the lookup, end to end through ansible-playbook ------------------------------------------

PLAYBOOK = """
- name: Choose GPU and model per role with the intent LLM
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask the intent lookup
      ansible.builtin.set_fact:
        choice: "{{ lookup('llmops.codestack.intent', blueprint_path, model=intent_model,
                           api_base=proxy_url, timeout=60) }}"
    - name: Ask a model alias the gateway does not have
      ansible.builtin.set_fact:
        broken: "{{ lookup('llmops.codestack.intent', blueprint_path,
                           model='litellm_proxy/no-such-alias', api_base=proxy_url) }}"
      register: __broken
      ignore_errors: true  # noqa: ignore-errors - the failure message is what is tested
    - name: Save both
      ansible.builtin.copy:
        content: "{{ {'choice': choice, 'broken': __broken} | to_nice_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
"""


def test_lookup_end_to_end_with_ansible_playbook(tmp_path, proxy, openai_like):
    url, key = proxy
    (tmp_path / "bp.yml").write_text(yaml.safe_dump(BLUEPRINT))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, CODESTACK_INTENT_API_KEY=key, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    extra = {"blueprint_path": str(tmp_path / "bp.yml"), "intent_model": "litellm_proxy/intent",
             "proxy_url": url, "result_path": str(tmp_path / "result.json"),
             "ansible_python_interpreter": sys.executable}
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local",
                           str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert key not in output
    saved = json.loads((tmp_path / "result.json").read_text())

    result = saved["choice"]
    assert set(result["roles"]) == {"architect", "coder", "debugger", "reviewer"}
    for choice in result["roles"].values():
        assert choice["model"] and choice["gpu"] and choice["provider"]
        assert choice["hours"] >= 0 and choice["cost_usd"] >= 0
    assert result["roles"]["coder"]["hours"] > 0  # the scripted answer has no debugger task
    assert result["intent"]["source"] == "llm"
    assert result["intent"]["model"] == "litellm_proxy/intent"
    assert result["intent"]["tasks"] == VALID["tasks"]
    assert set(result["checks"]) >= {"budget", "deadline", "quality"}
    assert len(openai_like.requests) == 1

    broken = saved["broken"]
    assert broken["failed"] is True
    assert "intent model 'litellm_proxy/no-such-alias' failed: HTTP 400" in broken["msg"]
    assert key not in json.dumps(broken)
