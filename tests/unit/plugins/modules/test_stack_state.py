import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.modules import stack_state


def run(args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            stack_state.main()


@pytest.fixture
def call(tmp_path, capsys):
    path = str(tmp_path / "state" / "demo.json")

    def _call(check=False, diff=False, **overrides):
        args = {"path": path, "stack_id": "codestack-demo", "provider": "runpod", "kind": "pod",
                "resource_id": "pod1", "name": "coder", "cost_per_hour": 0.34,
                "attributes": {"role": "coder"}, "_ansible_check_mode": check,
                "_ansible_diff": diff}
        args.update(overrides)
        run(args)
        return json.loads(capsys.readouterr().out)

    _call.path = path
    return _call


def test_present_check_real_repeat(call):
    assert call(check=True)["changed"] is True
    assert not os.path.exists(call.path)
    first = call()
    assert first["changed"] is True
    assert stat.S_IMODE(os.stat(call.path).st_mode) == 0o600
    assert call()["changed"] is False
    entry = first["stack_state"]["resources"][0]
    assert (entry["id"], entry["cost_per_hour"], entry["attributes"]) == ("pod1", 0.34, {"role": "coder"})


def test_update_keeps_created_at_and_shows_diff(call):
    created = call()["stack_state"]["resources"][0]["created_at"]
    result = call(diff=True, cost_per_hour=0.5)
    assert result["changed"] is True
    assert result["diff"]["before"]["cost_per_hour"] == 0.34
    assert result["diff"]["after"]["cost_per_hour"] == 0.5
    assert result["stack_state"]["resources"][0]["created_at"] == created


def test_absent_check_real_repeat(call):
    call()
    call(resource_id="pod2")
    assert call(state="absent", check=True)["changed"] is True
    gone = call(state="absent")
    assert gone["changed"] is True
    assert [r["id"] for r in gone["stack_state"]["resources"]] == ["pod2"]
    assert call(state="absent")["changed"] is False


def test_other_stack_file_refused(call):
    call()
    result = call(stack_id="codestack-other")
    assert result["failed"] is True and "belongs to stack" in result["msg"]
