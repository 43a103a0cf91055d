"""llmops.codestack.stack_state's action: on the controller it records in-process (same result
as the module), elsewhere it runs the module."""

import json
import os
from unittest.mock import MagicMock

from ansible_collections.llmops.codestack.plugins.action.stack_state import ActionModule
from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action


def action(args, transport="local", check=False, diff=False, become=False):
    return make_action(ActionModule, args, transport=transport, check=check, diff=diff, become=become)


def args(path, **extra):
    base = {"path": str(path), "stack_id": "cs-1", "provider": "local", "kind": "service",
            "resource_id": "litellm", "name": "LiteLLM gateway", "attributes": {"url": "http://127.0.0.1:4000"}}
    base.update(extra)
    return base


def test_check_real_repeat_on_the_controller(tmp_path):
    path = tmp_path / "state.json"
    checked = action(args(path), check=True, diff=True).run(task_vars={})
    assert checked["changed"] is True and not path.exists()
    assert checked["diff"]["after"]["id"] == "litellm"
    first = action(args(path)).run(task_vars={})
    assert first["changed"] is True
    doc = json.loads(path.read_text())
    assert [r["id"] for r in doc["resources"]] == ["litellm"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert action(args(path)).run(task_vars={})["changed"] is False
    gone = action(args(path, state="absent")).run(task_vars={})
    assert gone["changed"] is True and [r["id"] for r in gone["stack_state"]["removed"]] == ["litellm"]


def test_another_stack_fails(tmp_path):
    path = tmp_path / "state.json"
    action(args(path)).run(task_vars={})
    result = action(args(path, stack_id="other")).run(task_vars={})
    assert result["failed"] is True and "belongs to stack 'cs-1'" in result["msg"]


def test_a_remote_host_or_become_runs_the_module(tmp_path):
    for plugin in (action(args(tmp_path / "s.json"), transport="ssh"),
                   action(args(tmp_path / "s.json"), become=True)):
        plugin._execute_module = MagicMock(return_value={"changed": True, "stack_state": {}})
        assert plugin.run(task_vars={})["changed"] is True
        assert plugin._execute_module.call_args.kwargs["module_name"] == "llmops.codestack.stack_state"
    assert not (tmp_path / "s.json").exists()
