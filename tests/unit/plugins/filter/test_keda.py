"""Unit tests of the keda_targets / keda_manifests / keda_gateway_config filters."""

import os
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter import keda

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
import crd_schema  # noqa: E402

PLAN = {
    "stack_id": "codestack-demo",
    "roles": {
        "architect": {"alias": "architect", "deployment": "arch-32b"},
        "coder": {"alias": "coder", "deployment": "coder-7b"},
        "debugger": {"alias": "debugger", "deployment": "coder-7b"},
        "reviewer": {"alias": "reviewer", "deployment": "local-smol"},
    },
    "deployments": [
        {"name": "Coder-7B_AWQ.rtx4090", "provider": "kubernetes", "engine": "vllm",
         "roles": ["coder", "debugger"], "cold_start_s": 180, "max_replicas": 3},
        {"name": "arch-32b", "provider": "kubernetes", "engine": "vllm", "roles": ["architect"],
         "cold_start_s": 420},
        {"name": "local-smol", "provider": "local", "engine": "llamacpp", "roles": ["reviewer"]},
        {"name": "pod-on-runpod", "provider": "runpod", "engine": "vllm", "roles": ["reviewer"]},
    ],
}


@pytest.fixture(scope="module")
def schemas():
    return crd_schema.load_schemas()


def by_name(targets):
    return {t["name"]: t for t in targets}


def test_plan_selects_vllm_deployments_on_kubernetes_providers():
    targets = by_name(keda.keda_targets(PLAN))
    assert sorted(targets) == ["arch-32b", "coder-7b-awq-rtx4090"]
    coder = targets["coder-7b-awq-rtx4090"]
    assert coder["aliases"] == ["coder", "debugger"]
    assert (coder["min_replicas"], coder["max_replicas"]) == (0, 3)
    assert coder["host"] == "coder-7b-awq-rtx4090.codestack.svc.cluster.local"
    assert targets["arch-32b"]["max_replicas"] == 1  # role default when the plan says nothing


@pytest.mark.parametrize("cold_start, margin, fallback, wait, timeout, retries", [
    (180, 1.5, None, 270, 270 + 600 + 5, 2),
    (100, 1.0, None, 100, 100 + 600 + 5, 2),
    (7, 1.5, None, 11, 11 + 600 + 5, 2),            # rounded up, never down
    (420, 1.5, {"group": "cheap", "after_s": 30}, 30, 30 + 600 + 5, 0),
    (420, 1.5, {"group": "cheap"}, keda.FALLBACK_AFTER_S, keda.FALLBACK_AFTER_S + 605, 0),
])
def test_cold_start_budget(cold_start, margin, fallback, wait, timeout, retries):
    (target,) = keda.keda_targets({}, [{"name": "m", "aliases": ["coder"], "cold_start_s": cold_start,
                                        "fallback": fallback}],
                                  {"cold_start_margin": margin})
    assert target["wake_s"] >= cold_start * margin
    assert target["condition_wait_s"] == wait
    assert target["gateway_timeout_s"] == timeout
    assert target["gateway_retries"] == retries


def test_overrides_merge_by_name_and_add_targets():
    targets = by_name(keda.keda_targets(PLAN, [
        {"name": "arch-32b", "namespace": "gpu", "port": 8080, "max_replicas": 2},
        {"name": "extra", "aliases": ["coder-big"], "served_model_name": "qwen"},
    ]))
    assert targets["arch-32b"]["namespace"] == "gpu"
    assert targets["arch-32b"]["cold_start_s"] == 420  # kept from the plan
    assert targets["extra"]["metric_model_name"] == "qwen"
    assert len(targets) == 3


@pytest.mark.parametrize("targets, settings, message", [
    ([{"name": "m", "aliases": ["a"], "min_replicas": 3, "max_replicas": 2}], {}, "min_replicas 3 > max_replicas 2"),
    ([{"name": "Bad_Name", "aliases": ["a"]}], {}, "DNS-1123"),
    ([{"name": "m"}], {}, "no gateway alias"),
    ([{"name": "m", "aliases": ["a"], "max_replicas": 0}], {}, "max_replicas must be >= 1"),
    ([{"name": "m", "aliases": ["a"], "port": 70000}], {}, "port must be <= 65535"),
    ([{"name": "m", "aliases": ["a"], "colds_start_s": 3}], {}, "unknown keys colds_start_s"),
    ([{"name": "m", "aliases": ["a"], "host": "h"}, {"name": "n", "aliases": ["b"], "host": "h"}], {},
     "already routes to target m"),
    ([{"name": "m", "aliases": ["a"], "fallback": {"group": "a"}}], {}, "target's own alias"),
    ([{"name": "m", "aliases": ["a"], "fallback": {"after_s": 5}}], {}, "fallback needs 'group'"),
    ([{"name": "m", "aliases": ["a"], "fallback": {"litellm_params": {}}}], {}, "needs at least 'model'"),
    ([{"aliases": ["a"]}], {}, "needs a 'name'"),
    ([{"name": "m", "aliases": ["a"]}], {"cold_start_margin": 0.5}, "cold_start_margin"),
    ([{"name": "m", "aliases": ["a"]}], {"bogus": 1}, "unknown setting"),
])
def test_bad_input_is_one_clear_error(targets, settings, message):
    with pytest.raises(AnsibleFilterError, match=message):
        keda.keda_targets({}, targets, settings)


def test_all_problems_are_reported_together():
    with pytest.raises(AnsibleFilterError) as err:
        keda.keda_targets({}, [{"name": "m"}, {"name": "n", "aliases": ["x"], "min_replicas": 5}])
    assert "target m" in str(err.value) and "target n" in str(err.value)


def test_manifests_fit_the_crds_and_carry_what_matters(schemas):
    targets = keda.keda_targets(PLAN)
    objects = keda.keda_manifests(targets, {"stack_id": "codestack-demo"})
    kinds = [o["kind"] for o in objects]
    assert kinds == ["Namespace", "HTTPScaledObject", "ScaledObject", "HTTPScaledObject", "ScaledObject"]
    for obj in objects[1:]:
        crd_schema.validate(obj, schemas)
        crd_schema.check_cel_rules(obj)
        assert obj["metadata"]["labels"]["codestack/stack"] == "codestack-demo"
    hso, so = objects[1], objects[2]
    assert hso["metadata"]["annotations"][keda.SKIP_SO_ANNOTATION] == "true"
    assert hso["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "coder-7b-awq-rtx4090",
                                             "service": "coder-7b-awq-rtx4090", "port": 8000}
    assert hso["spec"]["replicas"] == {"min": 0, "max": 3}
    assert hso["spec"]["timeouts"] == {"conditionWait": "270s", "responseHeader": "600s"}
    assert hso["spec"]["scalingMetric"] == {"concurrency": {"targetValue": 16}}
    # one ScaledObject per workload, named apart from the HTTPScaledObject
    assert so["metadata"]["name"] != hso["metadata"]["name"]
    assert so["spec"]["scaleTargetRef"]["name"] == hso["spec"]["scaleTargetRef"]["name"]
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (0, 3)
    http, prom = so["spec"]["triggers"]
    assert http == {"type": "external-push", "name": "http-requests", "metadata": {
        "httpScaledObject": hso["metadata"]["name"],
        "scalerAddress": "keda-add-ons-http-external-scaler.keda:9090"}}
    assert prom["type"] == "prometheus"
    assert prom["metadata"]["query"] == \
        'sum(vllm:num_requests_waiting{model_name="coder",namespace="codestack"})'
    assert prom["metadata"]["threshold"] == "5"
    assert all(isinstance(v, str) for v in prom["metadata"].values())


def test_prometheus_bearer_auth_adds_a_trigger_authentication(schemas):
    settings = {"prometheus_auth_secret": {"name": "prom-token", "key": "token"},
                "prometheus_namespace_label": ""}
    targets = keda.keda_targets({}, [{"name": "m", "aliases": ["a"]}], settings)
    objects = keda.keda_manifests(targets, settings, namespaces=False)
    assert [o["kind"] for o in objects] == ["TriggerAuthentication", "HTTPScaledObject", "ScaledObject"]
    for obj in objects:
        crd_schema.validate(obj, schemas)
    prom = objects[2]["spec"]["triggers"][1]
    assert prom["authenticationRef"] == {"name": objects[0]["metadata"]["name"]}
    assert prom["metadata"]["authModes"] == "bearer"
    assert prom["metadata"]["query"] == 'sum(vllm:num_requests_waiting{model_name="a"})'


def test_gateway_fragment_routes_every_alias_through_the_interceptor():
    targets = keda.keda_targets(PLAN, [{"name": "arch-32b", "fallback": {
        "litellm_params": {"model": "openai/cheap", "api_base": "https://example.invalid/v1"},
        "after_s": 25}}])
    config = keda.keda_gateway_config(targets, {"backend_api_key": "os.environ/VLLM_API_KEY"})
    routes = {m["model_name"]: m for m in config["model_list"]}
    assert sorted(routes) == ["architect", "architect-fallback", "coder", "debugger"]
    coder = routes["coder"]["litellm_params"]
    assert coder["api_base"] == "http://keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local:8080/v1"
    assert coder["extra_headers"] == {"Host": "coder-7b-awq-rtx4090.codestack.svc.cluster.local"}
    assert coder["model"] == "hosted_vllm/coder"
    # one vLLM deployment serves one name: the debugger alias asks for it too
    assert routes["debugger"]["litellm_params"]["model"] == "hosted_vllm/coder"
    assert coder["timeout"] == coder["stream_timeout"] == 875
    assert coder["num_retries"] == 2
    assert coder["api_key"] == "os.environ/VLLM_API_KEY"
    arch = routes["architect"]["litellm_params"]
    assert arch["num_retries"] == 0 and arch["timeout"] == 25 + 605
    assert routes["architect-fallback"]["litellm_params"]["model"] == "openai/cheap"
    assert config["router_settings"] == {"fallbacks": [{"architect": ["architect-fallback"]}]}


def test_gateway_fragment_without_fallback_has_no_router_settings():
    targets = keda.keda_targets({}, [{"name": "m", "aliases": ["a"]}])
    config = keda.keda_gateway_config(targets, {"interceptor_url": "http://127.0.0.1:9/"})
    assert config["router_settings"] == {}
    assert config["model_list"][0]["litellm_params"]["api_base"] == "http://127.0.0.1:9/v1"
    assert "api_key" not in config["model_list"][0]["litellm_params"]


@pytest.mark.parametrize("text, label", [
    ("Coder-7B_AWQ.rtx4090", "coder-7b-awq-rtx4090"),
    ("x" * 70, "x" * 63),
    ("--a--", "a"),
])
def test_dns_label(text, label):
    assert keda.dns_label(text) == label


def test_the_vllm_server_fact_is_a_target():
    fact = {"name": "vllm-coder", "namespace": "llm", "deployment": "vllm-coder",
            "service": "vllm-coder", "port": 8000, "port_name": "http", "model": "coder",
            "labels": {}, "selector": {}, "api_key_secret": "", "objects": [], "manifests": [],
            "api_base": "http://vllm-coder.llm.svc.cluster.local:8000/v1"}
    (target,) = keda.keda_targets({}, [dict(fact, max_replicas=2, aliases=["coder", "debugger"])])
    assert (target["name"], target["namespace"], target["service"]) == ("vllm-coder", "llm", "vllm-coder")
    assert target["aliases"] == ["coder", "debugger"] and target["metric_model_name"] == "coder"
    assert target["max_replicas"] == 2
