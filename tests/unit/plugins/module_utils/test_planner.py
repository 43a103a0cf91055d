"""Planner: role assignment, sharing, checks, Pareto set and trade-offs."""

import os

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import load_blueprint
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    PlanError,
    build_plan,
)

from _planner_helpers import BLUEPRINTS, blueprint, intent, task

ROLES = ["architect", "coder", "debugger", "reviewer"]
NOW = "2026-11-22T08:00:00Z"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _plan(catalog, bp, it=None, **options):
    options.setdefault("generated_at", NOW)
    return build_plan(bp, it or estimate(bp, catalog), catalog, **options)


def _example(catalog, name):
    bp = load_blueprint(os.path.join(BLUEPRINTS, name))
    return _plan(catalog, bp)


def test_plan_has_the_stable_fields(catalog):
    plan = _example(catalog, "medium-webapp.yml")
    assert plan["schema_version"] == 1
    assert plan["stack_id"] == "codestack-shop-webapp"
    assert plan["intent"]["source"] == "deterministic"
    assert sorted(plan["roles"]) == ROLES
    names = [d["name"] for d in plan["deployments"]]
    assert len(names) == len(set(names))
    for role, doc in plan["roles"].items():
        assert doc["alias"] == role
        assert doc["deployment"] in names
    for dep in plan["deployments"]:
        for key in ("provider", "offer_id", "pricing", "gpu", "region", "price_per_hour_usd",
                    "model", "engine", "roles", "throughput_tok_s", "cold_start_s",
                    "alternatives"):
            assert key in dep, key
        assert dep["provider"] in ("runpod", "vast")
        assert {"key", "hf_repo", "quantization", "max_model_len"} <= set(dep["model"])
        assert dep["offer_id"] in catalog.offers
    assert set(plan["checks"]) == {"budget", "deadline", "quality"}
    assert set(plan["totals"]) >= {"hours", "cost_usd", "cost_eur"}
    assert plan["fits"] and plan["tradeoffs"] == []


def test_embedded_default_plans_onto_this_machine(catalog):
    plan = _example(catalog, "small-cli.yml")
    assert len(plan["deployments"]) == 1
    dep = plan["deployments"][0]
    assert dep["provider"] == "local" and dep["pricing"] == "owned"
    assert dep["engine"] == "llamacpp"
    assert dep["model"]["key"] == "smollm2-135m" and dep["model"]["quantization"] == "q4_1"
    assert dep["throughput_source"] == "measured"
    assert sorted(dep["roles"]) == ROLES
    assert plan["totals"]["cost_usd"] == 0
    assert plan["fits"]


def test_medium_roles_favour_quality_or_volume(catalog):
    plan = _example(catalog, "medium-webapp.yml")
    score = dict((r, plan["roles"][r]["quality_score"]) for r in ROLES)
    assert score["architect"] >= score["coder"]
    assert score["reviewer"] >= score["coder"]
    assert min(score.values()) >= catalog.cost_model["default"].quality_thresholds["standard"]


def test_large_platform_does_not_fit_and_shows_tradeoffs(catalog):
    plan = _example(catalog, "large-platform.yml")
    assert not plan["fits"]
    assert not plan["checks"]["budget"]["ok"]
    assert plan["checks"]["budget"]["currency"] == "EUR"
    kinds = [t["kind"] for t in plan["tradeoffs"]]
    assert "drop_features" in kinds and "cheaper_gpu" in kinds and "faster_gpu" in kinds
    drop = plan["tradeoffs"][kinds.index("drop_features")]
    priorities = dict((f["name"], f["priority"]) for f in plan["blueprint"]["features"])
    assert drop["features"] and all(priorities[f] != "must" for f in drop["features"])
    # could features go before should features
    ranks = [("could", "should").index(priorities[f]) for f in drop["features"]]
    assert ranks == sorted(ranks)
    cheaper = plan["tradeoffs"][kinds.index("cheaper_gpu")]
    assert cheaper["hours_affordable"] > 0 and cheaper["option"]["gpu"]["name"]
    for dep in plan["deployments"]:
        assert dep["country"] in catalog.cost_model["default"].residency_groups["eu"]


def test_dropping_features_is_recomputed(catalog):
    bp = blueprint(budget_usd=0.03)
    it = intent([task("coder", "core", 2000000, 50000), task("coder", "extra", 8000000, 200000),
                 task("coder", "polish", 1000000, 20000)])
    plan = _plan(catalog, bp, it)
    drop = [t for t in plan["tradeoffs"] if t["kind"] == "drop_features"][0]
    assert drop["features"][0] == "extra"     # the only could feature goes first
    assert drop["cost_usd"] < plan["totals"]["cost_usd"]


def test_quality_upgrade_names_the_bigger_gpu(catalog):
    bp = blueprint(providers=["local"], quality="high")
    plan = _plan(catalog, bp)
    assert not plan["checks"]["quality"]["ok"]
    upgrades = [t for t in plan["tradeoffs"] if t["kind"] == "quality_upgrade"]
    assert upgrades
    assert upgrades[0]["option"]["quality_score"] >= 85
    assert upgrades[0]["option"]["provider"] != "local"
    assert "does not allow" in upgrades[0]["summary"]


def test_small_work_shares_one_deployment(catalog):
    bp = blueprint()
    it = intent([task(r, "core", 1000, 100) for r in ROLES])
    plan = _plan(catalog, bp, it)
    assert len(plan["deployments"]) == 1
    assert sorted(plan["deployments"][0]["roles"]) == ROLES


def test_cost_is_price_times_hours_and_roles_add_up(catalog):
    plan = _example(catalog, "medium-webapp.yml")
    total = sum(d["cost_usd"] for d in plan["deployments"])
    assert plan["totals"]["cost_usd"] == pytest.approx(total, abs=1e-3)
    assert sum(r["cost_usd"] for r in plan["roles"].values()) == pytest.approx(total, abs=1e-3)
    for dep in plan["deployments"]:
        assert dep["cost_usd"] == pytest.approx(dep["hours"] * dep["price_per_hour_usd"],
                                                rel=1e-2)
    assert plan["totals"]["hours"] == pytest.approx(max(d["hours"] for d in plan["deployments"]),
                                                    abs=1e-3)


def test_alternatives_are_distinct_fallbacks(catalog):
    plan = _example(catalog, "medium-webapp.yml")
    for dep in plan["deployments"]:
        ids = [a["offer_id"] for a in dep["alternatives"]]
        assert 1 <= len(ids) <= 3
        assert dep["offer_id"] not in ids and len(set(ids)) == len(ids)


def test_pareto_set_names_cheapest_fastest_best_quality(catalog):
    plan = _example(catalog, "medium-webapp.yml")
    kinds = [p["kind"] for p in plan["pareto"]]
    for kind in ("chosen", "cheapest", "fastest", "best quality"):
        assert kind in kinds
    points = dict((p["kind"], p) for p in plan["pareto"] if p["kind"] != "single")
    assert points["cheapest"]["cost_usd"] <= min(p["cost_usd"] for p in plan["pareto"]
                                                 if p["meets_quality"]) + 1e-9
    assert points["best quality"]["quality_score"] >= max(
        p["quality_score"] for p in plan["pareto"]) - 1e-9
    assert any(p["pareto_optimal"] for p in plan["pareto"])


def test_residency_filters_offers(catalog):
    plan = _plan(catalog, blueprint(residency="DE", providers=["vast", "exoscale"]))
    assert all(d["country"] == "DE" for d in plan["deployments"])


@pytest.mark.parametrize("constraints, message", [
    ({"providers": ["k3s"]}, "no catalog offer can serve any model for providers k3s"),
    ({"residency": "mars"}, "unknown residency 'mars'"),
    ({"residency": "US", "providers": ["exoscale"]}, "with residency US"),
])
def test_impossible_plans_are_one_clear_error(catalog, constraints, message):
    with pytest.raises(PlanError, match=message):
        _plan(catalog, blueprint(**constraints))


def test_eur_rate_option(catalog):
    bp = blueprint(budget_eur=40, budget_usd=None)
    plan = _plan(catalog, bp, usd_per_eur=2.0)
    assert plan["totals"]["cost_eur"] == pytest.approx(plan["totals"]["cost_usd"] / 2.0, abs=1e-3)
    assert plan["checks"]["budget"]["currency"] == "EUR"


def test_unknown_feature_in_intent_is_rejected(catalog):
    with pytest.raises(PlanError, match="feature"):
        _plan(catalog, blueprint(), intent([task("coder", "nope", 1, 1)]))


def test_user_catalog_changes_the_choice(catalog, tmp_path):
    import yaml
    path = tmp_path / "cheap.yml"
    path.write_text(yaml.safe_dump({"offers": [{
        "id": "vast:H100 SXM:on_demand", "provider": "vast", "pricing": "on_demand",
        "gpu": "h100-sxm", "provider_gpu_id": "H100 SXM", "count": 1, "price_per_hour": 0.05,
        "currency": "USD", "region": "ALL", "source": "test", "as_of": "2026-11-23"}]}))
    mine = load_catalog([str(path)])
    plan = _plan(mine, blueprint())
    assert all(d["offer_id"] == "vast:H100 SXM:on_demand" for d in plan["deployments"])
