"""Unit tests of the teardown_targets / teardown_report and usable_alternatives /
gateway_endpoints filters."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter import stack, teardown

STATE = {
    "stack_id": "codestack-demo",
    "resources": [
        {"provider": "local", "kind": "service", "id": "litellm", "name": "LiteLLM gateway",
         "cost_per_hour": 0, "created_at": "2026-11-29T10:00:00Z",
         "attributes": {"stop_argv": ["/srv/litellm/ctl.sh", "stop"]}},
        {"provider": "runpod", "kind": "pod", "id": "pod1", "name": "big", "cost_per_hour": 2.0,
         "created_at": "2026-11-29T10:00:00Z", "attributes": {}},
        {"provider": "vast", "kind": "instance", "id": "77", "name": "small", "cost_per_hour": 0.5,
         "created_at": "2026-11-29T10:00:00Z", "stopped_at": "2026-11-29T10:30:00Z", "attributes": {}},
        {"provider": "local", "kind": "guard", "id": "budget-guard", "name": "budget guard",
         "created_at": "2026-11-29T10:01:00Z",
         "attributes": {"stop_argv": ["start-stop-daemon", "--stop"], "host": "control-1"}},
    ],
}
RUNPOD = {"pods": [{"id": "pod1", "name": "big", "cost_per_hr": 2.0, "uptime_seconds": 3500},
                   {"id": "pod9", "name": "orphan", "cost_per_hr": 1.0, "uptime_seconds": 1800}],
          "endpoints": [{"id": "ep1", "name": "serverless"}]}
VAST = {"instances": [{"id": 77, "name": "small", "dph_total": 0.5}]}


def _by_id(targets):
    return dict((t["id"], t) for t in targets)


def test_targets_merge_state_and_labels_paid_first():
    targets = teardown.teardown_targets(STATE, RUNPOD, VAST)
    by_id = _by_id(targets)
    assert (by_id["pod1"]["in_state"], by_id["pod1"]["labelled"]) == (True, True)
    assert (by_id["pod9"]["in_state"], by_id["pod9"]["labelled"]) == (False, True)   # crash before the record
    assert by_id["ep1"]["provider"] == "runpod_serverless"
    assert by_id["77"]["stopped_at"] == "2026-11-29T10:30:00Z"
    assert by_id["litellm"]["stop_argv"] == ["/srv/litellm/ctl.sh", "stop"]
    # Where each local service is stopped: its control host; a record without one, the controller.
    assert (by_id["budget-guard"]["host"], by_id["litellm"]["host"], by_id["pod9"]["host"]) == (
        "control-1", "localhost", "localhost")
    kinds = [t["kind"] for t in targets]
    assert kinds.index("service") > kinds.index("endpoint") > kinds.index("pod")
    assert kinds[-1] == "guard"


def test_targets_without_state_file_come_from_labels_only():
    targets = teardown.teardown_targets({}, RUNPOD, {})
    assert sorted(t["id"] for t in targets) == ["ep1", "pod1", "pod9"]
    assert not any(t["in_state"] for t in targets)


def test_targets_reject_broken_state():
    with pytest.raises(AnsibleFilterError, match="lacks id"):
        teardown.teardown_targets({"resources": [{"provider": "runpod", "kind": "pod"}]})
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        teardown.teardown_targets(["nope"])


def test_report_outcomes_hours_and_cost():
    targets = teardown.teardown_targets(STATE, RUNPOD, VAST)
    by_id = _by_id(targets)
    results = [
        {"item": by_id["pod1"], "changed": True},
        {"item": by_id["pod9"], "changed": True},
        {"item": by_id["77"], "failed": True, "msg": "Vast.ai answered 500"},
        {"item": by_id["litellm"], "changed": True, "rc": 0},
    ]
    report = teardown.teardown_report(targets, results, "destroy", "2026-11-29T11:00:00Z")
    lines = dict((line["id"], line) for line in report["resources"])
    assert lines["pod1"]["outcome"] == "removed" and lines["pod1"]["hours"] == 1.0 and lines["pod1"]["usd"] == 2.0
    assert lines["pod9"]["source"] == "label" and lines["pod9"]["hours"] == 0.5 and lines["pod9"]["usd"] == 0.5
    # Stopped at 10:30: billed half an hour, whatever the time of the report.
    assert lines["77"]["outcome"] == "failed" and lines["77"]["usd"] == 0.25
    assert "Vast.ai answered 500" in lines["77"]["text"]
    assert lines["ep1"]["outcome"] == "kept" and lines["ep1"]["hours"] is None
    assert report["unpriced"] == 1 and report["total_usd"] == pytest.approx(2.75)
    assert [line["id"] for line in report["failed"]] == ["77"]
    assert report["removed"] == 3


def test_report_prices_serverless_from_the_ledger_and_resumed_pods_by_running_hours():
    state = {"stack_id": "s", "resources": [
        {"provider": "runpod_serverless", "kind": "endpoint", "id": "ep1", "name": "sls",
         "cost_per_hour": 1.12, "created_at": "2026-11-29T00:00:00Z"},
        {"provider": "runpod", "kind": "pod", "id": "p2", "name": "pod", "cost_per_hour": 2.0,
         "created_at": "2026-11-29T08:00:00Z",
         "stopped_intervals": [["2026-11-29T09:00:00Z", "2026-11-29T10:30:00Z"]]}]}
    targets = teardown.teardown_targets(state, {}, {})
    plan = {"totals": {"cost_usd": 3.1, "always_on_cost_usd": 40.0}}
    report = teardown.teardown_report(targets, [], "destroy", "2026-11-29T11:00:00Z",
                                      {"ep1": {"usd": 0.05, "seconds": 180.0}}, plan)
    lines = dict((line["id"], line) for line in report["resources"])
    # 11 h of existence at 1.12 USD/h would be 12.32: RunPod billed 180 worker-seconds
    assert lines["ep1"]["usd"] == 0.05 and lines["ep1"]["hours"] == 0.05
    assert lines["p2"]["hours"] == 1.5 and lines["p2"]["usd"] == 3.0   # ran 08-09 and 10:30-11
    assert report["plan"] == {"billed_estimate_usd": 3.1, "always_on_cost_usd": 40.0, "billed_usd": 3.05,
                              "deployments": []}
    # without the ledger the endpoint is unpriced, never priced by the hour
    bare = teardown.teardown_report(targets, [], "destroy", "2026-11-29T11:00:00Z")
    assert dict((line["id"], line) for line in bare["resources"])["ep1"]["usd"] is None
    assert "plan" not in bare and bare["unpriced"] == 1


def test_report_puts_the_control_servers_planned_cost_beside_its_bill():
    state = {"stack_id": "s", "resources": [
        {"provider": "hetzner", "kind": "server", "id": "42", "name": "s-control", "cost_per_hour": 0.0095,
         "created_at": "2026-11-29T00:00:00Z"},
        {"provider": "hetzner", "kind": "firewall", "id": "7", "name": "s-control", "created_at": "2026-11-29T00:00:00Z"}]}
    targets = teardown.teardown_targets(state, {}, {})
    plan = {"totals": {"cost_usd": 0.23, "always_on_cost_usd": 0.23},
            "control_plane": {"cost_usd": 0.2283, "server_type": "cx22"}}
    report = teardown.teardown_report(targets, [], "destroy", "2026-11-30T00:00:00Z", None, plan)
    assert report["plan"]["control_plane"] == {"planned_usd": 0.2283, "server_type": "cx22", "billed_usd": 0.228}


def test_report_bills_the_disk_while_stopped_and_compares_each_deployment_with_the_plan():
    """A pod that ran 1.5 of 3 h keeps 50 GB at 0.1 (running) / 0.2 (stopped) USD per GB-month:
    its bill is GPU hours plus the disk both ways, set beside its deployment's billed estimate."""
    state = {"stack_id": "s", "resources": [
        {"provider": "runpod", "kind": "pod", "id": "p2", "name": "pod", "cost_per_hour": 2.0,
         "created_at": "2026-11-29T08:00:00Z", "attributes": {"deployment": "big"},
         "stopped_intervals": [["2026-11-29T09:00:00Z", "2026-11-29T10:30:00Z"]]},
        {"provider": "runpod_serverless", "kind": "endpoint", "id": "ep1", "name": "sls",
         "created_at": "2026-11-29T08:00:00Z", "attributes": {"deployment": "sls"}}]}
    plan = {"totals": {"cost_usd": 3.5, "always_on_cost_usd": 40.0}, "deployments": [
        {"name": "big", "provider": "runpod", "cost_usd": 3.4, "scaling": {"mode": "idle_stop"},
         "billed": {"storage_gb": 50.0},
         "cost_terms": {"scaling": {"mode": "idle_stop", "storage_running_usd_per_gb_month": 0.1,
                                    "storage_stopped_usd_per_gb_month": 0.2}}},
        {"name": "sls", "provider": "runpod_serverless", "cost_usd": 0.1, "scaling": {"mode": "serverless"}},
        {"name": "unused", "provider": "vast", "cost_usd": 1.0}]}
    targets = teardown.teardown_targets(state, {}, {})
    report = teardown.teardown_report(targets, [], "destroy", "2026-11-29T11:00:00Z",
                                      {"ep1": {"usd": 0.05, "seconds": 180.0}}, plan)
    pod = dict((line["id"], line) for line in report["resources"])["p2"]
    disk = 50.0 * (1.5 * 0.1 + 1.5 * 0.2) / 730.0
    assert pod["storage_usd"] == pytest.approx(disk, abs=1e-4) and pod["stopped_hours"] == 1.5
    assert pod["usd"] == pytest.approx(3.0 + disk, abs=1e-4)
    assert report["plan"]["billed_usd"] == pytest.approx(3.05 + disk, abs=1e-4)
    by_name = dict((d["name"], d) for d in report["plan"]["deployments"])
    assert by_name["big"]["billed_usd"] == pytest.approx(3.0 + disk, abs=1e-4)
    assert by_name["big"]["billed_over_estimate"] == pytest.approx((3.0 + disk) / 3.4, abs=1e-3)
    assert by_name["sls"]["billed_usd"] == 0.05 and by_name["sls"]["mode"] == "serverless"
    assert by_name["unused"]["billed_usd"] is None and by_name["unused"]["resources"] == 0


def test_plan_billed_is_the_teardown_reports_comparison_while_the_stack_runs():
    """calibrate.yml's "planned vs billed so far": the same figures teardown's report gives,
    the RunPod billing history summed from the uri results (v2 records, v1 list, failures
    left out), the elapsed share of the deadline set beside them."""
    state = {"stack_id": "s", "resources": [
        {"provider": "runpod", "kind": "pod", "id": "p2", "name": "pod", "cost_per_hour": 2.0,
         "created_at": "2026-11-29T08:00:00Z", "attributes": {"deployment": "big"}},
        {"provider": "runpod_serverless", "kind": "endpoint", "id": "ep1", "name": "sls",
         "created_at": "2026-11-29T09:00:00Z", "attributes": {"deployment": "sls"}}]}
    plan = {"blueprint": {"constraints": {"deadline_hours": 24}},
            "totals": {"cost_usd": 3.5, "always_on_cost_usd": 40.0}, "deployments": [
                {"name": "big", "provider": "runpod", "cost_usd": 3.4, "scaling": {"mode": "idle_stop"}},
                {"name": "sls", "provider": "runpod_serverless", "cost_usd": 0.1,
                 "scaling": {"mode": "serverless"}}]}
    results = [{"item": {"id": "ep1"}, "status": 200,
                "json": {"records": [{"totalAmount": 0.03, "timeBilledMs": 60000},
                                     {"totalAmount": 0.02, "timeBilledMs": 30000}]}},
               {"item": {"id": "ep2"}, "status": 200, "json": [{"amount": 0.5, "timeBilledMs": 1000}]},
               {"item": {"id": "ep3"}, "status": 401, "json": {"error": "no"}},
               {"item": {"id": "ep4"}, "status": -1, "msg": "timed out"}]
    billed = teardown.serverless_billed(results)
    assert billed == {"ep1": {"usd": pytest.approx(0.05), "seconds": 90.0},
                      "ep2": {"usd": 0.5, "seconds": 1.0}}
    got = teardown.plan_billed(plan, state, billed, "2026-11-29T10:00:00Z")
    final = teardown.teardown_report(teardown.teardown_targets(state), [], "stop", "2026-11-29T10:00:00Z",
                                     billed, plan)["plan"]
    assert dict((k, got[k]) for k in final) == final
    assert got["billed_usd"] == pytest.approx(2 * 2.0 + 0.05)
    assert (got["elapsed_hours"], got["window_hours"], got["unpriced"]) == (2.0, 24, 0)
    assert [d["billed_usd"] for d in got["deployments"]] == [4.0, pytest.approx(0.05)]
    assert teardown.plan_billed({}, state) == {}
    with pytest.raises(AnsibleFilterError):
        teardown.plan_billed(plan, None)


def test_report_stop_mode_and_gone_resources():
    targets = teardown.teardown_targets(STATE, {}, {})   # providers no longer list them
    report = teardown.teardown_report(targets, [], "stop", "2026-11-29T11:00:00Z")
    outcomes = dict((line["id"], line["outcome"]) for line in report["resources"])
    assert outcomes == {"pod1": "gone", "77": "gone", "litellm": "kept", "budget-guard": "kept"}
    stopped = teardown.teardown_report(targets, [{"item": targets[0], "changed": True}], "stop")
    assert stopped["resources"][0]["outcome"] == "stopped"
    with pytest.raises(AnsibleFilterError, match="mode"):
        teardown.teardown_report(targets, [], "erase")


PLAN_RENTED = {"deployments": [{"name": "big", "provider": "runpod", "alternatives": [{"provider": "vast"}]}]}
PLAN_LOCAL = {"deployments": [{"name": "local", "provider": "local", "alternatives": [{"provider": "runpod"}]}]}


@pytest.mark.parametrize("state,plan,keyed,search,found,ask,missing", [
    # By stack id alone, no keys: both providers may hold the stack, both keys are named.
    ({}, {}, {}, {}, False, {"runpod": False, "vast": False}, ["RUNPOD_API_KEY", "VAST_API_KEY"]),
    ({}, {}, {"runpod": True}, {}, False, {"runpod": True, "vast": False}, ["VAST_API_KEY"]),
    ({}, {}, {}, {"vast": "never"}, False, {"runpod": False, "vast": False}, ["RUNPOD_API_KEY"]),
    ({}, {}, {}, {"runpod": "always", "vast": "never"}, False, {"runpod": True, "vast": False}, []),
    # The plan says where it rents (alternatives included); a local plan rents nowhere.
    ({}, PLAN_RENTED, {"runpod": True}, {}, False, {"runpod": True, "vast": False}, ["VAST_API_KEY"]),
    ({}, PLAN_LOCAL, {}, {}, False, {"runpod": False, "vast": False}, []),
    # The state file is the ledger: what it lists is asked (module_defaults may hold the key).
    (STATE, {}, {}, {}, True, {"runpod": True, "vast": True}, []),
    ({"resources": STATE["resources"][:1]}, {}, {}, {}, True, {"runpod": False, "vast": False}, []),
])
def test_search_names_the_keys_a_teardown_by_labels_lacks(state, plan, keyed, search, found, ask, missing):
    result = teardown.teardown_search(state, plan, keyed, search, found)
    assert result["ask"] == dict(ask, hetzner=False, exoscale=False) and result["missing"] == missing


HETZNER_STATE = {"resources": [{"provider": "hetzner", "kind": "server", "id": "5000003", "name": "s-control",
                                "attributes": {"address": "198.51.100.7"}}]}


@pytest.mark.parametrize("state,keyed,control,found,ask,missing", [
    # A state file listing the control server: asked with the key, named without it.
    (HETZNER_STATE, {"hetzner": True}, None, True, True, []),
    (HETZNER_STATE, {}, None, True, False, ["HCLOUD_TOKEN"]),
    # No state file: needed only where codestack_control_server asks for a server.
    ({}, {}, {"provider": "hetzner"}, False, False, ["HCLOUD_TOKEN"]),
    ({}, {}, None, False, False, []),
    ({}, {"hetzner": True}, None, False, True, []),
])
def test_search_for_a_created_control_server(state, keyed, control, found, ask, missing):
    keyed = dict(keyed, runpod=True, vast=True)
    result = teardown.teardown_search(state, PLAN_LOCAL, keyed, {}, found, control)
    assert result["ask"]["hetzner"] is ask and result["missing"] == missing
    assert teardown.teardown_search({}, PLAN_LOCAL, keyed, {}, False, {"provider": "exoscale"})["missing"] == [
        "EXOSCALE_API_KEY and EXOSCALE_API_SECRET"]


def test_targets_merge_the_control_server_by_state_and_label_and_order_it_last():
    state = {"resources": STATE["resources"] + HETZNER_STATE["resources"] + [
        {"provider": "hetzner", "kind": "ssh_key", "id": "5000001", "name": "s-control"}]}
    listed = {"servers": [{"id": 5000003, "name": "s-control"}], "firewalls": [{"id": 5000002, "name": "s-control"}],
              "ssh_keys": []}
    targets = teardown.teardown_targets(state, RUNPOD, VAST, listed)
    control = [(t["kind"], t["in_state"], t["labelled"]) for t in targets if t["provider"] == "hetzner"]
    # The server after the services that run on it; its firewall after it; the key last.
    assert control == [("server", True, True), ("firewall", False, True), ("ssh_key", True, False)]
    assert [t["kind"] for t in targets][-3:] == ["server", "firewall", "ssh_key"]
    exo = teardown.teardown_targets({}, None, None, None, {"instances": [{"id": "i-1", "name": "s-control"}],
                                                           "security_groups": [{"id": "sg-1", "name": "s-control"}]})
    assert [(t["provider"], t["kind"]) for t in exo] == [("exoscale", "server"), ("exoscale", "security_group")]


def test_search_rejects_a_bad_mode():
    with pytest.raises(AnsibleFilterError, match="auto, always or never"):
        teardown.teardown_search({}, {}, {}, {"vast": "sometimes"})


@pytest.mark.parametrize("argv,rc,stdout,stderr,outcome", [
    (["start-stop-daemon", "--stop", "--pidfile", "/x.pid"], 1,
     "No process in pidfile '/x.pid' found running; none killed.", "", "gone"),
    (["/usr/bin/systemctl", "stop", "code-server-kilocode"], 5, "",
     "Failed to stop code-server-kilocode.service: Unit code-server-kilocode.service not loaded.", "gone"),
    (["start-stop-daemon", "--stop", "--pidfile", "/x.pid"], 2, "", "still running", "failed"),
    (["/srv/litellm/ctl.sh", "stop"], 1, "", "kill: permission denied", "failed"),
    (["systemctl", "stop", "x"], 1, "", "Access denied", "failed"),
])
def test_report_counts_an_already_stopped_local_service_as_gone(argv, rc, stdout, stderr, outcome):
    target = teardown.teardown_targets({"resources": [
        {"provider": "local", "kind": "service", "id": "code-server", "name": "code-server",
         "created_at": "2026-11-29T10:00:00Z", "attributes": {"stop_argv": argv}}]})[0]
    result = {"item": target, "failed": True, "rc": rc, "stdout": stdout, "stderr": stderr,
              "msg": "non-zero return code"}
    report = teardown.teardown_report([target], [result], "destroy", "2026-11-29T11:00:00Z")
    assert report["resources"][0]["outcome"] == outcome
    assert len(report["failed"]) == (outcome == "failed") and report["removed"] == (outcome == "gone")
    if outcome == "gone":
        assert report["resources"][0]["text"].endswith("already stopped")


def test_usable_alternatives_drops_providers_without_key():
    deployments = [{"name": "a", "provider": "vast", "alternatives": [
        {"provider": "runpod"}, {"provider": "vast"}, {"provider": "hetzner"}]}, {"name": "b", "provider": "local"}]
    out = stack.usable_alternatives(deployments, ["local", "vast"])
    assert [alt["provider"] for alt in out[0]["alternatives"]] == ["vast"]
    assert out[1]["alternatives"] == []
    assert deployments[0]["alternatives"][0] == {"provider": "runpod"}   # input untouched
    with pytest.raises(AnsibleFilterError):
        stack.usable_alternatives({"name": "a"}, [])


def test_gateway_endpoints_from_provision_results():
    results = {"big": {"endpoint_url": "http://pod/v1", "served_model_name": "qwen", "provider": "runpod", "id": "p"}}
    expected = {"big": {"api_base": "http://pod/v1", "api_key": "sk-x", "model": "qwen"}}
    assert stack.gateway_endpoints(results, "sk-x") == expected
    assert stack.gateway_endpoints(results)["big"]["api_key"] == "none"
    serverless = {"sls": {"endpoint_url": "https://api.runpod.ai/v2/e1/openai/v1", "provider": "runpod_serverless",
                          "kind": "endpoint", "id": "e1", "served_model_name": "coder"}}
    assert stack.gateway_endpoints(serverless, "sk-x")["sls"]["api_key"] == "os.environ/RUNPOD_API_KEY"
    with pytest.raises(AnsibleFilterError, match="small has no endpoint URL"):
        stack.gateway_endpoints({"small": {"endpoint_url": None, "provider": "vast", "id": 7}})


def test_gateway_endpoints_carry_the_authority_of_a_server_with_its_own_tls():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    results = {"small": {"endpoint_url": "https://203.0.113.7:40011/v1", "served_model_name": "qwen",
                         "provider": "vast", "id": 7, "tls_ca_pem": pem}}
    assert stack.gateway_endpoints(results, "sk-x")["small"]["ca_pem"] == pem
