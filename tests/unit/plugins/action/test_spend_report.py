"""llmops.codestack.spend_report on the controller: check mode writes nothing, a run writes the
three files 0600, a second run changes nothing; bad input fails with the reason."""

import json
import os
import shutil
import stat

from unittest.mock import MagicMock

from ansible.playbook.task import Task
from ansible.template import Templar

from ansible_collections.llmops.codestack.plugins.action.spend_report import ActionModule
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "spend")
API = {"name": "deepseek/deepseek-chat", "kind": "api", "quality_score": 90.0,
       "usd_per_m_input": 0.27, "usd_per_m_output": 1.10}


def run(args, check=False):
    task = MagicMock(Task)
    task.args = args
    task.async_val = 0
    task.check_mode = check
    task.diff = False
    loader = MagicMock()
    action = ActionModule(task, MagicMock(), MagicMock(), loader=loader, templar=Templar(loader=loader),
                          shared_loader_obj=None)
    return action.run(task_vars={})


def args(tmp_path, **over):
    shutil.copy(os.path.join(FIXTURES, "plan.json"), str(tmp_path / "plan.json"))
    shutil.copy(os.path.join(FIXTURES, "spend.jsonl"), str(tmp_path / "spend.jsonl"))
    base = {"log": str(tmp_path / "spend.jsonl"), "plan": str(tmp_path / "plan.json"),
            "dest": str(tmp_path / "report"), "routes": [API]}
    base.update(over)
    return base


def test_check_then_write_then_nothing(tmp_path):
    opts = args(tmp_path)
    checked = run(opts, check=True)
    assert checked["changed"] is True and not (tmp_path / "report").exists()
    first = run(opts)
    assert first["changed"] is True, first
    report = first["spend_report"]
    assert report["requests"] == 99 and report["skipped_lines"] == 1 and report["saving_usd"] > 0
    for key in ("markdown", "html", "json"):
        assert stat.S_IMODE(os.stat(report[key]).st_mode) == 0o600
    # the plan's 8 routes, the one given, and every per-token API of the bundled catalog
    apis = len(load_catalog().sections["api_models"])
    assert json.load(open(report["json"]))["routes_considered"] == 9 + apis
    assert run(dict(opts, catalog_routes=False))["spend_report"]["requests"] == 99
    assert json.load(open(report["json"]))["routes_considered"] == 9
    run(opts)
    again = run(opts)
    assert again["changed"] is False
    assert run(opts, check=True)["changed"] is False


def test_missing_log_and_bad_route_fail_with_the_reason(tmp_path):
    missing = run(args(tmp_path, log=str(tmp_path / "nope.jsonl")))
    assert missing["failed"] and "cannot read the spend log" in missing["msg"]
    bad = run(args(tmp_path, routes=[{"name": "x", "kind": "api", "quality_score": 1}]))
    assert bad["failed"] and "route x" in bad["msg"]
