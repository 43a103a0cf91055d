"""llmops.codestack.host_facts: setup's facts, gathered in-process where the worker is the
host's Python, the same as the module (and ansible.builtin.setup) gathers them."""

import json
import sys
from unittest.mock import MagicMock

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible.modules import setup

from ansible_collections.llmops.codestack.plugins.action.host_facts import ActionModule
from ansible_collections.llmops.codestack.plugins.modules import host_facts
from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action

# Facts that change between two gatherings a moment apart, or with the process that gathers.
VOLATILE = {"ansible_date_time", "ansible_env", "ansible_cmdline", "ansible_proc_cmdline"}
HERE = {"ansible_python_interpreter": sys.executable}


def action(args, transport="local", become=False, environment=None):
    return make_action(ActionModule, args, transport=transport, become=become, environment=environment)


def _exit_json(capsys, main, args):
    with patch_module_args(dict(args)):
        with pytest.raises(SystemExit):
            main()
    return json.loads(capsys.readouterr().out)


def _stable(facts):
    return {k: v for k, v in facts.items() if k not in VOLATILE}


def test_in_process_gathers_what_the_module_and_setup_gather(capsys):
    plugin = action({})
    plugin._execute_module = MagicMock(side_effect=AssertionError("no module run where the worker is the host"))
    here = plugin.run(task_vars=dict(HERE))
    assert here["changed"] is False and "failed" not in here
    facts = here["ansible_facts"]
    module = _exit_json(capsys, host_facts.main, {})["ansible_facts"]
    builtin = _exit_json(capsys, setup.main, {"gather_subset": ["min"]})["ansible_facts"]
    assert set(facts) == set(module) == set(builtin)
    assert _stable(facts) == _stable(module) == _stable(builtin)
    # What the stages and roles read from them.
    for name in ("ansible_service_mgr", "ansible_os_family", "ansible_user_id"):
        assert facts[name], name
    assert facts["ansible_python"]["executable"] == sys.executable
    assert facts["ansible_env"]["PATH"] and facts["module_setup"] is True


def test_another_python_remote_become_or_an_environment_runs_the_module():
    cases = [(action({}), {"ansible_python_interpreter": "/usr/bin/python3-other"}),
             (action({}), {}),
             (action({}, transport="ssh"), dict(HERE)),
             (action({}, become=True), dict(HERE)),
             (action({}, environment=[{"LANG": "C"}]), dict(HERE))]
    for plugin, task_vars in cases:
        plugin._execute_module = MagicMock(return_value={"changed": False, "ansible_facts": {"ansible_service_mgr": "x"}})
        assert plugin.run(task_vars=task_vars)["ansible_facts"] == {"ansible_service_mgr": "x"}
        assert plugin._execute_module.call_args.kwargs["module_name"] == "llmops.codestack.host_facts"


def test_a_bad_subset_or_argument_fails_in_process_naming_it():
    result = action({"gather_subset": ["no_such_subset"]}).run(task_vars=dict(HERE))
    assert result["failed"] is True and "no_such_subset" in result["msg"]
    result = action({"gather_timeout": "soon", "bogus": 1}).run(task_vars=dict(HERE))
    assert result["failed"] is True
    assert result["msg"].startswith("host_facts: ") and "gather_timeout" in result["msg"] and "bogus" in result["msg"]
