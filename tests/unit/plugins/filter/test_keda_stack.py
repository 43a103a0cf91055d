"""A plan's deployments on a user's cluster through the stages: keda_stack_deployments,
keda_stack_record, the route (_stack.stack_endpoints -> litellm_config) and teardown."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter import keda
from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config
from ansible_collections.llmops.codestack.plugins.filter.teardown import (
    teardown_report,
    teardown_targets,
)
from ansible_collections.llmops.codestack.plugins.module_utils import _stack

PLACEMENT = {"cluster": "homelab", "context": "home", "namespace": "llm",
             "interceptor_url": "http://192.0.2.10:8080", "node_pool": "rtx4090",
             "node_selector": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"},
             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}], "max_replicas": 2}
PLAN = {
    "stack_id": "codestack-k8s",
    "roles": {"architect": {"alias": "architect", "deployment": "Coder-7B.rtx4090"},
              "coder": {"alias": "coder", "deployment": "Coder-7B.rtx4090"},
              "debugger": {"alias": "debugger", "deployment": "pod"},
              "reviewer": {"alias": "reviewer", "deployment": "pod"}},
    "deployments": [
        {"name": "Coder-7B.rtx4090", "provider": "kubernetes", "engine": "vllm",
         "roles": ["architect", "coder"], "cold_start_s": 292, "price_per_hour_usd": 0.05,
         "gpu": {"count": 2, "name": "RTX 4090"},
         "model": {"hf_repo": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "revision": "abc",
                   "vllm_quantization": "awq_marlin", "max_model_len": 32768},
         "serving": {"max_model_len": 16384, "max_num_seqs": 5},
         "scaling": {"mode": "keda", "idle_timeout_s": 420, "expected_wakes": 3},
         "kubernetes": PLACEMENT},
        {"name": "pod", "provider": "runpod", "engine": "vllm", "roles": ["debugger", "reviewer"],
         "model": {"hf_repo": "x/y"}, "price_per_hour_usd": 0.6},
    ],
}


def _cluster():
    clusters = keda.keda_stack_deployments(PLAN, "/srv/stack/")
    assert len(clusters) == 1
    return clusters[0]


def test_only_cluster_deployments_with_the_plans_serving_settings():
    cluster = _cluster()
    assert {k: cluster[k] for k in ("cluster", "context", "interceptor_url", "render_dir")} == {
        "cluster": "homelab", "context": "home", "interceptor_url": "http://192.0.2.10:8080",
        "render_dir": "/srv/stack/kubernetes/homelab"}
    (dep,) = cluster["deployments"]
    assert dep["deployment"] == "Coder-7B.rtx4090" and dep["name"] == "coder-7b-rtx4090"
    assert dep["vllm"] == {
        "name": "coder-7b-rtx4090", "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
        "revision": "abc", "served_model_name": "architect", "quantization": "awq_marlin",
        "max_model_len": 16384, "max_num_seqs": 5, "tensor_parallel_size": 2,
        "namespace": "llm", "node_selector": PLACEMENT["node_selector"],
        "tolerations": PLACEMENT["tolerations"], "manifest_dir": "/srv/stack/kubernetes/homelab"}
    assert dep["target"] == {
        "name": "coder-7b-rtx4090", "namespace": "llm", "service": "coder-7b-rtx4090",
        "aliases": ["architect", "coder"], "served_model_name": "architect",
        "cold_start_s": 292, "max_replicas": 2, "min_replicas": 0, "scaledown_period_s": 420}


def test_a_deployment_that_cannot_run_there_is_named():
    plan = dict(PLAN, deployments=[dict(PLAN["deployments"][0], engine="llamacpp"),
                                   dict(PLAN["deployments"][0], name="b", model={})])
    with pytest.raises(AnsibleFilterError) as err:
        keda.keda_stack_deployments(plan, "/s")
    assert "Coder-7B.rtx4090: engine llamacpp" in str(err.value)
    assert "b: needs model.hf_repo" in str(err.value)


def test_keda_targets_from_a_plan_take_placement_and_idle_timeout():
    (target,) = keda.keda_targets(PLAN)
    assert (target["namespace"], target["max_replicas"], target["scaledown_period_s"]) == \
        ("llm", 2, 420)


def _record(applied=False):
    cluster = _cluster()
    dep = cluster["deployments"][0]
    settings = {"interceptor_url": cluster["interceptor_url"], "stack_id": "codestack-k8s"}
    targets = keda.keda_targets({}, [dep["target"]], settings)
    manifests = keda.keda_manifests(targets, settings)
    gateway = keda.keda_gateway_config(targets, settings)
    vllm_fact = {"deployment": dep["name"], "api_key_secret": dep["name"] + "-api-key",
                 "objects": [{"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": dep["name"], "namespace": "llm"}},
                             {"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": dep["name"], "namespace": "llm"}}]}
    return keda.keda_stack_record(dep, vllm_fact, targets, gateway, manifests, cluster, applied)


def test_the_record_says_how_to_reach_it_and_what_to_delete():
    rec = _record()
    assert rec["endpoint_url"] == "http://192.0.2.10:8080/v1"
    assert rec["host_header"] == "coder-7b-rtx4090.llm.svc.cluster.local"
    assert rec["model"] == "architect" and rec["applied"] is False
    assert rec["gateway_timeout_s"] == 438 + 600 + 5 and rec["gateway_retries"] == 2
    assert rec["idle_timeout_s"] == 420 and rec["max_replicas"] == 2
    assert [(o["kind"], o["name"]) for o in rec["objects"]] == [
        ("ScaledObject", "coder-7b-rtx4090-scaler"), ("HTTPScaledObject", "coder-7b-rtx4090"),
        ("Deployment", "coder-7b-rtx4090"), ("Service", "coder-7b-rtx4090"),
        ("Secret", "coder-7b-rtx4090-api-key")]
    assert all(o["namespace"] == "llm" for o in rec["objects"])


def _state(applied=False):
    return {"stack_id": "codestack-k8s", "resources": [
        {"provider": "kubernetes", "kind": "deployment", "id": "homelab/llm/coder-7b-rtx4090",
         "name": "Coder-7B.rtx4090", "cost_per_hour": 0, "created_at": "2026-12-01T10:00:00Z",
         "attributes": _record(applied)},
        {"provider": "runpod", "kind": "pod", "id": "p1", "name": "pod",
         "attributes": {"deployment": "pod", "endpoint_url": "https://p1-8000.proxy.runpod.net/v1",
                        "model": "debugger"}}]}


def test_cluster_deployments_are_neither_local_nor_rented():
    local, rented = _stack.split_deployments(PLAN)
    assert local == [] and [d["name"] for d in rented] == ["pod"]
    assert [d["name"] for d in _stack.kubernetes_deployments(PLAN)] == ["Coder-7B.rtx4090"]
    problems = _stack.build_problems(PLAN, {"RUNPOD_API_KEY": "k"})
    assert problems == []


def test_the_gateway_routes_through_the_interceptor_with_its_host_header():
    endpoints = _stack.stack_endpoints(PLAN, _state(), vllm_api_key="sk-vllm")
    ep = endpoints["Coder-7B.rtx4090"]
    assert ep == {"api_base": "http://192.0.2.10:8080/v1", "api_key": "sk-vllm",
                  "model": "architect",
                  "extra_headers": {"Host": "coder-7b-rtx4090.llm.svc.cluster.local"},
                  "timeout": 1043, "num_retries": 2}
    config = litellm_config(PLAN, endpoints)
    routes = dict((m["model_name"], m["litellm_params"]) for m in config["model_list"])
    for alias in ("architect", "coder"):
        assert routes[alias]["api_base"] == "http://192.0.2.10:8080/v1"
        assert routes[alias]["model"] == "hosted_vllm/architect"
        assert routes[alias]["extra_headers"] == {"Host": "coder-7b-rtx4090.llm.svc.cluster.local"}
        assert routes[alias]["timeout"] == routes[alias]["stream_timeout"] == 1043
        assert routes[alias]["num_retries"] == 2
    assert "extra_headers" not in routes["debugger"]


def test_a_cluster_deployment_not_deployed_yet_is_named():
    state = _state()
    state["resources"] = state["resources"][1:]
    with pytest.raises(_stack.StackError, match="Coder-7B.rtx4090 .not deployed to its cluster yet"):
        _stack.stack_endpoints(PLAN, state)


def test_rendered_only_aliases_are_not_asked():
    assert _stack.rendered_only_aliases(PLAN, _state(False)) == {
        "architect": "/srv/stack/kubernetes/homelab", "coder": "/srv/stack/kubernetes/homelab"}
    assert _stack.rendered_only_aliases(PLAN, _state(True)) == {}


def test_scaling_report_and_check_run_name_the_cluster():
    rows = dict((r["deployment"], r) for r in _stack.scaling_report(PLAN, _state(True)))
    assert rows["Coder-7B.rtx4090"]["mode"] == "keda"
    assert "KEDA scales it to zero after 420s" in rows["Coder-7B.rtx4090"]["idle_billing"]
    rows = dict((r["deployment"], r) for r in _stack.scaling_report(PLAN, _state(False)))
    assert "rendered only" in rows["Coder-7B.rtx4090"]["idle_billing"]
    lines = _stack.check_report(PLAN, "provision")
    assert any("would deploy Coder-7B.rtx4090 to cluster homelab, namespace llm" in line
               for line in lines)
    summary = _stack.summary(PLAN, _state(False), "/srv/stack")
    assert any("Coder-7B.rtx4090 on cluster homelab, namespace llm (rendered only" in line
               for line in summary)


def test_teardown_keeps_a_cluster_deployment_it_did_not_touch():
    targets = teardown_targets(_state())
    kube = [t for t in targets if t["provider"] == "kubernetes"]
    report = teardown_report(kube, [], "stop", now="2026-12-01T11:00:00Z")
    assert report["resources"][0]["outcome"] == "kept"
    done = [{"item": _state()["resources"][0], "changed": True}]
    report = teardown_report(kube, done, "destroy", now="2026-12-01T11:00:00Z")
    assert report["resources"][0]["outcome"] == "removed"
    assert report["resources"][0]["usd"] == 0.0
