# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the llmops.codestack.intent lookup: options, errors, the per-role result.

The LLM call is replaced by a fake ``request_intent``; the catalog and the planner are real.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import yaml
from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible import constants as C
from ansible.parsing.dataloader import DataLoader

from ansible_collections.llmops.codestack.plugins.lookup import intent as lookup_intent
from ansible_collections.llmops.codestack.plugins.module_utils._intent import IntentError

BLUEPRINT = {
    "project": {"name": "todo-api", "description": "A REST API for todo lists"},
    "features": [
        {"name": "auth", "description": "Sign-up and login with JWT", "priority": "must"},
        {"name": "todos", "description": "CRUD for todo items", "priority": "must"},
    ],
    "constraints": {"budget_usd": 50, "deadline_hours": 24, "quality": "standard",
                    "providers": ["local", "runpod", "vast"]},
}
INTENT = {
    "reasoning": "auth first",
    "tasks": [{"role": r, "feature": f, "title": "%s %s" % (r, f), "complexity": "medium",
               "input_tokens": 50000, "output_tokens": 4000}
              for r in ("architect", "coder", "debugger", "reviewer") for f in ("auth", "todos")],
    "cost_drivers": [{"feature": "auth", "share": 0.6, "why": "security"}],
}


NAME = "llmops.codestack.intent"
# What the plugin loader does when it loads the lookup: register its documented options.
C.config.initialize_plugin_configuration_definitions(
    "lookup", NAME, yaml.safe_load(lookup_intent.DOCUMENTATION)["options"])


def run(*terms, **options):
    plugin = lookup_intent.LookupModule(loader=DataLoader())
    plugin._load_name = NAME
    return plugin.run(list(terms), variables={}, **options)


@pytest.fixture
def blueprint_file(tmp_path):
    path = tmp_path / "bp.yml"
    path.write_text(yaml.safe_dump(BLUEPRINT))
    return str(path)


@pytest.fixture
def fake_llm(monkeypatch):
    calls = []

    def fake(blueprint, model, **kwargs):
        calls.append(dict(kwargs, model=model, blueprint=blueprint))
        if model == "broken/model":
            raise IntentError("intent model 'broken/model' failed: HTTP 503, busy")
        return dict(INTENT, source="llm", model=model, notes=[])
    monkeypatch.setattr(lookup_intent, "request_intent", fake)
    return calls


def test_llm_path_returns_gpu_and_model_per_role(blueprint_file, fake_llm):
    [result] = run(blueprint_file, model="litellm_proxy/intent", api_base="http://127.0.0.1:1",
                   api_key="sk-secret", timeout=5, temperature=0.1, structured="json_object")
    assert set(result["roles"]) == {"architect", "coder", "debugger", "reviewer"}
    for choice in result["roles"].values():
        assert choice["model"] and choice["gpu"] and choice["provider"]
        assert choice["hours"] >= 0 and choice["cost_usd"] >= 0
    assert result["intent"]["source"] == "llm"
    assert result["intent"]["model"] == "litellm_proxy/intent"
    assert "plan" not in result and "api_key" not in json.dumps(result)
    call = fake_llm[0]
    assert call["api_key"] == "sk-secret" and call["timeout"] == 5
    assert call["temperature"] == 0.1 and call["structured"] == "json_object"
    assert call["max_tokens"] == 4096


def test_intent_file_path_and_full_plan(blueprint_file, tmp_path, fake_llm):
    saved = tmp_path / "intent.json"
    saved.write_text(json.dumps(dict(INTENT, model="openai/intent")))
    [result] = run(blueprint=BLUEPRINT, intent_file=str(saved), include_plan=True)
    assert fake_llm == []
    assert result["intent"]["source"] == "file"
    assert result["plan"]["intent"]["source"] == "file"
    assert result["roles"] == lookup_intent.role_choices(result["plan"])


def test_role_choices_flattens_the_plan():
    plan = {
        "roles": {"coder": {"alias": "coder", "deployment": "d1", "hours": 1.5, "cost_usd": 0.5},
                  "reviewer": {"alias": "reviewer", "deployment": "d1", "hours": 0.2,
                               "cost_usd": 0.1}},
        "deployments": [{"name": "d1", "provider": "runpod", "pricing": "spot",
                         "offer_id": "runpod:RTX 4090:spot", "region": "EU",
                         "price_per_hour_usd": 0.34, "engine": "vllm",
                         "gpu": {"name": "RTX 4090", "count": 1, "vram_gb": 24},
                         "model": {"key": "qwen2.5-coder-7b", "hf_repo": "Qwen/x",
                                   "quantization": "awq"}}],
    }
    choices = lookup_intent.role_choices(plan)
    assert set(choices) == {"coder", "reviewer"}
    assert choices["coder"]["gpu"] == "RTX 4090" and choices["coder"]["model"] == "qwen2.5-coder-7b"
    assert choices["coder"]["quantization"] == "awq" and choices["coder"]["pricing"] == "spot"
    assert choices["reviewer"]["hours"] == 0.2


@pytest.mark.parametrize("terms,options,message", [
    ((), {"model": "m"}, "no blueprint"),
    (("a.yml", "b.yml"), {"model": "m"}, "one blueprint per lookup"),
    (("a.yml",), {"blueprint": BLUEPRINT, "model": "m"}, "either as the term or as blueprint="),
    ((), {"blueprint": ["x"], "model": "m"}, "must be a file path or a mapping"),
    ((), {"blueprint": "/nonexistent/bp.yml", "model": "m"}, "cannot read blueprint file"),
    ((), {"blueprint": dict(BLUEPRINT, constraints={"deadline_hours": 1}), "model": "m"},
     "blueprint field 'constraints'"),
    ((), {"blueprint": BLUEPRINT}, "no intent model"),
    ((), {"blueprint": BLUEPRINT, "model": "m", "timeout": 0}, "must be positive"),
    ((), {"blueprint": BLUEPRINT, "intent_file": "/nonexistent/i.json"},
     "cannot read intent file"),
    ((), {"blueprint": BLUEPRINT, "model": "m", "prompts_dir": "/nonexistent"}, "no intent.md"),
])
def test_bad_input_is_an_options_error(terms, options, message, fake_llm):
    with pytest.raises(AnsibleOptionsError, match=message):
        run(*terms, **options)
    assert fake_llm == []


def test_bad_catalog_is_an_options_error(fake_llm):
    with pytest.raises(AnsibleOptionsError, match="catalog: .*nonexistent"):
        run(blueprint=BLUEPRINT, model="m", catalog=["/nonexistent/offers.yml"])


def test_remote_failure_is_an_ansible_error_naming_the_model(fake_llm):
    with pytest.raises(AnsibleError) as err:
        run(blueprint=BLUEPRINT, model="broken/model")
    assert not isinstance(err.value, AnsibleOptionsError)
    assert "intent model 'broken/model' failed: HTTP 503" in str(err.value)


def test_validation_notes_reach_the_plan_and_the_report(tmp_path, fake_llm):
    from ansible_collections.llmops.codestack.plugins.module_utils._report import render_markdown

    absurd = dict(INTENT, tasks=[dict(INTENT["tasks"][1], output_tokens=-1)])
    saved = tmp_path / "intent.json"
    saved.write_text(json.dumps(absurd))
    [result] = run(blueprint=BLUEPRINT, intent_file=str(saved), include_plan=True)
    note = "tasks[0].output_tokens -1 raised to the minimum 10"
    assert note in result["intent"]["notes"]
    assert note in result["plan"]["intent"]["notes"]
    assert "- " + note in render_markdown(result["plan"])
