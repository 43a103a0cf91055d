"""llmops.codestack.stack_context: a stage's view of its stack directory, on the controller."""

import json

import pytest
from unittest.mock import MagicMock

from ansible.playbook.task import Task
from ansible.template import Templar

from ansible_collections.llmops.codestack.plugins.action.stack_context import ActionModule

PLAN = {"stack_id": "cs-1", "roles": {}, "checks": {"budget": {"limit": 3, "currency": "USD"}},
        "deployments": [{"name": "gpu", "provider": "runpod", "alternatives": [{"provider": "vast"}]},
                        {"name": "cpu", "provider": "local", "model": {"max_model_len": 4096}}]}


def run(args, monkeypatch, env=None):
    for var in ("RUNPOD_API_KEY", "VAST_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    task = MagicMock(Task)
    task.args = args
    task.async_val = 0
    task.check_mode = False
    task.diff = False
    loader = MagicMock()
    action = ActionModule(task, MagicMock(), MagicMock(), loader=loader, templar=Templar(loader=loader),
                          shared_loader_obj=None)
    return action.run(task_vars={})


@pytest.fixture
def stack(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    return tmp_path


def test_facts_of_a_stack_without_state(stack, monkeypatch):
    result = run({"path": str(stack)}, monkeypatch)
    assert not result.get("failed"), result
    facts = result["ansible_facts"]
    assert facts["codestack_stack_dir"] == str(stack)
    assert facts["codestack_state"]["resources"] == []
    assert facts["codestack_budget_usd"] == 3.0
    assert [d["name"] for d in facts["codestack_rented_deployments"]] == ["gpu"]
    assert facts["codestack_paid"] is True and result["changed"] is False
    # The window llama.cpp is started with: the local deployment's (serving's, else the model's).
    assert facts["codestack_local_context"] == 4096


def test_build_names_the_missing_key_before_anything_is_created(stack, monkeypatch):
    result = run({"path": str(stack), "build": True}, monkeypatch)
    assert result["failed"] and "set RUNPOD_API_KEY" in result["msg"] and result["msg"].endswith("Nothing was created.")


def test_build_keeps_only_alternatives_with_a_key(stack, monkeypatch):
    result = run({"path": str(stack), "build": True}, monkeypatch, env={"RUNPOD_API_KEY": "k"})
    assert not result.get("failed"), result
    assert result["ansible_facts"]["codestack_plan"]["deployments"][0]["alternatives"] == []
    assert "k" not in json.dumps(result["ansible_facts"]["codestack_keyed_providers"])


def test_require_state_and_missing_plan_fail_with_the_file(stack, monkeypatch, tmp_path_factory):
    result = run({"path": str(stack), "require_state": True}, monkeypatch)
    assert result["failed"] and "has no state file" in result["msg"]
    empty = tmp_path_factory.mktemp("empty")
    result = run({"path": str(empty)}, monkeypatch)
    assert result["failed"] and str(empty / "plan.json") in result["msg"]


def run_checked(args, task_vars):
    task = MagicMock(Task)
    task.args = args
    task.async_val = 0
    task.check_mode = True
    task.diff = False
    loader = MagicMock()
    action = ActionModule(task, MagicMock(), MagicMock(), loader=loader, templar=Templar(loader=loader),
                          shared_loader_obj=None)
    return action.run(task_vars=task_vars)


def test_check_run_before_the_first_build_uses_the_computed_plan(tmp_path):
    # site.yml --check: the plan stage wrote nothing, the later stages only report.
    planned = {"hostvars": {"localhost": {"codestack_check_plan": PLAN}}}
    result = run_checked({"path": str(tmp_path / "stack"), "require_state": True}, planned)
    assert not result.get("failed"), result
    facts = result["ansible_facts"]
    assert facts["codestack_check_only"] is True and facts["codestack_plan"]["stack_id"] == "cs-1"
    assert facts["codestack_state"]["resources"] == [] and not (tmp_path / "stack").exists()
    # Without the computed plan, the missing plan.json is still named.
    result = run_checked({"path": str(tmp_path / "stack")}, {})
    assert result["failed"] and "plan.json" in result["msg"]


def test_check_run_on_a_built_stack_is_not_check_only(stack):
    (stack / "state.json").write_text(json.dumps({"stack_id": "cs-1", "resources": []}))
    result = run_checked({"path": str(stack), "require_state": True}, {})
    assert not result.get("failed") and result["ansible_facts"]["codestack_check_only"] is False
