"""The spend report (module_utils/_spend.py) on a recorded session.

Fixtures (tests/unit/fixtures/spend/):
- plan.json: a plan the planner made from the bundled catalog (2026-12-01) for four roles on two
  rented GPU deployments, each with three alternatives; reviewer marked sensitive.
- spend.jsonl: 99 requests over three days in the gateway spend log's format (written by a seeded
  generator, shaped like the logger's real lines: GPU time priced per second x latency), one
  failed call, one answered by the coder-alt1 fallback group, and one torn line.

The test recomputes every figure it checks from the raw files, without the module's helpers."""

import json
import math
import os

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils import _spend

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "spend")
# Two per-token API routes (the API catalog is not in this branch yet): a cheap good one that
# the sensitive reviewer must never get, and a cheap weak one below the plan's quality.
API_GOOD = {"name": "deepseek/deepseek-chat", "provider": "deepseek", "kind": "api", "model": "DeepSeek-V3",
            "quality_score": 90.0, "usd_per_m_input": 0.27, "usd_per_m_output": 1.10, "source": "test"}
API_WEAK = {"name": "openrouter/tiny", "provider": "openrouter", "kind": "api", "model": "tiny",
            "quality_score": 40.0, "usd_per_m_input": 0.01, "usd_per_m_output": 0.02, "source": "test"}


@pytest.fixture(scope="module")
def plan():
    with open(os.path.join(FIXTURES, "plan.json")) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def log_text():
    with open(os.path.join(FIXTURES, "spend.jsonl")) as handle:
        return handle.read()


@pytest.fixture(scope="module")
def raw(log_text):
    rows = []
    for line in log_text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


@pytest.fixture(scope="module")
def doc(plan, log_text):
    records, skipped = _spend.parse_log(log_text)
    routes = _spend.plan_routes(plan) + [API_GOOD, API_WEAK]
    return _spend.report(records, plan, routes, skipped=skipped, generated_at="2026-12-02T00:00:00Z")


def role_of_alias(plan, alias):
    base = alias[:-5] if alias.endswith("-alt1") else alias
    return [r for r, e in plan["roles"].items() if e["alias"] == base][0]


def independent_candidates(plan):
    """(identity, name, kind, quality, cost function) of every route, from the raw plan."""
    out = []
    for dep in plan["deployments"]:
        busy_h = dep["hours"] - dep["cold_start_s"] / 3600.0
        for entry in [dep] + dep["alternatives"]:
            ident = (entry["offer_id"], entry["model"]["key"], entry["model"]["quantization"])
            price, decode, prefill = entry["price_per_hour_usd"], entry["single_stream_tok_s"], entry["prefill_tok_s"]
            # billed per busy hour: the plan's cost over its busy hours; an alternative that the
            # plan did not price adds its own cold start to the deployment's busy hours
            if "hours" in entry:
                factor = entry["cost_usd"] / (price * (entry["hours"] - entry["cold_start_s"] / 3600.0))
            else:
                factor = (busy_h + entry["cold_start_s"] / 3600.0) / busy_h
            out.append((ident, "self_hosted", entry["quality_score"],
                        lambda tin, tout, p=price, d=decode, f=prefill, k=factor: (tin / f + tout / d) * p / 3600.0 * k,
                        factor))
    for api in (API_GOOD, API_WEAK):
        out.append((api["name"], "api", api["quality_score"],
                    lambda tin, tout, a=api: tin / 1e6 * a["usd_per_m_input"] + tout / 1e6 * a["usd_per_m_output"],
                    1.0))
    unique, seen = [], set()
    for item in out:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


def test_log_lines_read_and_skipped(doc, raw):
    assert len(raw) == 99
    assert doc["skipped_lines"] == 1
    assert doc["summary"]["requests"] == 99
    assert doc["summary"]["total"]["failures"] == sum(1 for r in raw if r["status"] != "success") == 1


def test_spend_per_role_model_day(doc, raw, plan):
    per_role, per_model, per_day = {}, {}, {}
    for row in raw:
        for table, key in ((per_role, role_of_alias(plan, row["alias"])), (per_model, row["deployment"]),
                           (per_day, row["ts"][:10])):
            table[key] = table.get(key, 0.0) + row["cost_usd"]
    summary = doc["summary"]
    assert set(summary["by_role"]) == set(per_role) == {"architect", "coder", "debugger", "reviewer"}
    for role, cost in per_role.items():
        assert summary["by_role"][role]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    for model, cost in per_model.items():
        assert summary["by_model"][model]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert sorted(per_day) == sorted(summary["by_day"]) == ["2026-11-29", "2026-11-30", "2026-12-01"]
    for day, cost in per_day.items():
        assert summary["by_day"][day]["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert summary["total"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in raw), abs=1e-6)
    assert summary["first"] == min(r["ts"] for r in raw) and summary["last"] == max(r["ts"] for r in raw)


def test_latency_percentiles(doc, raw, plan):
    for role in ("architect", "coder"):
        lat = sorted(r["latency_s"] for r in raw
                     if r["status"] == "success" and role_of_alias(plan, r["alias"]) == role)
        ttft = sorted(r["ttft_s"] for r in raw if r["status"] == "success" and r["stream"]
                      and role_of_alias(plan, r["alias"]) == role)
        got = doc["summary"]["by_role"][role]
        # nearest rank: the ceil(p * n)-th value
        assert got["latency_p50_s"] == lat[math.ceil(0.50 * len(lat)) - 1]
        assert got["latency_p95_s"] == lat[math.ceil(0.95 * len(lat)) - 1]
        assert got["ttft_p50_s"] == ttft[math.ceil(0.50 * len(ttft)) - 1]
        assert got["ttft_p95_s"] == ttft[math.ceil(0.95 * len(ttft)) - 1]


def test_savings_recomputed_independently(doc, raw, plan):
    floor = plan["checks"]["quality"]["required_score"]
    candidates = independent_candidates(plan)
    by_dep = dict((d["name"], d) for d in plan["deployments"])
    recs = dict((r["role"], r) for r in doc["recommendations"])
    total_saving = 0.0
    for role, entry in plan["roles"].items():
        rows = [r for r in raw if role_of_alias(plan, r["alias"]) == role]
        tin, tout = sum(r["tokens_in"] for r in rows), sum(r["tokens_out"] for r in rows)
        logged = sum(r["cost_usd"] for r in rows)
        dep = by_dep[entry["deployment"]]
        current = (dep["offer_id"], dep["model"]["key"], dep["model"]["quantization"])
        sensitive = entry.get("sensitive", False)
        costs = sorted(fn(tin, tout) for ident, kind, quality, fn, _k in candidates
                       if ident != current and quality >= floor and not (sensitive and kind == "api"))
        factor = [k for ident, _kind, _q, _fn, k in candidates if ident == current][0]
        rec = recs[role]
        assert rec["logged_cost_usd"] == pytest.approx(logged, abs=1e-6)
        assert rec["billed_cost_usd"] == pytest.approx(logged * factor, abs=1e-5)
        assert rec["best"]["cost_usd"] == pytest.approx(costs[0], abs=1e-5)
        expected = max(0.0, logged * factor - costs[0])
        assert rec["saving_usd"] == pytest.approx(expected, abs=1e-5)
        total_saving += rec["saving_usd"]
    assert doc["saving_usd"] == pytest.approx(total_saving, abs=1e-6)
    # the session pays for repricing: the heavy 32B route's roles move to a cheaper GPU route
    assert recs["architect"]["saving_usd"] > 0 and recs["reviewer"]["saving_usd"] > 0


def test_sensitive_role_never_gets_an_api(doc):
    reviewer = [r for r in doc["recommendations"] if r["role"] == "reviewer"][0]
    assert reviewer["sensitive"] is True
    assert reviewer["excluded"]["sensitive"] == 2
    assert all(c["kind"] != "api" for c in reviewer["candidates"])
    assert reviewer["best"]["kind"] != "api"


def test_quality_floor_keeps_weak_routes_out(doc):
    for rec in doc["recommendations"]:
        assert all(c["quality_score"] >= 70.0 for c in rec["candidates"])
        assert rec["excluded"]["quality"] >= (0 if rec["sensitive"] else 1)


def test_whole_project_sensitive(plan, log_text):
    records, _skipped = _spend.parse_log(log_text)
    secret = json.loads(json.dumps(plan))
    secret["blueprint"]["constraints"]["sensitive"] = True
    doc = _spend.report(records, secret, _spend.plan_routes(secret) + [API_GOOD])
    assert all(r["sensitive"] and (r["best"] is None or r["best"]["kind"] != "api") for r in doc["recommendations"])


def test_renderings(doc):
    md = _spend.render_markdown(doc)
    html = _spend.render_html(doc)
    assert md.startswith("# Spend report: demo")
    assert "## Recommendations" in md and "saves $" in md and "| architect |" in md
    assert html.count("<svg") == 3 and "http://www.w3.org/2000/svg" in html
    assert "<script" not in html and "https://" not in html.replace("http://www.w3.org/2000/svg", "")
    for day in ("2026-11-29", "2026-11-30", "2026-12-01"):
        assert day in html


@pytest.mark.parametrize("route, message", [
    ({"name": "x", "kind": "cloud", "quality_score": 1, "usd_per_m_input": 1}, "kind must be"),
    ({"name": "x", "kind": "api", "quality_score": 1}, "either"),
    ({"name": "x", "kind": "self_hosted", "quality_score": 1, "price_per_hour_usd": 1, "decode_tok_s": 0,
      "prefill_tok_s": 1}, "decode_tok_s"),
    ({"name": "x", "kind": "api", "usd_per_m_input": 1}, "quality_score"),
])
def test_bad_routes(route, message):
    with pytest.raises(_spend.SpendError, match=message):
        _spend.check_route(route)


def test_percentile_edges():
    assert _spend.percentile([], 50) is None
    assert _spend.percentile([None, 3.0], 95) == 3.0
    assert _spend.percentile([1, 2, 3, 4], 50) == 2
    assert _spend.percentile([1, 2, 3, 4], 95) == 4


def test_empty_log(plan):
    doc = _spend.report([], plan, _spend.plan_routes(plan))
    assert doc["recommendations"] == [] and doc["summary"]["requests"] == 0
    assert "No traffic to reprice." in _spend.render_markdown(doc)
    assert "No traffic to reprice." in _spend.render_html(doc)


def test_catalog_api_models_become_api_routes_and_reprice_independently(plan, log_text):
    """The bundled catalog's per-token APIs are candidates (kind api), priced per token as the
    catalog says; the sensitive reviewer is never offered one."""
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
    models = dict((m.litellm_model, m.model_dump(mode="json"))
                  for m in load_catalog().sections["api_models"].values())
    routes = _spend.api_routes(list(models.values()))
    assert len(routes) == len(models) > 0
    assert all(r["kind"] == "api" and _spend.check_route(r) is r for r in routes)
    records, _skipped = _spend.parse_log(log_text)
    doc = _spend.report(records, plan, _spend.plan_routes(plan) + routes)
    offered = 0
    for rec in doc["recommendations"]:
        apis = [c for c in rec["candidates"] if c["kind"] == "api"]
        if rec["role"] == "reviewer":      # sensitive in the fixture plan
            assert rec["sensitive"] and not apis and rec["excluded"]["sensitive"] >= len(models)
            continue
        for cand in apis:
            model = models[cand["name"]]
            expected = (rec["traffic"]["tokens_in"] * model["input_usd_per_mtok"]
                        + rec["traffic"]["tokens_out"] * model["output_usd_per_mtok"]) / 1e6
            assert math.isclose(cand["cost_usd"], expected, rel_tol=1e-4, abs_tol=2e-6)
            assert model["score"]["value"] >= rec["required_quality"]
        offered += len(apis)
    assert offered > 0
