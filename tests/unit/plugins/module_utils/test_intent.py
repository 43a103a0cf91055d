# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the intent pass: validation, clamping, JSON extraction, retry-once."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils import _intent
from ansible_collections.llmops.codestack.plugins.module_utils._intent import (
    IntentError,
    InvalidIntent,
    extract_json,
    load_intent_file,
    request_intent,
    response_schema,
    validate_intent,
)

BLUEPRINT = {
    "project": {"name": "todo-api", "description": "A REST API for todo lists"},
    "features": [
        {"name": "auth", "description": "Sign-up and login with JWT", "priority": "must"},
        {"name": "Todo CRUD", "description": "Create, list, update, delete todos",
         "priority": "must", "complexity": "low"},
        {"name": "export", "description": "CSV export", "priority": "could"},
    ],
    "constraints": {"budget_usd": 20, "deadline_hours": 8, "quality": "standard"},
}


def task(**over):
    base = {"role": "coder", "feature": "auth", "title": "Implement login",
            "complexity": "medium", "input_tokens": 120000, "output_tokens": 9000}
    base.update(over)
    return base


def answer(tasks=None, drivers=None, reasoning="auth dominates"):
    return {"reasoning": reasoning, "tasks": tasks if tasks is not None else [task()],
            "cost_drivers": drivers if drivers is not None else
            [{"feature": "auth", "share": 0.6, "why": "security code"}]}


# --- validation -------------------------------------------------------------------------------

def test_valid_answer_passes_unchanged():
    result = validate_intent(answer(), BLUEPRINT, source="llm", model="openai/intent")
    assert result["source"] == "llm"
    assert result["model"] == "openai/intent"
    assert result["tasks"] == [task()]
    assert result["cost_drivers"] == [{"feature": "auth", "share": 0.6, "why": "security code"}]
    assert result["reasoning"] == "auth dominates"
    # Only the uncovered features are noted.
    assert result["notes"] == ["no task for blueprint feature(s): Todo CRUD, export"]


def test_result_has_exactly_the_documented_keys():
    result = validate_intent(answer(), BLUEPRINT)
    assert set(result) == {"source", "model", "reasoning", "tasks", "cost_drivers", "notes"}
    assert set(result["tasks"][0]) == {"role", "feature", "title", "complexity",
                                       "input_tokens", "output_tokens"}
    assert result["source"] == "file"


@pytest.mark.parametrize("raw,expected", [
    ("auth", "auth"),
    ("AUTH", "auth"),
    ("todo_crud", "Todo CRUD"),
    ("todo-crud", "Todo CRUD"),
    ("(project)", "(project)"),
    ("project", "(project)"),
    (None, "(project)"),
    ("billing", "(project)"),
])
def test_feature_names_are_mapped(raw, expected):
    result = validate_intent(answer([task(feature=raw)]), BLUEPRINT)
    assert result["tasks"][0]["feature"] == expected
    if raw not in ("auth", "(project)"):
        assert any("feature" in n and "tasks[0]" in n for n in result["notes"])


@pytest.mark.parametrize("raw,expected", [
    ("Coder", "coder"), ("developer", "coder"), ("QA", "debugger"), ("review", "reviewer"),
    ("architecture", "architect"),
])
def test_role_synonyms(raw, expected):
    assert validate_intent(answer([task(role=raw)]), BLUEPRINT)["tasks"][0]["role"] == expected


def test_unknown_role_and_complexity_are_rejected_with_every_problem():
    with pytest.raises(InvalidIntent) as err:
        validate_intent(answer([task(role="manager"), task(complexity="galactic")]), BLUEPRINT)
    assert "tasks[0].role: 'manager' is not one of architect, coder, debugger, reviewer" \
        in str(err.value)
    assert "tasks[1].complexity: 'galactic'" in str(err.value)
    assert len(err.value.problems) == 2


@pytest.mark.parametrize("data,needle", [
    ({"reasoning": "x"}, "tasks: Field required"),
    ({"tasks": []}, "tasks: List should have at least 1 item"),
    ({"tasks": [{"feature": "auth"}]}, "tasks[0].role: Field required"),
    ({"tasks": [task(input_tokens="lots")]}, "tasks[0].input_tokens"),
    ([1, 2], "must be a JSON object"),
])
def test_structural_problems_are_named(data, needle):
    with pytest.raises(InvalidIntent) as err:
        validate_intent(data, BLUEPRINT)
    assert needle in str(err.value)


# --- clamping ---------------------------------------------------------------------------------

def test_absurd_numbers_are_clamped_with_notes():
    tasks = [task(input_tokens=10 ** 12, output_tokens=-5),
             task(input_tokens=float("inf"), output_tokens=1e30),
             task(input_tokens=0, output_tokens=float("nan")),
             task(input_tokens="12k", output_tokens="1,500")]
    result = validate_intent(answer(tasks), BLUEPRINT)
    got = [(t["input_tokens"], t["output_tokens"]) for t in result["tasks"]]
    assert got == [(_intent.MAX_INPUT_TOKENS, _intent.MIN_OUTPUT_TOKENS),
                   (_intent.MAX_INPUT_TOKENS, _intent.MAX_OUTPUT_TOKENS),
                   (_intent.MIN_INPUT_TOKENS, _intent.MIN_OUTPUT_TOKENS),
                   (12000, 1500)]
    notes = "\n".join(result["notes"])
    assert "tasks[0].input_tokens 1000000000000 lowered to the maximum 2000000" in notes
    assert "tasks[0].output_tokens -5 raised to the minimum 10" in notes
    assert "tasks[2].output_tokens NaN raised to the minimum 10" in notes


def test_too_many_tasks_and_long_texts_are_cut():
    tasks = [task(title="x" * 500)] * (_intent.MAX_TASKS + 7)
    result = validate_intent(answer(tasks, reasoning="r" * 9000), BLUEPRINT)
    assert len(result["tasks"]) == _intent.MAX_TASKS
    assert len(result["tasks"][0]["title"]) == _intent.MAX_TITLE_CHARS
    assert len(result["reasoning"]) == _intent.MAX_REASONING_CHARS
    assert "207 tasks given; only the first 200 kept" in result["notes"]


@pytest.mark.parametrize("drivers,expected", [
    # percentages written as numbers
    ([{"feature": "auth", "share": 40, "why": ""}], [("auth", 0.4)]),
    ([{"feature": "auth", "share": "25%", "why": ""}], [("auth", 0.25)]),
    # shares that add up to more than 1 are scaled
    ([{"feature": "auth", "share": 0.9, "why": ""}, {"feature": "export", "share": 0.6, "why": ""}],
     [("auth", 0.6), ("export", 0.4)]),
    # a negative share becomes 0; duplicates merge
    ([{"feature": "auth", "share": -3, "why": ""}, {"feature": "export", "share": 0.2, "why": ""},
      {"feature": "EXPORT", "share": 0.1, "why": ""}], [("export", 0.3), ("auth", 0.0)]),
])
def test_cost_driver_shares(drivers, expected):
    result = validate_intent(answer(drivers=drivers), BLUEPRINT)
    assert [(d["feature"], d["share"]) for d in result["cost_drivers"]] == expected


def test_cost_drivers_derived_when_missing_or_unknown():
    tasks = [task(feature="auth", input_tokens=1000, output_tokens=0),
             task(feature="export", input_tokens=3000, output_tokens=0)]
    result = validate_intent(answer(tasks, drivers=[{"feature": "nope", "share": 1}]), BLUEPRINT)
    # output_tokens 0 is clamped to 10 and weighted x4: 3040 / 4080 and 1040 / 4080
    assert [(d["feature"], d["share"]) for d in result["cost_drivers"]] == [
        ("export", 0.7451), ("auth", 0.2549)]
    assert "cost_drivers[0]: feature 'nope' is not in the blueprint; dropped" in result["notes"]
    assert "cost drivers derived from the task token estimates" in result["notes"]


# --- files ------------------------------------------------------------------------------------

def test_load_intent_file_json_yaml_and_plan(tmp_path):
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(dict(answer(), model="openai/intent", source="llm")))
    result = load_intent_file(str(path), BLUEPRINT)
    assert result["source"] == "file"
    assert result["model"] == "openai/intent"

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"schema_version": 1, "intent": answer()}))
    assert load_intent_file(str(plan), BLUEPRINT)["tasks"] == [task()]

    yml = tmp_path / "intent.yml"
    yml.write_text("tasks:\n  - {role: reviewer, feature: auth, input_tokens: 5000, "
                   "output_tokens: 500}\n")
    result = load_intent_file(str(yml), BLUEPRINT)
    assert result["tasks"][0]["complexity"] == "medium"
    assert result["tasks"][0]["title"] == "reviewer work on auth"


def test_load_intent_file_errors_name_the_file(tmp_path):
    with pytest.raises(IntentError, match="cannot read intent file .*missing.json"):
        load_intent_file(str(tmp_path / "missing.json"), BLUEPRINT)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tasks": [task(role="ceo")]}))
    with pytest.raises(IntentError, match=r"intent file .*bad.json: .*tasks\[0\].role"):
        load_intent_file(str(bad), BLUEPRINT)


# --- JSON after the chain of thought ----------------------------------------------------------

ANSWER_JSON = json.dumps(answer())


@pytest.mark.parametrize("text,preamble", [
    (ANSWER_JSON, ""),
    ("Let me think. Auth is hard.\n\n" + ANSWER_JSON, "Let me think. Auth is hard."),
    ("Thinking {not json} and {\"tasks\": \"fragment\"\n```json\n" + ANSWER_JSON + "\n```\n",
     None),
    ("<think>auth needs JWT {x}</think>\nFinal:\n```json\n" + ANSWER_JSON + "\n```",
     "auth needs JWT {x}\nFinal:"),
    ("First a sketch {\"a\": 1} then " + ANSWER_JSON + " and a trailing {\"b\": 2}", None),
])
def test_extract_json_after_chain_of_thought(text, preamble):
    obj, pre = extract_json(text)
    assert obj == answer()
    if preamble is not None:
        assert pre == preamble


@pytest.mark.parametrize("text,reason", [
    ("", "the answer is empty"),
    ("I cannot help with that.", "no JSON object found"),
    ('Sure: {"reasoning": "x", "tasks": [{"role": "coder"', "incomplete or malformed"),
])
def test_extract_json_failures(text, reason):
    with pytest.raises(InvalidIntent, match=reason):
        extract_json(text)


# --- schema -----------------------------------------------------------------------------------

def test_response_schema_enumerates_features_and_limits_grammar():
    strict = response_schema(BLUEPRINT)
    task_props = strict["properties"]["tasks"]["items"]["properties"]
    assert task_props["feature"]["enum"] == ["auth", "Todo CRUD", "export", "(project)"]
    assert task_props["role"]["enum"] == ["architect", "coder", "debugger", "reviewer"]
    assert strict["properties"]["tasks"]["maxItems"] == 4 * _intent.TASKS_PER_FEATURE
    assert "maxLength" not in json.dumps(strict)  # OpenAI strict mode rejects it
    grammar = response_schema(BLUEPRINT, grammar=True)
    assert grammar["properties"]["reasoning"]["maxLength"] == _intent.GRAMMAR_REASONING_CHARS


# --- the LLM call, with a fake completion function ----------------------------------------------

class FakeCompletion:
    """Plays a script of answers (str content, dict response or exception) and records calls."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, dict):
            return item
        return {"choices": [{"message": {"role": "assistant", "content": item},
                             "finish_reason": "stop"}]}


class FakeStatusError(Exception):
    def __init__(self, status, message):
        super(FakeStatusError, self).__init__(message)
        self.status_code = status


def call(fake, **kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    return request_intent(BLUEPRINT, "openai/intent", api_base="http://127.0.0.1:9/v1",
                          api_key="sk-secret-123456", completion_fn=fake, **kwargs)


def test_valid_answer_first_time():
    fake = FakeCompletion("Thinking about auth.\n" + ANSWER_JSON)
    result = call(fake, timeout=12, temperature=0)
    assert result["source"] == "llm" and result["model"] == "openai/intent"
    assert result["tasks"] == [task()]
    sent = fake.calls[0]
    assert sent["model"] == "openai/intent" and sent["timeout"] == 12 and sent["temperature"] == 0
    assert sent["api_base"] == "http://127.0.0.1:9/v1" and sent["api_key"] == "sk-secret-123456"
    assert sent["max_tokens"] == _intent.DEFAULT_MAX_TOKENS and sent["max_retries"] == 0
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["messages"][0]["role"] == "system" and "estimator" in sent["messages"][0]["content"]
    assert '"Todo CRUD"' in sent["messages"][1]["content"]


def test_reasoning_falls_back_to_chain_of_thought():
    fake = FakeCompletion("Auth is the big one.\n" + json.dumps(answer(reasoning="")))
    assert call(fake)["reasoning"] == "Auth is the big one."


def test_retry_once_tells_the_model_what_was_wrong():
    fake = FakeCompletion("I think {\"tasks\": [{\"role\": \"ceo\"}]}", ANSWER_JSON)
    result = call(fake)
    assert result["tasks"] == [task()]
    assert len(fake.calls) == 2
    retry = fake.calls[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think {\"tasks\": [{\"role\": \"ceo\"}]}"}
    assert retry[-1]["role"] == "user"
    assert "tasks[0].input_tokens: Field required" in retry[-1]["content"]
    assert any(n.startswith("the first answer was invalid") for n in result["notes"])


def test_second_invalid_answer_fails_naming_the_model():
    fake = FakeCompletion("no json here", '{"tasks": []}')
    with pytest.raises(IntentError) as err:
        call(fake)
    message = str(err.value)
    assert message.startswith("intent model 'openai/intent' failed: invalid output twice")
    assert "no JSON object found" in message and "at least 1 item" in message
    assert len(fake.calls) == 2


def test_cut_off_answer_is_reported():
    cut = {"choices": [{"message": {"content": '{"tasks": [{"role"'}, "finish_reason": "length"}]}
    fake = FakeCompletion(cut, cut)
    with pytest.raises(IntentError, match="cut off at max_tokens=4096"):
        call(fake)


def test_json_schema_rejection_falls_back_to_json_object_schema():
    llamacpp = FakeStatusError(500, "litellm.InternalServerError: 1 validation error: "
                               "('body', 'response_format', 'type') Input should be 'text' or "
                               "'json_object', 'input': 'json_schema'")
    fake = FakeCompletion(llamacpp, ANSWER_JSON)
    result = call(fake)
    assert [c["response_format"]["type"] for c in fake.calls] == ["json_schema", "json_object"]
    assert fake.calls[1]["response_format"]["schema"]["properties"]["reasoning"]["maxLength"]
    assert any("rejected response_format json_schema" in n for n in result["notes"])


def test_other_server_errors_do_not_fall_back_and_name_the_model():
    fake = FakeCompletion(FakeStatusError(500, "backend exploded, key sk-secret-123456"))
    with pytest.raises(IntentError) as err:
        call(fake)
    assert len(fake.calls) == 1
    assert "intent model 'openai/intent' failed: HTTP 500" in str(err.value)
    assert "backend exploded" in str(err.value)
    assert "sk-secret-123456" not in str(err.value)


def test_transient_errors_are_retried_with_backoff():
    slept = []
    fake = FakeCompletion(FakeStatusError(503, "busy"), FakeStatusError(429, "slow down"),
                          ANSWER_JSON)
    assert call(fake, sleep=slept.append)["tasks"] == [task()]
    assert slept == [1, 2]
    fake = FakeCompletion(*[FakeStatusError(502, "bad gateway")] * 3)
    with pytest.raises(IntentError, match="HTTP 502"):
        call(fake)
    assert len(fake.calls) == 3


def test_structured_modes_and_bad_arguments():
    fake = FakeCompletion(ANSWER_JSON)
    call(fake, structured="none")
    assert "response_format" not in fake.calls[0]
    with pytest.raises(IntentError, match="structured must be one of"):
        call(FakeCompletion(), structured="xml")
    with pytest.raises(IntentError, match="no intent model given"):
        request_intent(BLUEPRINT, "", completion_fn=FakeCompletion())
    with pytest.raises(IntentError, match="blueprint field 'constraints'"):
        request_intent({"project": BLUEPRINT["project"], "features": BLUEPRINT["features"]},
                       "openai/intent", completion_fn=FakeCompletion())


def test_prompts_dir_override(tmp_path):
    (tmp_path / "intent.md").write_text("CUSTOM PROMPT")
    fake = FakeCompletion(ANSWER_JSON)
    call(fake, prompts_dir=str(tmp_path))
    assert fake.calls[0]["messages"][0]["content"] == "CUSTOM PROMPT"
    with pytest.raises(IntentError, match="cannot read prompt"):
        call(FakeCompletion(ANSWER_JSON), prompts_dir=str(tmp_path / "none"))


def test_shipped_prompts_exist_and_are_substantial():
    for name in ("intent", "architect", "coder", "debugger", "reviewer"):
        text = _intent.load_prompt(name)
        assert len(text) > 1000, name
