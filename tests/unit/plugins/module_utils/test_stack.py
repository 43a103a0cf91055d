"""The stage playbooks' contract: a stack directory with plan.json and state.json (_stack.py)."""

import base64
import json
import os

import pytest

from ansible_collections.llmops.codestack.plugins.filter import stack as stack_filters
from ansible_collections.llmops.codestack.plugins.module_utils import _stack

PLAN = {
    "stack_id": "cs-1",
    "generated_at": "2026-12-01T00:00:00Z",
    "checks": {"budget": {"limit": 10, "currency": "EUR"}},
    "totals": {"usd_per_eur": 1.1, "cost_usd": 2.5, "hours": 3},
    "roles": {"coder": {"alias": "coder", "deployment": "gpu-a"},
              "reviewer": {"alias": "reviewer", "deployment": "cpu"}},
    "deployments": [
        {"name": "cpu", "provider": "local", "model": {"name": "SmolLM2", "quantization": "q4"},
         "gpu": {"count": 0, "name": "cpu"}},
        {"name": "gpu-a", "provider": "runpod", "model": {"name": "Codestral", "quantization": "awq"},
         "gpu": {"count": 1, "name": "RTX 4090"},
         "alternatives": [{"provider": "vast"}, {"provider": "runpod"}]},
        {"name": "gpu-b", "provider": "vast", "alternatives": []},
    ],
}

STATE = {
    "stack_id": "cs-1",
    "resources": [
        {"provider": "local", "kind": "service", "id": "llamacpp", "name": "local model engine",
         "attributes": {"api_base": "http://127.0.0.1:8001/v1", "model": "smollm2",
                        "api_key_file": "/x/api_key"}},
        {"provider": "runpod", "kind": "pod", "id": "p1", "name": "gpu-a", "cost_per_hour": 0.6,
         "attributes": {"deployment": "gpu-a", "endpoint_url": "https://p1-8000.proxy.runpod.net/v1",
                        "model": "codestral", "gpu": "RTX 4090"}},
        {"provider": "vast", "kind": "instance", "id": "9", "name": "gpu-b",
         "attributes": {"deployment": "gpu-b", "endpoint_url": "https://1.2.3.4:4433/v1", "model": "qwen"}},
        {"provider": "vast", "kind": "instance", "id": "7", "name": "old",
         "attributes": {"deployment": "old", "endpoint_url": "https://5.6.7.8:1/v1"}},
    ],
}


def test_stack_dir_is_absolute_from_the_working_directory(tmp_path):
    assert _stack.stack_dir("out/stack", cwd=str(tmp_path)) == str(tmp_path / "out" / "stack")
    assert _stack.stack_dir(str(tmp_path)) == str(tmp_path)
    with pytest.raises(_stack.StackError, match="codestack_output is empty"):
        _stack.stack_dir("")


def test_load_plan_names_the_file_and_what_is_missing(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"stack_id": "x"}))
    with pytest.raises(_stack.StackError, match=r"plan.json is not a plan.json .*missing deployments, roles"):
        _stack.load_plan(str(path))
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(_stack.StackError, match=r"plan .*plan.json is not UTF-8"):
        _stack.load_plan(str(path))
    with pytest.raises(_stack.StackError, match=r"cannot read the plan .*nothere"):
        _stack.load_plan(str(tmp_path / "nothere"))


def test_load_state_missing_is_empty_and_another_stack_is_refused(tmp_path):
    path = tmp_path / "state.json"
    assert _stack.load_state(str(path), "cs-1") == {"stack_id": "cs-1", "resources": [], "removed": []}
    path.write_text(json.dumps({"stack_id": "other", "resources": []}))
    with pytest.raises(_stack.StackError, match="belongs to stack other, not cs-1"):
        _stack.load_state(str(path), "cs-1")
    path.write_text("{not json")
    with pytest.raises(_stack.StackError, match="is not JSON"):
        _stack.load_state(str(path), "cs-1")


def test_budget_in_usd_converts_euros():
    assert _stack.budget_usd(PLAN) == 11.0
    assert _stack.budget_usd({"checks": {"budget": {"limit": 5, "currency": "USD"}}}) == 5.0
    assert _stack.budget_usd({}) == 0.0


def test_build_problems_name_every_missing_key_and_unsupported_provider():
    plan = dict(PLAN, deployments=PLAN["deployments"] + [{"name": "h", "provider": "hetzner"}])
    problems = _stack.build_problems(plan, {})
    assert len(problems) == 2
    assert "hetzner" in problems[0]
    assert "runpod, vast" in problems[1] and "RUNPOD_API_KEY and VAST_API_KEY" in problems[1]
    assert _stack.build_problems(PLAN, {"RUNPOD_API_KEY": "k", "VAST_API_KEY": "v"}) == []


def test_keyed_providers_and_usable_alternatives():
    keyed = _stack.keyed_providers({"RUNPOD_API_KEY": "k", "VAST_API_KEY": ""})
    assert keyed == ["local", "ollama", "runpod", "runpod_serverless"]   # Ollama needs no key
    deps = _stack.usable_alternatives(PLAN["deployments"], keyed)
    assert deps[1]["alternatives"] == [{"provider": "runpod"}]
    assert PLAN["deployments"][1]["alternatives"] == [{"provider": "vast"}, {"provider": "runpod"}]


def test_stale_rented_are_the_recorded_deployments_the_plan_dropped():
    assert _stack.stale_rented(STATE, PLAN) == ["old"]


def test_endpoints_come_from_the_state_file_alone():
    endpoints = _stack.stack_endpoints(PLAN, STATE, "engine-key", "vllm-key")
    assert endpoints == {
        "cpu": {"api_base": "http://127.0.0.1:8001/v1", "api_key": "engine-key", "model": "smollm2"},
        "gpu-a": {"api_base": "https://p1-8000.proxy.runpod.net/v1", "api_key": "vllm-key", "model": "codestral"},
        "gpu-b": {"api_base": "https://1.2.3.4:4433/v1", "api_key": "vllm-key", "model": "qwen"},
    }


def test_serverless_endpoints_get_the_runpod_key_as_an_environment_reference():
    plan = dict(PLAN, deployments=PLAN["deployments"] + [{"name": "sls", "provider": "runpod_serverless"}])
    state = {"resources": STATE["resources"] + [
        {"provider": "runpod_serverless", "kind": "endpoint", "id": "e1", "name": "sls",
         "attributes": {"deployment": "sls", "endpoint_url": "https://api.runpod.ai/v2/e1/openai/v1",
                        "model": "coder"}}]}
    endpoints = _stack.stack_endpoints(plan, state, "engine-key", "vllm-key")
    assert endpoints["sls"] == {"api_base": "https://api.runpod.ai/v2/e1/openai/v1",
                                "api_key": "os.environ/RUNPOD_API_KEY", "model": "coder"}
    assert endpoints["gpu-a"]["api_key"] == "vllm-key"


def test_endpoints_name_every_deployment_without_one():
    state = {"resources": [STATE["resources"][1]]}
    with pytest.raises(_stack.StackError) as err:
        _stack.stack_endpoints(PLAN, state)
    assert "cpu (local engine not recorded" in str(err.value) and "gpu-b (not provisioned)" in str(err.value)


def test_model_servers_leave_out_serverless_endpoints():
    state = {"resources": STATE["resources"] + [
        {"provider": "runpod_serverless", "kind": "endpoint", "id": "e1",
         "attributes": {"deployment": "sls", "endpoint_url": "https://api.runpod.ai/v2/e1/openai/v1"}}]}
    servers = _stack.model_servers(state)
    assert [s["deployment"] for s in servers] == ["gpu-a", "gpu-b", "old"]
    assert servers[0]["url"] == "https://p1-8000.proxy.runpod.net"


def test_scaling_report_says_what_bills_while_idle():
    rows = dict((r["deployment"], r) for r in _stack.scaling_report(PLAN, STATE))
    assert rows["cpu"]["mode"] == "always_on" and rows["cpu"]["kind"] == "service"
    assert rows["gpu-a"]["mode"] == "always_on" and "hourly price" in rows["gpu-a"]["idle_billing"]
    missing = _stack.scaling_report(PLAN, {"resources": []})
    assert [r["mode"] for r in missing] == ["always_on", "none", "none"]


def test_summary_lists_gateway_ide_roles_and_teardown(tmp_path):
    state = {"resources": STATE["resources"] + [
        {"provider": "local", "kind": "service", "id": "litellm",
         "attributes": {"api_base": "http://127.0.0.1:4000/v1", "master_key_file": "/k", "host": "localhost"}}]}
    lines = _stack.summary(PLAN, state, str(tmp_path))
    text = "\n".join(lines)
    assert "Gateway: http://127.0.0.1:4000/v1 (master key in /k on localhost); aliases: coder, reviewer" in text
    assert "IDE: not installed" in text
    assert "coder -> Codestral awq on 1x RTX 4090 (runpod, gpu-a)" in text
    assert "Budget guard: none" in text and "Calibration: not run" in text
    assert lines[-1].endswith("-e codestack_output=%s" % tmp_path)


def test_summary_prints_the_tls_urls_and_the_ca_fingerprint(tmp_path):
    proxy = {"provider": "local", "kind": "service", "id": "reverse-proxy",
             "attributes": {"host": "control", "urls": {"gateway": "https://203.0.113.5:443",
                                                        "ide": "https://203.0.113.5:8443"},
                            "ca_file": "/out/ca.crt", "ca_sha256": "AB:CD", "domain": ""}}
    lines = _stack.summary(PLAN, {"resources": STATE["resources"] + [proxy]}, str(tmp_path))
    assert ("TLS on control: gateway https://203.0.113.5:443, ide https://203.0.113.5:8443; CA certificate "
            "/out/ca.crt, SHA-256 AB:CD (clients trust this file alone)") in lines
    proxy["attributes"].update(ca_file="", ca_sha256="", domain="code.example.org")
    lines = _stack.summary(PLAN, {"resources": [proxy]}, str(tmp_path))
    assert any(line.endswith("; certificate from ACME for code.example.org") for line in lines)
    assert not any(line.startswith("TLS") for line in _stack.summary(PLAN, STATE, str(tmp_path)))


def test_same_plan_ignores_only_the_timestamp():
    previous = base64.b64encode(json.dumps(dict(PLAN, generated_at="earlier")).encode()).decode()
    assert stack_filters.same_plan(previous, PLAN)
    assert stack_filters.same_plan(json.dumps(PLAN), PLAN)
    assert not stack_filters.same_plan(previous, dict(PLAN, stack_id="cs-2"))
    assert not stack_filters.same_plan("", PLAN)
    assert not stack_filters.same_plan("!!!", PLAN)


def test_plan_document_names_the_reviewed_file():
    assert stack_filters.plan_document(json.dumps(PLAN), "r.json")["stack_id"] == "cs-1"
    with pytest.raises(Exception, match=r"r.json is not a plan.json"):
        stack_filters.plan_document("[]", "r.json")
    with pytest.raises(Exception, match=r"r.json is not a plan.json .*not JSON"):
        stack_filters.plan_document("{", "r.json")


def test_stack_service_reads_a_record():
    assert stack_filters.stack_service(STATE, "llamacpp")["model"] == "smollm2"
    assert stack_filters.stack_service(STATE, "code-server") == {}
    assert os.path.basename(stack_filters.stack_service(STATE, "llamacpp")["api_key_file"]) == "api_key"


def test_a_tls_model_server_routes_with_its_pinned_authority(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
    state = json.loads(json.dumps(STATE))
    state["resources"][2]["attributes"]["tls_ca_file"] = str(ca)
    endpoints = _stack.stack_endpoints(PLAN, state, "k", "v")
    assert endpoints["gpu-b"]["ca_pem"] == ca.read_text() and "ca_pem" not in endpoints["gpu-a"]
    assert [s["tls_ca_file"] for s in _stack.model_servers(state)][:2] == ["", str(ca)]
    state["resources"][2]["attributes"]["tls_ca_file"] = str(tmp_path / "gone.pem")
    with pytest.raises(_stack.StackError, match="gpu-b .cannot read its TLS authority"):
        _stack.stack_endpoints(PLAN, state, "k", "v")


@pytest.mark.parametrize("stage, host, expected", [
    ("provision", "localhost", ["would rent gpu-a: 1x RTX 4090 on runpod (USD None/h), labelled cs-1",
                                "would rent gpu-b: Nonex None on vast (USD None/h), labelled cs-1"]),
    ("serve", "control", ["would wait for the model server of gpu-a to list Codestral",
                          "would wait for the model server of gpu-b to list None",
                          "would start llama.cpp for cpu (SmolLM2) on control in /var/lib/codestack/cs-1/llamacpp"]),
    ("route", "control", ["would start the LiteLLM gateway on control in /var/lib/codestack/cs-1/litellm "
                          "with aliases coder, reviewer", "would write the IDE's scoped key (role aliases only)"]),
    ("ide", "ide-1", ["would start code-server with KiloCode on ide-1, one mode per role (coder, reviewer)"]),
    ("expose", "control", ["would serve the gateway and the IDE over TLS on control (Caddy; services on loopback only)"]),
    ("guard", "control", ["would start the budget guard on control at USD 11.0"]),
])
def test_check_report_says_what_each_stage_would_create(stage, host, expected):
    assert stack_filters.stack_would_create(PLAN, stage, host) == expected


def test_check_report_of_a_local_plan_without_ide_and_an_unknown_stage():
    local = dict(PLAN, deployments=PLAN["deployments"][:1], blueprint={"ide": "none"})
    assert _stack.check_report(local, "provision") == ["would rent nothing (every deployment is local)"]
    assert _stack.check_report(local, "guard") == ["would start no budget guard (nothing rented)"]
    priced = {"deployments": [{"name": "k", "provider": "kubernetes", "price_per_hour_usd": 1.5}],
              "checks": {"budget": {"limit": 5, "currency": "USD"}}}
    assert _stack.check_report(priced, "guard")[0].startswith("would start the budget guard on ")
    assert _stack.check_report(local, "ide") == ["would install no IDE (ide: none)"]
    assert _stack.check_report(local, "expose") == [
        "would serve the gateway over TLS on localhost (Caddy; services on loopback only)"]
    assert _stack.check_report(local, "route") == [
        "would start the LiteLLM gateway on localhost in /var/lib/codestack/cs-1/litellm with aliases coder, reviewer"]
    with pytest.raises(stack_filters.AnsibleFilterError, match="unknown stage 'scale'"):
        stack_filters.stack_would_create(local, "scale")


def _unit(name, exec_start, active):
    content = base64.b64encode(("[Service]\nType=simple\nExecStart=%s\nRestart=on-failure\n" % exec_start).encode())
    return {"item": {"item": name, "content": content.decode()}, "stdout": "active\n" if active else "inactive\n"}


def test_host_conflicts_name_the_other_stacks_running_units():
    results = [_unit("codestack-litellm", "/var/lib/codestack/cs-other/litellm/ctl.sh run", True),
               _unit("codestack-llamacpp", "/var/lib/codestack/cs-gone/llamacpp/ctl.sh run", False)]
    assert stack_filters.stack_host_conflicts(results, ["/var/lib/codestack/cs-1"]) == [
        "unit codestack-litellm runs /var/lib/codestack/cs-other/litellm/ctl.sh"]
    # This stack's own units (default or given directories) and stopped ones are no conflict.
    own = [_unit("codestack-litellm", "/var/lib/codestack/cs-1/litellm/ctl.sh run", True),
           _unit("codestack-llamacpp", "/srv/mine/llama/ctl.sh run", True)]
    assert stack_filters.stack_host_conflicts(own, ["/var/lib/codestack/cs-1", "/srv/mine/llama"]) == []
    # A prefix of another directory is not this stack's directory.
    assert stack_filters.stack_host_conflicts(
        [_unit("codestack-litellm", "/var/lib/codestack/cs-10/litellm/ctl.sh run", True)],
        ["/var/lib/codestack/cs-1"]) == ["unit codestack-litellm runs /var/lib/codestack/cs-10/litellm/ctl.sh"]


def test_plan_storage_prices_the_kept_disks_of_rented_machines():
    plan = {"deployments": [
        {"name": "pod", "billed": {"storage_gb": 40.0},
         "cost_terms": {"scaling": {"mode": "idle_stop", "storage_running_usd_per_gb_month": 0.1,
                                    "storage_stopped_usd_per_gb_month": 0.2,
                                    "container_disk_gb": 20}}},
        {"name": "sls", "billed": {"storage_gb": 0.0},
         "cost_terms": {"scaling": {"mode": "serverless"}}},
        {"name": "old", "cost_terms": {}},
    ]}
    # the container disk (erased at a stop) is billed while the pod runs only
    assert _stack.plan_storage(plan) == {"pod": {"gb": 40.0, "running_gb": 60.0,
                                                 "running_usd_per_gb_hour": round(0.1 / 730, 9),
                                                 "stopped_usd_per_gb_hour": round(0.2 / 730, 9)}}
