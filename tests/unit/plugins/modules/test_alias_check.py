"""llmops.codestack.alias_check against the OpenAI-compatible fake (the wire of uvicorn servers)."""

import json
import os
import sys

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.modules import alias_check

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "fakes"))
from openai_backend_fake import FakeOpenAIBackend  # noqa: E402  pylint: disable=wrong-import-position


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            alias_check.main()
    return json.loads(capsys.readouterr().out)


def test_every_alias_is_asked_once_in_order(capsys):
    with FakeOpenAIBackend("gw", api_key="sk-good") as backend:
        result = run(capsys, api_base=backend.url, api_key="sk-good", aliases=["architect", "coder", "debugger"])
        assert backend.requests == 3
    assert result["changed"] is False
    assert [r["alias"] for r in result["alias_check"]["results"]] == ["architect", "coder", "debugger"]
    assert result["alias_check"]["failed"] == []


def test_failures_carry_status_and_message_and_no_key(capsys):
    with FakeOpenAIBackend("gw", api_key="sk-good") as backend:
        result = run(capsys, api_base=backend.url, api_key="sk-wrong-key-123", aliases=["coder"])
    failed = result["alias_check"]["failed"]
    assert [(f["alias"], f["status"]) for f in failed] == [("coder", 401)]
    assert "invalid api key" in failed[0]["message"]
    assert "sk-wrong-key-123" not in json.dumps(result)


def test_nothing_listening(capsys):
    with FakeOpenAIBackend("gw") as backend:
        url = backend.url
    result = run(capsys, api_base=url, api_key="k", aliases=["coder"], timeout=5)
    assert result["alias_check"]["failed"][0]["status"] is None
    assert "cannot reach" in result["alias_check"]["failed"][0]["message"]


def test_check_mode_asks_nothing(capsys):
    with FakeOpenAIBackend("gw") as backend:
        result = run(capsys, api_base=backend.url, api_key="k", aliases=["coder"], _ansible_check_mode=True)
        assert backend.requests == 0
    assert result["alias_check"] == {"results": [], "failed": []}


def test_in_process_on_the_local_connection_answers_the_same_without_the_key(capsys):
    from unittest.mock import MagicMock

    from ansible_collections.llmops.codestack.plugins.action.alias_check import ActionModule
    from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action

    def plugin(args, transport):
        action = make_action(ActionModule, args, transport=transport)
        action._execute_module = MagicMock(return_value={"changed": False, "alias_check": "module"})
        return action

    with FakeOpenAIBackend("gw", api_key="sk-good") as backend:
        args = dict(api_base=backend.url, api_key="sk-good", aliases=["coder", "nope"])
        here = plugin(dict(args), "local").run(task_vars={})
        assert here["alias_check"] == run(capsys, **args)["alias_check"]
        assert "sk-good" not in json.dumps(here)
        # Over SSH the gateway's loopback is the host's: the module runs there.
        assert plugin(dict(args), "ssh").run(task_vars={})["alias_check"] == "module"
