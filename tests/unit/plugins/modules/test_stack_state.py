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


def test_absent_keeps_what_was_removed(call):
    call()
    gone = call(state="absent")
    removed = gone["stack_state"]["removed"]
    assert [(r["id"], r["cost_per_hour"]) for r in removed] == [("pod1", 0.34)]
    assert removed[0]["removed_at"] >= removed[0]["created_at"]
    assert call(state="absent")["changed"] is False


def test_stopped_marks_once_and_keeps_fields(call):
    call()
    assert call(state="stopped", check=True)["changed"] is True
    stopped = call(state="stopped", name=None, cost_per_hour=0.0, attributes={})
    entry = stopped["stack_state"]["resources"][0]
    assert stopped["changed"] is True
    assert (entry["name"], entry["cost_per_hour"], entry["attributes"]) == ("coder", 0.34, {"role": "coder"})
    assert entry["stopped_at"] >= entry["created_at"]
    again = call(state="stopped")
    assert again["changed"] is False
    assert again["stack_state"]["resources"][0]["stopped_at"] == entry["stopped_at"]
    # Recording it as present again (resumed) clears the mark.
    resumed = call()
    entry2 = resumed["stack_state"]["resources"][0]
    assert resumed["changed"] is True and "stopped_at" not in entry2
    # ... and keeps the stop as an interval: the budget guard counts running hours only
    assert entry2["stopped_intervals"] == [[entry["stopped_at"], entry2["updated_at"]]]
    assert call()["changed"] is False
    call(state="stopped")
    again = call()["stack_state"]["resources"][0]
    assert len(again["stopped_intervals"]) == 2 and again["created_at"] == entry["created_at"]


def test_stopped_unknown_resource_fails(call):
    result = call(state="stopped", resource_id="ghost")
    assert result["failed"] is True
    assert "ghost" in result["msg"] and "not recorded" in result["msg"]


def test_concurrent_writers_of_one_copy_lose_no_change(tmp_path):
    """The waker and the budget guard's teardown rewrite the same host copy: each change starts
    from the other's last write (the file's lock), so none is lost."""
    import threading  # pylint: disable=import-outside-toplevel
    from ansible_collections.llmops.codestack.plugins.module_utils import _statefile  # pylint: disable=import-outside-toplevel

    path = str(tmp_path / "state.json")
    errors = []

    def writer(name):
        try:
            for n in range(40):
                _statefile.update(path, "s", "present", ("runpod", "pod", "%s-%d" % (name, n)),
                                  lambda current, n=n: _statefile.entry("runpod", "pod", "%s-%d" % (name, n), name,
                                                                        1.0, {}, current))
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("waker", "guard", "third")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    doc = _statefile.read(path, "s")
    assert len(doc["resources"]) == 120
    assert oct(os.stat(path + ".lock").st_mode & 0o777) == "0o600"


def test_check_mode_takes_no_lock_and_writes_nothing(tmp_path):
    from ansible_collections.llmops.codestack.plugins.module_utils import _statefile  # pylint: disable=import-outside-toplevel
    params = {"path": str(tmp_path / "d" / "state.json"), "stack_id": "s", "state": "present", "provider": "runpod",
              "kind": "pod", "resource_id": "p1", "name": "p", "cost_per_hour": 1.0, "attributes": {}}
    result = _statefile.record(params, check_mode=True)
    assert result["changed"] and not (tmp_path / "d").exists()
