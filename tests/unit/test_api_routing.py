"""The gateway config for per-token APIs and Ollama, and the routing policy at the gateway:
plans built by the planner, endpoints by stack_endpoints, config by litellm_config."""

import os
import sys

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config
from ansible_collections.llmops.codestack.plugins.module_utils import _stack
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "plugins", "module_utils"))
from _planner_helpers import blueprint, intent, task  # noqa: E402

ROLES = ("architect", "coder", "debugger", "reviewer")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _state(plan):
    """Every rented deployment has come up (as the provisioner records it)."""
    _local, rented = _stack.split_deployments(plan)
    return {"resources": [{"id": "pod-%d" % i, "provider": d["provider"], "kind": "pod",
                           "name": d["name"],
                           "attributes": {"deployment": d["name"], "model": d["name"],
                                          "endpoint_url": "https://pod-%d.example/v1" % i}}
                          for i, d in enumerate(rented)]}


def _mixed_plan(catalog):
    bp = blueprint(providers=["runpod", "vast", "openrouter", "deepseek", "mistral"])
    bp["features"][1]["sensitive"] = True
    tasks = [task(r, "core", 200000, 30000) for r in ROLES] + [task("coder", "extra", 10000, 1000)]
    return build_plan(bp, intent(tasks), catalog, generated_at="2026-12-01T00:00:00Z")


def _third_party_groups(config):
    return set(r["model_name"] for r in config["model_list"]
               if r["model_info"].get("data_policy") == "third_party")


def test_api_routes_use_litellm_providers_and_key_references(catalog):
    plan = _mixed_plan(catalog)
    endpoints = _stack.stack_endpoints(plan, _state(plan))
    config = litellm_config(plan, endpoints)
    by_name = dict((r["model_name"], r) for r in config["model_list"])
    arch_dep = [d for d in plan["deployments"] if d["name"] == plan["roles"]["architect"]["deployment"]][0]
    params = by_name["architect"]["litellm_params"]
    assert params["model"] == arch_dep["api"]["litellm_model"]
    assert params["model"].split("/")[0] in ("openrouter", "deepseek", "mistral")
    assert params["api_base"] == arch_dep["api"]["api_base"]
    assert params["api_key"] == "os.environ/%s" % arch_dep["api"]["key_env"]
    assert params["input_cost_per_token"] == pytest.approx(
        arch_dep["price_per_mtok_usd"]["input"] / 1e6)
    assert params["output_cost_per_token"] == pytest.approx(
        arch_dep["price_per_mtok_usd"]["output"] / 1e6)
    # the API alternatives are routed as <alias>-alt<N> groups, in the plan's order
    chain = [f for f in config["router_settings"]["fallbacks"] if "architect" in f][0]["architect"]
    alt_groups = ["architect-alt%d" % i for i in range(1, len(arch_dep["alternatives"]) + 1)]
    assert chain[:len(arch_dep["alternatives"])] == alt_groups
    for group in chain[:len(arch_dep["alternatives"])]:
        assert by_name[group]["litellm_params"]["api_key"].startswith("os.environ/")
    # no key value anywhere in the config
    assert "sk-" not in repr(config["model_list"])
    assert _stack.api_key_envs(plan) == sorted(set(
        a["api"]["key_env"] for d in _stack.api_deployments(plan)
        for a in [d] + d["alternatives"] if a.get("api")))


def test_sensitive_role_never_falls_back_to_a_third_party_group(catalog):
    plan = _mixed_plan(catalog)
    assert plan["roles"]["coder"]["sensitive"]
    config = litellm_config(plan, _stack.stack_endpoints(plan, _state(plan)))
    third = _third_party_groups(config)
    assert third   # the non-sensitive roles do use APIs
    coder_chain = [f for f in config["router_settings"]["fallbacks"] if "coder" in f]
    assert "coder" not in third
    for entry in coder_chain:
        assert not set(entry["coder"]) & third, entry
    # the intent group reads the blueprint: not on a third-party API either
    assert "intent" not in third
    intent_route = [r for r in config["model_list"] if r["model_name"] == "intent"][0]
    assert not intent_route["litellm_params"]["model"].startswith(("openrouter/", "deepseek/", "mistral/"))


def test_a_sensitive_role_on_a_third_party_plan_is_refused():
    plan = {"roles": {"coder": {"alias": "coder", "deployment": "api", "sensitive": True}},
            "deployments": [{"name": "api", "provider": "openrouter", "data_policy": "third_party",
                             "api": {"litellm_model": "openrouter/x", "api_base": "http://x"},
                             "roles": ["coder"], "alternatives": []}]}
    with pytest.raises(AnsibleFilterError, match="role coder is sensitive"):
        litellm_config(plan, {"api": {"api_base": "http://x", "api_key": "os.environ/K"}})


def test_sensitive_project_routes_to_ollama(catalog):
    bp = blueprint(providers=["openrouter", "mistral", "ollama"], sensitive=True)
    plan = build_plan(bp, intent([task(r, "core", 20000, 3000) for r in ROLES]), catalog,
                      generated_at="2026-12-01T00:00:00Z")
    endpoints = _stack.stack_endpoints(plan, {"resources": []})
    config = litellm_config(plan, endpoints)
    assert not _third_party_groups(config)
    for route in config["model_list"]:
        assert route["litellm_params"]["model"].startswith("ollama_chat/")
        assert route["litellm_params"]["api_base"] == catalog.api_providers["ollama"].api_base
        assert route["litellm_params"]["api_key"] == "none"
        assert "input_cost_per_token" not in route["litellm_params"]
        assert route["litellm_params"]["num_ctx"] >= 8192
    assert _stack.api_key_envs(plan) == []


def test_api_deployments_are_neither_local_nor_rented(catalog):
    plan = _mixed_plan(catalog)
    local, rented = _stack.split_deployments(plan)
    apis = _stack.api_deployments(plan)
    assert apis and not local
    assert not set(d["name"] for d in apis) & set(d["name"] for d in rented)
    assert all(d["provider"] in ("runpod", "vast") for d in rented)


def test_build_needs_the_api_keys(catalog):
    plan = _mixed_plan(catalog)
    names = _stack.api_key_envs(plan)
    primaries = set(d["api"]["key_env"] for d in _stack.api_deployments(plan))
    problems = _stack.build_problems(plan, {"RUNPOD_API_KEY": "k", "VAST_API_KEY": "k"})
    # a primary route without its key stops the build; an alternative's only drops it
    assert len(problems) == 1 and all(n in problems[0] for n in primaries)
    environ = dict((n, "k") for n in names + ["RUNPOD_API_KEY", "VAST_API_KEY"])
    assert _stack.build_problems(plan, environ) == []
    keyed = _stack.keyed_providers({"OPENROUTER_API_KEY": "k"})
    assert keyed[:2] == ["local", "ollama"] and "openrouter" in keyed and "mistral" not in keyed
