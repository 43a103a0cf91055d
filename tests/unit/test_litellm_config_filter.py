"""litellm_config filter: plan + endpoints -> LiteLLM proxy config."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config


def dep(name, price, roles, engine="vllm", pricing="on_demand", cold=180, alternatives=()):
    return {"name": name, "provider": "runpod", "pricing": pricing, "price_per_hour_usd": price,
            "engine": engine, "roles": list(roles), "cold_start_s": cold,
            "alternatives": list(alternatives)}


def plan():
    serverless = dep("coder-serverless", 1.5, ["coder"], pricing="serverless", cold=30)
    spot = dep("coder-spot", 0.2, ["coder"], pricing="spot")
    return {
        "roles": {
            "architect": {"alias": "architect", "deployment": "big", "cost_usd": 2.0},
            "coder": {"alias": "coder", "deployment": "mid", "cost_usd": 1.0},
            "debugger": {"alias": "debugger", "deployment": "mid", "cost_usd": 0.5},
            "reviewer": {"alias": "reviewer", "deployment": "small", "cost_usd": 0.25},
        },
        "deployments": [
            dep("big", 2.0, ["architect"]),
            dep("mid", 0.5, ["coder", "debugger"], alternatives=[spot, serverless]),
            dep("small", 0.1, ["reviewer"], engine="llamacpp", cold=5),
        ],
        "totals": {"cost_usd": 11.0, "cost_eur": 10.0},
        "checks": {"budget": {"limit": 20, "currency": "EUR"}},
    }


ENDPOINTS = {
    "big": {"api_base": "http://big/v1", "api_key": "os.environ/K_BIG"},
    "mid": {"api_base": "http://mid/v1", "api_key": "os.environ/K_MID", "model": "qwen-coder"},
    "small": {"api_base": "http://small/v1", "api_key": "os.environ/K_SMALL", "model": "smollm2"},
    "coder-serverless": {"api_base": "http://sls/v1", "api_key": "os.environ/K_SLS"},
}


def groups(config):
    return dict((r["model_name"], r) for r in config["model_list"])


def test_one_group_per_role_alias_plus_intent():
    config = litellm_config(plan(), ENDPOINTS)
    by_name = groups(config)
    assert set(by_name) == {"architect", "coder", "debugger", "reviewer", "intent", "coder-alt1",
                            "debugger-alt1"}
    assert by_name["coder"]["litellm_params"]["model"] == "hosted_vllm/qwen-coder"
    assert by_name["architect"]["litellm_params"]["model"] == "hosted_vllm/architect"
    assert by_name["reviewer"]["litellm_params"]["model"] == "openai/smollm2"
    # intent goes to the cheapest served deployment
    assert by_name["intent"]["litellm_params"]["api_base"] == "http://small/v1"
    assert config["litellm_settings"]["callbacks"] == ["prometheus"]
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_fallbacks_serverless_alternatives_then_cheaper_groups():
    config = litellm_config(plan(), ENDPOINTS)
    fallbacks = dict(next(iter(f.items())) for f in config["router_settings"]["fallbacks"])
    # the spot alternative has no endpoint: skipped
    assert fallbacks["coder"] == ["coder-alt1", "reviewer"]
    assert fallbacks["architect"] == ["coder", "debugger", "reviewer"]
    assert "reviewer" not in fallbacks
    assert groups(config)["coder-alt1"]["litellm_params"]["api_base"] == "http://sls/v1"


def test_timeouts_cover_cold_starts_and_prices_per_second():
    config = litellm_config(plan(), ENDPOINTS, settings={"request_timeout": 300})
    coder = groups(config)["coder"]["litellm_params"]
    assert coder["timeout"] == 480 and coder["stream_timeout"] == 480
    assert coder["input_cost_per_second"] == pytest.approx(0.5 / 3600)
    # deployment budget: planned cost of coder + debugger x 1.2
    assert coder["max_budget"] == pytest.approx(1.8)
    assert config["router_settings"]["timeout"] == 480


def test_budget_converted_with_the_plans_rate_or_overridden():
    assert litellm_config(plan(), ENDPOINTS)["litellm_settings"]["max_budget"] == pytest.approx(22.0)
    config = litellm_config(plan(), ENDPOINTS, settings={"max_budget_usd": "5", "database": "True"})
    assert config["litellm_settings"]["max_budget"] == 5.0
    assert config["general_settings"]["store_model_in_db"] is True


def test_custom_auth_only_when_asked():
    assert "custom_auth" not in litellm_config(plan(), ENDPOINTS, settings={"custom_auth": ""})["general_settings"]
    general = litellm_config(plan(), ENDPOINTS, settings={"custom_auth": "codestack_auth.user_api_key_auth"})[
        "general_settings"]
    assert general == {"master_key": "os.environ/LITELLM_MASTER_KEY", "custom_auth": "codestack_auth.user_api_key_auth"}


def test_explicit_fallbacks_and_intent():
    config = litellm_config(plan(), ENDPOINTS,
                            intent={"api_base": "http://i/v1", "model": "tiny"},
                            settings={"fallbacks": {"coder": ["architect"], "intent": ["reviewer"]}})
    fallbacks = list(config["router_settings"]["fallbacks"])
    assert {"coder": ["architect"]} in fallbacks and {"intent": ["reviewer"]} in fallbacks
    assert groups(config)["intent"]["litellm_params"]["model"] == "openai/tiny"


@pytest.mark.parametrize("endpoints,message", [
    ({"big": ENDPOINTS["big"]}, "no endpoint for deployment mid"),
])
def test_missing_endpoint_is_one_clear_error(endpoints, message):
    with pytest.raises(AnsibleFilterError, match=message):
        litellm_config(plan(), endpoints)


def test_unknown_deployment():
    bad = plan()
    bad["roles"]["coder"]["deployment"] = "nope"
    with pytest.raises(AnsibleFilterError, match="unknown deployment 'nope'"):
        litellm_config(bad, ENDPOINTS)


def test_a_route_to_a_server_with_its_own_tls_trusts_its_authority_alone():
    endpoints = dict(ENDPOINTS)
    endpoints["big"] = dict(ENDPOINTS["big"], api_base="https://203.0.113.7:40011/v1",
                            ssl_verify="/srv/litellm/ca/big.pem")
    config = litellm_config(plan(), endpoints)
    routes = dict((m["model_info"]["id"], m["litellm_params"]) for m in config["model_list"])
    assert routes["architect--big"]["ssl_verify"] == "/srv/litellm/ca/big.pem"
    assert "ssl_verify" not in routes["coder--mid"]   # the others keep the system store


@pytest.mark.parametrize("flag, callbacks", [(True, ["prometheus", "codestack_spend.spend_logger"]),
                                             ("true", ["prometheus", "codestack_spend.spend_logger"]),
                                             (False, ["prometheus"]), ("False", ["prometheus"])])
def test_spend_log_adds_the_custom_logger(flag, callbacks):
    config = litellm_config(plan(), ENDPOINTS, settings={"spend_log": flag})
    assert config["litellm_settings"]["callbacks"] == callbacks
