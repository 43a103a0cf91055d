"""The billed-time model (plugins/module_utils/_billing.py) and its place in plan.json."""

import copy

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils import _billing
from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError,
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    build_plan,
    reprice_deployment,
)

from _planner_helpers import blueprint, intent, task

ROLES = ["architect", "coder", "debugger", "reviewer"]
USAGE = _billing.usage_of()


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _plan(catalog, bp, it=None):
    it = it or intent([task(r, "core", 400000, 20000) for r in ROLES])
    return build_plan(bp, it, catalog, generated_at="2026-12-01T00:00:00Z")


@pytest.mark.parametrize("deadline, usage, want", [
    (24, {}, 3),                                   # 24 h x 5/7 x 3 = 2.14 -> 3
    (168, {}, 15),                                 # a week: 5 working days x 3
    (168, {"working_days_per_week": 7}, 21),
    (1, {}, 1),                                    # always at least one session
    (336, {"sessions_per_day": 1}, 10),
])
def test_sessions_within_the_deadline(deadline, usage, want):
    assert _billing.sessions_within(deadline, _billing.usage_of(usage)) == want


def test_wakes_follow_sessions_or_the_work_that_needs_more():
    assert _billing.expected_wakes("always_on", 168, 5.0, USAGE) == 0
    assert _billing.expected_wakes("idle_stop", 168, 5.0, USAGE) == 15
    # 50 h of work in sessions of 2.5 h needs 20 starts, more than the 15 sessions
    assert _billing.expected_wakes("serverless", 168, 50.0, USAGE) == 20


def test_idle_stop_bills_starts_work_idle_tails_and_storage():
    got = _billing.bill("idle_stop", work_s=3600, cold_s=300, resume_s=120, idle_timeout_s=600,
                        wakes=3, window_h=24, price_per_hour=1.0, storage_gb=50,
                        storage_running_usd_gb_h=0.001, storage_stopped_usd_gb_h=0.002)
    up = (300 + 1200 + 600) / 3600.0 + 2 * (120 + 1200 + 600) / 3600.0
    assert got["up_hours"] == pytest.approx(up)
    assert got["billed_hours"] == pytest.approx(up)
    assert got["stopped_hours"] == pytest.approx(24 - up)
    assert got["compute_usd"] == pytest.approx(up)
    assert got["storage_usd"] == pytest.approx(50 * (0.001 * up + 0.002 * (24 - up)))
    assert got["cost_usd"] == pytest.approx(got["compute_usd"] + got["storage_usd"])


def test_billing_period_rounds_every_up_period_and_minimum_applies_once():
    got = _billing.bill("idle_stop", 600, 60, 60, 60, 4, 100, 2.0, min_billing_h=10,
                        period_h=1, setup_usd=3)
    # four up periods of 270 s, each billed one hour; at least 10 hours in all
    assert got["billed_hours"] == 10
    assert got["compute_usd"] == pytest.approx(10 * 2.0 + 3)
    hourly = _billing.bill("idle_stop", 600, 60, 60, 60, 4, 100, 2.0, period_h=1)
    assert hourly["billed_hours"] == 4


def test_idle_stop_that_never_stops_is_billed_always_on():
    busy = _billing.bill("idle_stop", 20 * 3600, 300, 120, 3600, 8, 24, 1.0, storage_gb=10,
                         storage_running_usd_gb_h=0.01, storage_stopped_usd_gb_h=1.0)
    always = _billing.bill("always_on", 20 * 3600, 300, 120, 0, 0, 24, 1.0, storage_gb=10,
                           storage_running_usd_gb_h=0.01)
    assert busy == always
    assert always["up_hours"] == 24 and always["stopped_hours"] == 0
    assert always["cost_usd"] == pytest.approx(24 + 10 * 0.01 * 24)


def test_serverless_bills_worker_seconds_only():
    got = _billing.bill("serverless", 1800, 90, 90, 5, 6, 48, 1.12, storage_gb=50,
                        storage_running_usd_gb_h=1, storage_stopped_usd_gb_h=1)
    worker_s = 1800 + 6 * (90 + 5)
    assert got["billed_hours"] == pytest.approx(worker_s / 3600.0)
    assert got["cost_usd"] == pytest.approx(worker_s / 3600.0 * 1.12)
    assert got["storage_usd"] == 0 and got["stopped_hours"] == 0


def test_keda_has_no_storage_and_owned_nodes_cost_nothing():
    got = _billing.bill("keda", 1800, 200, 200, 300, 3, 48, 0.0, storage_gb=100,
                        storage_running_usd_gb_h=1, storage_stopped_usd_gb_h=1)
    assert got["cost_usd"] == 0 and got["storage_usd"] == 0
    internal = _billing.bill("keda", 1800, 200, 200, 300, 3, 48, 0.5)
    assert internal["cost_usd"] == pytest.approx((1800 + 3 * 500) / 3600.0 * 0.5)


@pytest.mark.parametrize("overrides, want", [
    ({}, (600, "fallback")),
    ({"coder": {"idle_timeout_s": 60, "wake_policy": None}}, (60, "fallback")),
    ({"coder": {"idle_timeout_s": 60}, "debugger": {"idle_timeout_s": 900}}, (900, "fallback")),
    ({"debugger": {"wake_policy": "wait"}}, (600, "wait")),
    ({"architect": {"wake_policy": "wait"}}, (600, "fallback")),   # not served here
])
def test_role_policy_for_a_shared_deployment(overrides, want):
    assert _billing.role_policy(("coder", "debugger"), overrides, 600, "fallback") == want


def test_wake_timeout_is_sized_from_the_start():
    assert _billing.wake_timeout_s(139, 1.5, 30) == 239


def test_blueprint_usage_and_role_scaling_are_validated():
    bp = blueprint()
    bp["usage"] = {"sessions_per_day": 2, "session_hours": 4}
    bp["constraints"]["scaling"] = {"coder": {"idle_timeout_s": 120, "wake_policy": "wait"}}
    valid = validate_blueprint(bp)
    assert valid.usage.working_days_per_week == 5
    assert valid.constraints.scaling.coder.idle_timeout_s == 120
    bad = copy.deepcopy(bp)
    bad["constraints"]["scaling"] = {"coder": {"idle_timeout": 120}}
    with pytest.raises(BlueprintError) as err:
        validate_blueprint(bad)
    assert "constraints.scaling.coder.idle_timeout" in str(err.value)
    assert "idle_timeout_s" in str(err.value)
    bad = copy.deepcopy(bp)
    bad["usage"]["working_days_per_week"] = 8
    with pytest.raises(BlueprintError):
        validate_blueprint(bad)


def test_plan_states_the_scaling_contract_per_deployment(catalog):
    plan = _plan(catalog, blueprint(budget_usd=50, deadline_hours=168))
    for dep in plan["deployments"]:
        scaling = dep["scaling"]
        assert set(scaling) == {"mode", "idle_timeout_s", "expected_wakes", "wake_policy",
                                "wake_timeout_s"}
        assert scaling["mode"] == {"runpod": "idle_stop", "vast": "idle_stop"}[dep["provider"]]
        assert scaling["expected_wakes"] == 15
        assert scaling["wake_timeout_s"] == _billing.wake_timeout_s(
            dep["billed"]["resume_s"], 1.5, 30)
        assert dep["billed"]["resume_s"] < dep["cold_start_s"]
        assert dep["billed"]["storage_usd"] > 0
    totals = plan["totals"]
    assert totals["cost_usd"] == pytest.approx(sum(d["cost_usd"] for d in plan["deployments"]),
                                               abs=1e-3)
    assert totals["cost_usd"] < totals["always_on_cost_usd"]
    assert plan["checks"]["budget"]["estimate"] == totals["cost_usd"]


def test_the_budget_check_uses_the_billed_estimate(catalog):
    work = intent([task(r, "core", 400000, 20000) for r in ROLES])
    loose = _plan(catalog, blueprint(budget_usd=50, deadline_hours=168), work)
    billed = loose["totals"]["cost_usd"]
    assert billed > 0
    tight = _plan(catalog, blueprint(budget_usd=billed * 0.5, deadline_hours=168), work)
    assert not tight["checks"]["budget"]["ok"]
    assert tight["checks"]["budget"]["estimate"] == tight["totals"]["cost_usd"] > billed * 0.5


def test_more_sessions_mean_more_wakes_and_cost(catalog):
    few = blueprint(budget_usd=50, deadline_hours=168)
    few["usage"] = {"sessions_per_day": 1}
    many = blueprint(budget_usd=50, deadline_hours=168)
    many["usage"] = {"sessions_per_day": 6}
    a, b = _plan(catalog, few), _plan(catalog, many)
    assert [d["scaling"]["expected_wakes"] for d in a["deployments"]] == [5] * len(
        a["deployments"])
    assert all(d["scaling"]["expected_wakes"] == 30 for d in b["deployments"])
    assert a["totals"]["cost_usd"] < b["totals"]["cost_usd"]


def test_role_idle_timeout_reaches_the_plan(catalog):
    bp = blueprint(budget_usd=50, deadline_hours=168)
    bp["constraints"]["scaling"] = dict((r, {"idle_timeout_s": 120, "wake_policy": "wait"})
                                        for r in ROLES)
    plan = _plan(catalog, bp)
    assert all(d["scaling"]["idle_timeout_s"] == 120 and d["scaling"]["wake_policy"] == "wait"
               for d in plan["deployments"])
    assert plan["blueprint"]["constraints"]["scaling"]["coder"]["idle_timeout_s"] == 120


def test_serverless_and_local_deployments(catalog):
    serverless = _plan(catalog, blueprint(budget_usd=50, providers=["runpod_serverless"]))
    for dep in serverless["deployments"]:
        assert dep["scaling"]["mode"] == "serverless"
        assert dep["scaling"]["idle_timeout_s"] == 60
        assert dep["billed"]["storage_usd"] == 0 and dep["billed"]["stopped_hours"] == 0
        assert dep["billed"]["resume_s"] == dep["cold_start_s"]
        assert dep["cost_usd"] == dep["billed"]["compute_usd"]
        assert dep["cost_usd"] == pytest.approx(
            dep["billed"]["billed_hours"] * dep["price_per_hour_usd"], rel=2e-3)
    local = _plan(catalog, blueprint(budget_usd=1, providers=["local"], quality="draft",
                                     deadline_hours=400),
                  intent([task(r, "core", 2000, 200) for r in ROLES]))
    for dep in local["deployments"]:
        assert dep["scaling"]["mode"] == "always_on"
        assert dep["scaling"]["expected_wakes"] == 0 and dep["scaling"]["idle_timeout_s"] == 0
        assert dep["cost_usd"] == 0
    assert local["totals"]["always_on_cost_usd"] == 0


def test_repricing_keeps_the_scaling_policy(catalog):
    plan = _plan(catalog, blueprint(budget_usd=50, deadline_hours=168))
    dep = plan["deployments"][0]
    hours, cost = reprice_deployment(plan, dep)
    assert hours == pytest.approx(dep["hours"], abs=1e-3)
    assert cost == pytest.approx(dep["cost_usd"], abs=1e-3)
    slower_hours, slower = reprice_deployment(plan, dep, decode_tok_s=dep["single_stream_tok_s"]
                                              / 2.0)
    assert slower_hours > hours and slower > cost
    old = copy.deepcopy(dep)
    del old["cost_terms"]["scaling"]   # a plan from before scaling: the work alone
    _hours, work_only = reprice_deployment(plan, old)
    assert work_only < cost


@pytest.mark.parametrize("hours, want_hours, want", [
    (0.0, 0, 0.0),
    (0.1, 1, 0.00714),           # a few minutes bill a full hour
    (1.0, 1, 0.00714),
    (1.5, 2, 0.01428),
    (48.0, 48, 48 * 0.00714),
    (700.0, 700, 4.5101),        # capped at the monthly price
])
def test_a_hetzner_control_server_bills_started_hours_up_to_the_monthly_cap(hours, want_hours, want):
    bill = _billing.control_server_bill(hours, 0.00714, "per_started_hour", 4.5101)
    assert bill["billed_hours"] == want_hours
    assert bill["cost"] == pytest.approx(want)


def test_a_hetzner_primary_ipv4_bills_beside_the_server_by_the_same_rule():
    bill = _billing.control_server_bill(1.5, 0.00714, "per_started_hour", 4.5101,
                                        address_price_per_hour=0.000952, address_price_per_month=0.595)
    assert bill["address"] == pytest.approx(2 * 0.000952)
    assert bill["cost"] == pytest.approx(2 * (0.00714 + 0.000952))
    month = _billing.control_server_bill(700, 0.00714, "per_started_hour", 4.5101,
                                         address_price_per_hour=0.000952, address_price_per_month=0.595)
    assert month["address"] == pytest.approx(0.595) and month["cost"] == pytest.approx(4.5101 + 0.595)


def test_a_control_server_past_a_month_pays_each_month_up_to_its_cap():
    bill = _billing.control_server_bill(_billing.HOURS_PER_MONTH + 10, 0.00714, "per_started_hour", 4.5101)
    assert bill["cost"] == pytest.approx(4.5101 + 10 * 0.00714)


def test_an_exoscale_control_server_bills_per_second_and_its_disk_while_it_exists():
    bill = _billing.control_server_bill(1.5, 0.05556, "per_second", None, 20, 0.000137)
    assert bill["billed_hours"] == 1.5
    assert bill["compute"] == pytest.approx(1.5 * 0.05556)
    assert bill["disk"] == pytest.approx(1.5 * 20 * 0.000137)
    with pytest.raises(ValueError, match="per_second, per_hour, per_started_hour"):
        _billing.control_server_bill(1, 0.1, "monthly")
