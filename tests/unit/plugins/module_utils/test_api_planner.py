"""Per-token APIs and Ollama in the plan: which class of provider wins, and the routing
policy (sensitive work stays local or self-hosted; budget tiers)."""

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    PlanError,
    build_plan,
)

from _planner_helpers import blueprint, intent, task

ROLES = ("architect", "coder", "debugger", "reviewer")
APIS = ["openrouter", "deepseek", "mistral"]
RENTED = ["runpod", "vast"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _plan(catalog, tasks, **constraints):
    return build_plan(blueprint(**constraints), intent(tasks), catalog,
                      generated_at="2026-12-01T00:00:00Z")


def _small():
    return [task(r, "core", 200000, 30000) for r in ROLES]


def _third_party(doc):
    return doc.get("data_policy") == "third_party"


def test_small_job_is_cheapest_on_a_per_token_api(catalog):
    plan = _plan(catalog, _small(), providers=RENTED + APIS)
    assert plan["provider_classes"]["chosen"] == ["per_token_api"]
    classes = plan["provider_classes"]["classes"]
    assert classes["rented_gpu"]["available"] and \
        classes["rented_gpu"]["cost_usd"] > classes["per_token_api"]["cost_usd"]
    assert plan["provider_classes"]["why"].startswith("per_token_api wins: rented_gpu costs")
    total = 0.0
    for dep in plan["deployments"]:
        assert dep["pricing"] == "per_token" and dep["provider"] in APIS
        assert dep["cold_start_s"] == 0 and dep["price_per_hour_usd"] == 0
        assert dep["scaling"]["mode"] == "always_on" and dep["scaling"]["expected_wakes"] == 0
        entry = catalog.api_models[dep["api"]["catalog_id"]]
        assert dep["api"]["litellm_model"] == entry.litellm_model
        assert dep["api"]["key_env"] == catalog.api_providers[entry.provider].key_env
        # tokens x price, recomputed here (rework: the cost model's rule for weaker models)
        params = catalog.cost_model["default"]
        rework = 1 + params.rework_per_point * max(0, params.rework_reference_score
                                                   - entry.score.value)
        tin = sum(plan["roles"][r]["tokens"]["input"] for r in dep["roles"])
        tout = sum(plan["roles"][r]["tokens"]["output"] for r in dep["roles"])
        want = rework * (tin * entry.input_usd_per_mtok + tout * entry.output_usd_per_mtok) / 1e6
        assert dep["cost_usd"] == pytest.approx(want, abs=1e-4)
        total += want
        # an API deployment falls back on what the gateway reaches without provisioning
        assert dep["alternatives"] and all(a["pricing"] in ("per_token", "owned")
                                           for a in dep["alternatives"])
        assert all(a["name"].startswith(dep["name"] + "-alt") for a in dep["alternatives"])
    assert plan["totals"]["cost_usd"] == pytest.approx(total, abs=1e-3)
    # nothing idles on a per-token API: the always-on bound is the same bill
    assert plan["totals"]["always_on_cost_usd"] == pytest.approx(plan["totals"]["cost_usd"])
    assert plan["totals"]["gpu_hours"] == 0


def test_big_job_on_a_deadline_rents_gpus(catalog):
    tasks = [task(r, "core", 60000000, 8000000) for r in ROLES]
    plan = _plan(catalog, tasks, providers=RENTED + APIS, budget_usd=500, deadline_hours=72)
    assert plan["provider_classes"]["chosen"] == ["rented_gpu"]
    assert all(d["provider"] in RENTED for d in plan["deployments"])
    # rented alternatives only: the provisioner walks them
    assert all(a["provider"] in RENTED for d in plan["deployments"] for a in d["alternatives"])
    api = plan["provider_classes"]["classes"]["per_token_api"]
    rented = plan["provider_classes"]["classes"]["rented_gpu"]
    assert api["hours"] > rented["hours"]
    assert "per_token_api is USD" in plan["provider_classes"]["why"]


def test_sensitive_project_is_planned_on_ollama_only(catalog):
    plan = _plan(catalog, _small(), providers=APIS + ["ollama"], sensitive=True)
    assert plan["provider_classes"]["chosen"] == ["owned"]
    assert plan["provider_classes"]["classes"]["per_token_api"] == {"available": False}
    for dep in plan["deployments"]:
        assert dep["provider"] == "ollama" and dep["data_policy"] == "local"
        assert dep["api"]["litellm_model"].startswith("ollama")
        assert not any(_third_party(a) for a in dep["alternatives"])
    assert all(plan["roles"][r]["sensitive"] for r in ROLES)
    assert "constraints.sensitive" in plan["routing"]["coder"]["why"]


def test_sensitive_project_without_local_options_is_refused(catalog):
    with pytest.raises(PlanError, match="role architect .*sensitive.* has no allowed option"):
        _plan(catalog, _small(), providers=APIS, sensitive=True)


def test_sensitive_feature_keeps_only_its_roles_local(catalog):
    bp = blueprint(providers=RENTED + APIS)
    bp["features"][1]["sensitive"] = True
    tasks = _small() + [task("coder", "extra", 10000, 1000)]
    plan = build_plan(bp, intent(tasks), catalog, generated_at="2026-12-01T00:00:00Z")
    assert plan["roles"]["coder"]["sensitive"] and "extra" in plan["routing"]["coder"]["why"]
    assert not plan["roles"]["architect"]["sensitive"]
    by_name = dict((d["name"], d) for d in plan["deployments"])
    coder = by_name[plan["roles"]["coder"]["deployment"]]
    assert coder["provider"] in RENTED
    assert not any(a["provider"] in APIS for a in coder["alternatives"])
    architect = by_name[plan["roles"]["architect"]["deployment"]]
    assert architect["provider"] in APIS   # the rest still takes the cheap route


def test_premium_tier_sets_a_quality_floor(catalog):
    plan = _plan(catalog, _small(), providers=APIS,
                 tiers={"architect": "premium", "coder": "economy"})
    floor = catalog.budget_tiers["premium"].min_quality
    by_name = dict((d["name"], d) for d in plan["deployments"])
    arch = by_name[plan["roles"]["architect"]["deployment"]]
    assert arch["quality_score"] >= floor
    assert all(a["quality_score"] >= floor for a in arch["alternatives"])
    assert plan["roles"]["architect"]["tier"] == "premium"
    assert plan["routing"]["coder"]["tier"] == "economy"


def test_economy_tier_prefers_cost_over_quality(catalog):
    # Qwen2.5-Coder-7B ($0.03/$0.09, 88.4) against Qwen2.5-Coder-32B ($0.07/$0.16, 92.7)
    tasks = [task(r, "core", 5000000, 1000000) for r in ROLES]
    economy = _plan(catalog, tasks, providers=["openrouter"],
                    tiers=dict((r, "economy") for r in ROLES))
    premium = _plan(catalog, tasks, providers=["openrouter"],
                    tiers=dict((r, "premium") for r in ROLES))
    assert economy["totals"]["cost_usd"] < premium["totals"]["cost_usd"]
    assert min(d["quality_score"] for d in premium["deployments"]) >= 88


def test_tiers_come_from_the_catalog(catalog):
    from ansible_collections.llmops.codestack.plugins.module_utils._api_planner import role_policy
    from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
        validate_blueprint,
    )

    class NoTiers(object):
        budget_tiers = {}

    bp = validate_blueprint(blueprint(tiers={"coder": "premium"}))
    with pytest.raises(PlanError, match="constraints.tiers.coder': tier 'premium' is not in"):
        role_policy(bp, intent(_small()), NoTiers())
    plain = role_policy(validate_blueprint(blueprint()), intent(_small()), NoTiers())
    assert all(p["min_quality"] == 0 and p["quality_weight"] == 1 for p in plain.values())
    bundled = role_policy(bp, intent(_small()), catalog)
    assert bundled["coder"]["quality_weight"] == catalog.budget_tiers["premium"].quality_weight


def test_residency_keeps_only_apis_located_there(catalog):
    plan = _plan(catalog, _small(), providers=APIS, residency="eu")
    assert set(d["provider"] for d in plan["deployments"]) == {"mistral"}
    assert all(a["provider"] == "mistral" for d in plan["deployments"]
               for a in d["alternatives"])


def test_ollama_tag_quality_is_the_model_score_minus_its_quantization(catalog):
    plan = _plan(catalog, _small(), providers=["ollama"])
    for dep in plan["deployments"]:
        tag = catalog.ollama_models[dep["api"]["catalog_id"]]
        base = catalog.models[tag.model].score.value
        assert dep["quality_score"] == pytest.approx(
            base - catalog.quantizations[tag.quantization].penalty, abs=0.05)
        assert dep["cost_usd"] == 0 and dep["throughput_source"] == tag.throughput
    # one Ollama host: at most one deployment of the plan uses it
    assert len(plan["deployments"]) == 1


def test_report_says_which_class_wins_and_which_roles_stay_local(catalog):
    from ansible_collections.llmops.codestack.plugins.module_utils._report import render_markdown
    bp = blueprint(providers=RENTED + APIS)
    bp["features"][1]["sensitive"] = True
    plan = build_plan(bp, intent(_small() + [task("coder", "extra", 10000, 1000)]), catalog,
                      generated_at="2026-12-01T00:00:00Z")
    text = render_markdown(plan)
    assert "Provider classes: %s" % plan["provider_classes"]["why"] in text
    assert "Sensitive roles (local or self-hosted only, fallbacks included): coder." in text


def test_every_ollama_tag_of_one_host_is_one_machine(catalog):
    from ansible_collections.llmops.codestack.plugins.module_utils._api_planner import api_options
    from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
        validate_blueprint,
    )
    bp = validate_blueprint(blueprint(providers=["ollama"]))
    options = api_options(catalog, bp.constraints, None, 0)
    assert len(options) == len(catalog.ollama_models) > 1
    assert len(set(o.offer.machine for o in options)) == 1
