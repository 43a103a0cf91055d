"""stack_state_merge: the controller's state file takes back what the waker and the budget guard
recorded in the control host's copy (stops, resumes, a replacement pod and the pod it replaced)."""

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter import stack

T0 = "2026-12-02T01:00:00Z"
T1 = "2026-12-02T01:10:00Z"
T2 = "2026-12-02T01:20:00Z"
T3 = "2026-12-02T01:30:00Z"


def _pod(pod_id, **extra):
    record = {"provider": "runpod", "kind": "pod", "id": pod_id, "name": "s-big", "cost_per_hour": 2.5,
              "attributes": {"deployment": "big", "endpoint_url": "https://%s-8000.proxy/v1" % pod_id},
              "created_at": T0, "updated_at": T0}
    record.update(extra)
    return record


WAKER = {"provider": "local", "kind": "service", "id": "waker", "name": "waker", "cost_per_hour": 0.0,
         "attributes": {"host": "control"}, "created_at": T0, "updated_at": T0}


def _doc(resources, removed=(), updated_at=T0):
    return {"stack_id": "s", "resources": list(resources), "removed": list(removed), "updated_at": updated_at}


def test_an_identical_copy_changes_nothing():
    doc = _doc([_pod("p1"), WAKER])
    assert stack.stack_state_merge(doc, copy.deepcopy(doc)) == doc
    assert stack.stack_state_merge(doc, []) == doc
    assert stack.stack_state_merge(doc, [{}]) == doc


def test_the_wakers_stop_and_resume_come_back():
    doc = _doc([_pod("p1"), WAKER])
    stopped = _doc([_pod("p1", stopped_at=T1, updated_at=T1), WAKER], updated_at=T1)
    merged = stack.stack_state_merge(doc, stopped)
    assert merged["resources"][0]["stopped_at"] == T1 and merged["updated_at"] == T1
    # resumed: the waker turns the stop into an interval without a new updated_at
    resumed = _doc([_pod("p1", updated_at=T1, stopped_intervals=[[T1, T2]]), WAKER], updated_at=T2)
    merged = stack.stack_state_merge(merged, resumed)
    assert "stopped_at" not in merged["resources"][0]
    assert merged["resources"][0]["stopped_intervals"] == [[T1, T2]]
    assert doc["resources"][0] == _pod("p1")   # the input is untouched


def test_a_replacement_pod_replaces_the_old_one():
    doc = _doc([_pod("p1"), WAKER])
    new = _pod("p2", created_at=T2, updated_at=T2)
    new["attributes"]["replaces"] = "p1"
    host = _doc([WAKER, new], removed=[_pod("p1", stopped_at=T1, updated_at=T1, removed_at=T2)], updated_at=T2)
    merged = stack.stack_state_merge(doc, host)
    assert [r["id"] for r in merged["resources"]] == ["waker", "p2"]
    assert [(r["id"], r["removed_at"]) for r in merged["removed"]] == [("p1", T2)]
    # merging the same copy again adds nothing twice
    assert stack.stack_state_merge(merged, host) == merged


def test_the_controllers_newer_record_and_its_own_records_stay():
    guard = {"provider": "local", "kind": "guard", "id": "budget-guard", "name": "budget guard",
             "cost_per_hour": 0.0, "attributes": {}, "created_at": T3, "updated_at": T3}
    doc = _doc([_pod("p1", updated_at=T3, cost_per_hour=3.0), WAKER, guard], updated_at=T3)
    host = _doc([_pod("p1", stopped_at=T1, updated_at=T1), WAKER], updated_at=T1)
    merged = stack.stack_state_merge(doc, host)
    assert merged["resources"] == doc["resources"] and merged["updated_at"] == T3


def test_what_the_controller_removed_is_not_brought_back():
    doc = _doc([WAKER], removed=[_pod("p1", removed_at=T2)])
    host = _doc([_pod("p1", stopped_at=T1, updated_at=T1), WAKER], updated_at=T1)
    assert stack.stack_state_merge(doc, host)["resources"] == [WAKER]


def test_a_removal_older_than_the_controllers_record_leaves_it():
    # recorded again on the controller (a re-run's provision) after the copy removed it
    doc = _doc([_pod("p1", updated_at=T3)])
    host = _doc([], removed=[_pod("p1", removed_at=T2)])
    merged = stack.stack_state_merge(doc, host)
    assert [r["id"] for r in merged["resources"]] == ["p1"]
    assert merged["removed"] == []


def test_the_guards_teardown_on_the_host_comes_back():
    doc = _doc([_pod("p1"), _pod("v1", provider="vast", kind="instance")])
    stopped = {"stopped_at": T2, "updated_at": T2}
    host = _doc([_pod("p1", **stopped), _pod("v1", provider="vast", kind="instance", **stopped)], updated_at=T2)
    assert all(r["stopped_at"] == T2 for r in stack.stack_state_merge(doc, [host])["resources"])


def test_a_copy_of_another_stack_fails():
    with pytest.raises(AnsibleFilterError, match="stack 'other'"):
        stack.stack_state_merge(_doc([]), dict(_doc([]), stack_id="other"))


HOSTS_STATE = {"stack_id": "s", "resources": [
    {"provider": "local", "kind": "service", "id": "litellm", "attributes": {"host": "gw"}},
    {"provider": "local", "kind": "service", "id": "waker", "attributes": {"host": "control"}},
    {"provider": "local", "kind": "guard", "id": "budget-guard", "attributes": {"host": "control"}},
    {"provider": "local", "kind": "guard", "id": "budget-guard", "attributes": {"host": "localhost"}},
    {"provider": "local", "kind": "service", "id": "waker", "attributes": {"host": "other"}},
    {"provider": "hetzner", "kind": "server", "id": "1", "name": "s-control",
     "attributes": {"inventory_name": "control", "address": "203.0.113.5"}},
    {"provider": "hetzner", "kind": "firewall", "id": "2", "attributes": {}},
    {"provider": "exoscale", "kind": "server", "id": "i", "attributes": {}},
]}


def test_state_hosts_are_the_waker_and_guard_hosts_off_the_controller_each_once():
    assert stack.stack_state_hosts(HOSTS_STATE) == ["control", "other"]
    assert stack.stack_state_hosts(HOSTS_STATE, ["control", "localhost"]) == ["control"]
    assert stack.stack_state_hosts({"resources": []}, ["control"]) == []
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        stack.stack_state_hosts([], [])


def test_created_servers_are_the_joined_hetzner_and_exoscale_servers():
    assert [r["id"] for r in stack.stack_created_servers(HOSTS_STATE)] == ["1"]
    assert stack.stack_created_servers({}) == []
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        stack.stack_created_servers(None)
