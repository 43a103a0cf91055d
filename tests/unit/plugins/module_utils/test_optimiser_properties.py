"""The exact optimiser against brute force, on random small catalogs and workloads.

Every plan (each of the 15 ways of sharing deployments x every option per block, owned
machines used by one deployment at most) is enumerated and ranked by the same documented key,
each block priced by a reference of the documented billed-cost formula (docs/cost-model.md,
section 4b) written here independently of the planner; the optimiser must reach the same key
for every alternative and constraint set, and the same cost-time front. Monotonicity and
trade-off properties run on the same generator.
"""

import itertools
import math
import os

import yaml

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    BUNDLED_DIR,
    load_catalog,
)
from ansible_collections.llmops.codestack.plugins.module_utils._optimiser import (
    EPS,
    FALLBACKS,
    OBJECTIVES,
    ROLES,
)
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    Billing,
    build_plan,
    build_problem,
    enumerate_options,
)

with open(os.path.join(BUNDLED_DIR, "cost-model.yml")) as _handle:
    BASE = yaml.safe_load(_handle)
BASE.pop("measurements", None)

OFFER_PROVIDERS = ["local", "runpod", "vast", "hetzner", "runpod_serverless"]
PROVIDERS = OFFER_PROVIDERS + ["openrouter", "ollama"]
DAY = "2026-12-01"


def _scaling(draw):
    """Random scaling terms for the providers that scale to zero (hetzner: none, always on)."""
    out = []
    for provider, mode in (("runpod", "idle_stop"), ("vast", "idle_stop"),
                           ("runpod_serverless", "serverless")):
        out.append({"id": provider, "mode": mode,
                    "idle_timeout_s": draw(st.sampled_from([0, 5, 600, 3600])),
                    "resume_keeps_image": draw(st.booleans()),
                    "resume_keeps_weights": draw(st.booleans()),
                    "disk_base_gb": draw(st.sampled_from([0, 20])),
                    "storage_running_usd_per_gb_month": draw(st.sampled_from([0, 0.1])),
                    "storage_stopped_usd_per_gb_month": draw(st.sampled_from([0, 0.2, 30.0])),
                    "source": "test", "as_of": DAY})
    out.append({"id": "local", "mode": "always_on", "source": "test", "as_of": DAY})
    return out


@st.composite
def worlds(draw):
    """A small random catalog (1-3 offers, 1-2 models), role workloads and limits."""
    gpus = []
    for i in range(draw(st.integers(1, 2))):
        gpus.append({"id": "g%d" % i, "name": "G%d" % i, "kind": "gpu",
                     "vram_gb": draw(st.sampled_from([16, 24, 48, 80])),
                     "bandwidth_gbs": draw(st.integers(200, 3000)),
                     "fp16_tflops": draw(st.integers(50, 1000)), "fp8": draw(st.booleans()),
                     "source": "test", "as_of": DAY})
    gpus.append({"id": "cpu", "name": "CPU", "kind": "cpu", "vram_gb": 16, "bandwidth_gbs": 40,
                 "fp16_tflops": 1, "source": "test", "as_of": DAY})
    offers = []
    for i in range(draw(st.integers(1, 3))):
        provider = draw(st.sampled_from(OFFER_PROVIDERS))
        local = provider == "local"
        gpu = "cpu" if local and draw(st.booleans()) else draw(st.sampled_from(
            [g["id"] for g in gpus if g["kind"] == "gpu"]))
        pricing = "owned" if local else "serverless" if provider == "runpod_serverless" else \
            draw(st.sampled_from(["on_demand", "spot"]))
        offers.append({
            "id": "o%d" % i, "provider": provider, "pricing": pricing,
            "gpu": gpu, "provider_gpu_id": gpu, "count": draw(st.sampled_from([1, 1, 2])),
            "price_per_hour": 0 if local else draw(st.sampled_from([0.2, 0.5, 1.3, 2.7, 4.76])),
            "min_billing_hours": draw(st.sampled_from([0, 0, 1, 730])),
            "billing_period_hours": draw(st.sampled_from([0, 0, 1])),
            "setup_fee": draw(st.sampled_from([0, 0, 3])),
            "source": "test", "as_of": DAY})
    models = []
    for i in range(draw(st.integers(1, 2))):
        params = draw(st.sampled_from([0.5, 7, 14, 32]))
        quants = draw(st.lists(st.sampled_from(["fp16", "awq", "fp8", "q4_1"]), min_size=1,
                               max_size=2, unique=True))
        models.append({
            "id": "m%d" % i, "name": "M%d" % i, "hf_repo": "org/m%d" % i, "params_b": params,
            "licence": "test", "context": draw(st.sampled_from([8192, 32768])),
            "kv_kb_per_token": draw(st.sampled_from([20, 60, 200])),
            "quantizations": dict((q, {"weight_gb": params * (2.0 if q == "fp16" else
                                                              1.0 if q == "fp8" else 0.6),
                                       "repo": "org/m%d-%s" % (i, q)})
                                  for q in quants),
            "score": {"value": draw(st.sampled_from([40, 72, 81, 88, 93])),
                      "benchmark": "test", "source": "test", "as_of": DAY},
            "source": "test", "as_of": DAY})
    tokens = dict((r, [draw(st.sampled_from([0, 1000, 200000, 3000000])),
                       draw(st.sampled_from([0, 500, 20000, 300000]))]) for r in ROLES)
    if not any(sum(t) for t in tokens.values()):
        tokens["coder"] = [1000, 100]
    # per-token API models and Ollama tags (owned, one machine) beside the offers
    apis = []
    for i in range(draw(st.integers(0, 2))):
        apis.append({"id": "openrouter:a%d" % i, "provider": "openrouter", "model": "a%d" % i,
                     "litellm_model": "openrouter/a%d" % i, "name": "A%d" % i,
                     "input_usd_per_mtok": draw(st.sampled_from([0.03, 0.3, 3.0])),
                     "output_usd_per_mtok": draw(st.sampled_from([0.09, 1.2, 15.0])),
                     "context": draw(st.sampled_from([8192, 131072])),
                     "output_tok_s": draw(st.sampled_from([20, 60, 150])),
                     "ttft_s": draw(st.sampled_from([0.3, 2.0])),
                     "score": {"value": draw(st.sampled_from([72, 82, 88, 93])),
                               "benchmark": "test", "source": "test", "as_of": DAY},
                     "source": "test", "as_of": DAY})
    tags = []
    if draw(st.booleans()):
        for i, model in enumerate(models[:draw(st.integers(1, 2))]):
            tags.append({"id": "t%d" % i, "model": model["id"], "quantization": "q4_k_m",
                         "weight_gb": 4.0, "context": 8192, "host": "test",
                         "throughput": "modelled",
                         "decode_tok_s": draw(st.sampled_from([10, 40, 160])),
                         "prefill_tok_s": draw(st.sampled_from([100, 3000])),
                         "source": "test", "as_of": DAY})
    api_data = {"api_providers": [
        {"id": "openrouter", "name": "OR", "api_base": "http://127.0.0.1:1/v1",
         "litellm_prefix": "openrouter", "key_env": "OPENROUTER_API_KEY",
         "data_policy": "third_party", "source": "test", "as_of": DAY},
        {"id": "ollama", "name": "Ollama", "api_base": "http://127.0.0.1:2",
         "litellm_prefix": "ollama_chat", "data_policy": "local", "source": "test",
         "as_of": DAY}], "api_models": apis, "ollama_models": tags}
    sensitive = draw(st.lists(st.sampled_from(ROLES), max_size=4, unique=True))
    limits = {"budget": draw(st.sampled_from([0.05, 1.0, 10.0, 500.0])),
              "deadline": draw(st.sampled_from([0.05, 0.5, 3.0, 48.0, 300.0])),
              "quality": draw(st.sampled_from(["draft", "standard", "high"])),
              "sensitive": sensitive,
              "usage": {"sessions_per_day": draw(st.sampled_from([1, 3, 8])),
                        "session_hours": draw(st.sampled_from([0.5, 2.5])),
                        "working_days_per_week": draw(st.sampled_from([5, 7]))},
              "scaling": dict((role, {"idle_timeout_s": draw(st.sampled_from([None, 60, 7200])),
                                      "wake_policy": draw(st.sampled_from([None, "wait",
                                                                           "fallback"]))})
                              for role in ROLES if draw(st.booleans()))}
    return (dict({"gpus": gpus, "offers": offers, "models": models, "scaling": _scaling(draw)},
                 **api_data), tokens, limits)


def _problem(world, **override):
    data, tokens, limits = world
    limits = dict(limits, **override)
    catalog = load_catalog(bundled=False, data=[BASE, data])
    bp = validate_blueprint({
        "project": {"name": "prop", "description": "random"},
        "features": [{"name": "core", "description": "core"}],
        "usage": limits.setdefault("usage", {}),
        "constraints": {"budget_usd": limits["budget"], "deadline_hours": limits["deadline"],
                        "quality": limits["quality"], "providers": PROVIDERS,
                        "scaling": limits.setdefault("scaling", {})}})
    options, _unused = enumerate_options(catalog, bp.constraints)
    if not options:
        return None
    # the routing policy: random sensitive roles (never on a third-party API)
    policy = dict((r, {"sensitive": r in limits.get("sensitive", ()), "min_quality": 0.0,
                       "quality_weight": 1.0}) for r in ROLES)
    problem = build_problem(options, tokens, catalog.cost_model["default"], limits["budget"],
                            limits["deadline"], limits["quality"], policy, Billing.of(bp))
    for roles, cands in problem.blocks.items():
        if any(policy[r]["sensitive"] for r in roles):
            assert not any(getattr(c.opt, "third_party", False) for c in cands), roles
    if not any(all(problem.blocks[b] for b in p) for p in problem.partitions):
        return None
    problem.world = (catalog, tokens, limits)
    return problem


def _reference_cost(problem, roles, cand):
    """The billed cost of one block, straight from docs/cost-model.md (sections 4 and 4b)."""
    catalog, tokens, limits = problem.world
    opt, offer = cand.opt, cand.opt.offer
    mml, seqs, batching = cand.serving
    tin = sum(tokens[r][0] for r in roles)
    tout = sum(tokens[r][1] for r in roles)
    if hasattr(opt, "per_token"):   # docs/cost-model.md section 8: tokens x price, Ollama free
        return opt.rework * (tin * opt.pin + tout * opt.pout) / 1e6 if opt.per_token else 0.0
    work_s = opt.rework * (tout / (opt.decode * batching)
                           + tin * (1.0 - opt.prefix_cache_hit) / opt.prefill)
    work_s *= 1.0 + catalog.cost_model["default"].interruption_overhead.get(offer.pricing, 0.0)
    cold = catalog.cold_start[offer.provider]
    download = opt.weight_gb * 8.0 / cold.download_gbps if cold.download_gbps else 0.0
    cold_s = (cold.scheduling_s + cold.image_pull_s + download
              + opt.weight_gb / cold.load_gb_per_s + catalog.engines[opt.engine].init_s)
    assert cand.hours == (work_s + cold_s) / 3600.0 or \
        abs(cand.hours - (work_s + cold_s) / 3600.0) < 1e-9
    sc = catalog.scaling.get(offer.provider)
    mode = sc.mode if sc else "always_on"
    price = offer.price_per_hour * offer.count
    period, minimum, window = offer.billing_period_hours, offer.min_billing_hours, \
        limits["deadline"]

    def periods(h):
        return math.ceil(h / period - 1e-9) * period if period else h

    keeps = sc is not None and sc.resume_keeps_weights
    gb = math.ceil(sc.disk_base_gb + (opt.weight_gb if keeps else 0)) if sc else 0
    running = sc.storage_running_usd_per_gb_month / 730.0 if sc else 0.0
    stopped = sc.storage_stopped_usd_per_gb_month / 730.0 if sc else 0.0
    always = (max(periods(max(window, cand.hours)), minimum) * price + offer.setup_fee
              + gb * running * max(window, cand.hours))
    if mode == "always_on":
        return always
    asked = [limits["scaling"][r]["idle_timeout_s"] for r in roles
             if r in limits["scaling"] and limits["scaling"][r]["idle_timeout_s"] is not None]
    idle = max(asked) if asked else sc.idle_timeout_s
    usage = dict({"sessions_per_day": 3, "session_hours": 2.5, "working_days_per_week": 5},
                 **limits["usage"])
    sessions = max(1, math.ceil(window / 24.0 * usage["working_days_per_week"] / 7.0
                                * usage["sessions_per_day"] - 1e-9))
    wakes = max(sessions, math.ceil(work_s / 3600.0 / usage["session_hours"] - 1e-9))
    resume_s = cold_s
    if mode == "idle_stop":
        resume_s -= (cold.image_pull_s if sc.resume_keeps_image else 0) + \
            (download if keeps else 0)
    first = (cold_s + work_s / wakes + idle) / 3600.0
    later = (resume_s + work_s / wakes + idle) / 3600.0
    up = first + (wakes - 1) * later
    if mode == "idle_stop" and up >= window:
        return always
    compute = max(periods(first) + (wakes - 1) * periods(later), minimum) * price \
        + offer.setup_fee
    if mode == "serverless":
        return compute
    return compute + gb * (running * up + stopped * (window - up))


def _every_plan(problem):
    """(cost, hours, weighted quality, blocks, quality ok, plan) of every valid plan, each
    block priced by the reference formula (and checked against the planner's price)."""
    costs = {}
    for roles, cands in problem.blocks.items():
        for cand in cands:
            ref = _reference_cost(problem, roles, cand)
            assert abs(cand.cost - ref) <= 1e-9 * (1.0 + ref), (roles, cand.opt.offer.id)
            costs[(roles, id(cand))] = ref
    for partition in problem.partitions:
        for combo in itertools.product(*[problem.blocks[b] for b in partition]):
            owned = [c.exclusive for c in combo if c.exclusive is not None]
            if len(owned) != len(set(owned)):
                continue
            cost = 0.0
            wq = 0.0
            for roles, cand in zip(partition, combo):
                cost += costs[(roles, id(cand))]
                wq += cand.wq
            hours = max(c.hours for c in combo)
            yield (cost, hours, wq, len(partition),
                   all(c.quality >= problem.threshold for c in combo))


def _brute_best(problem, plans, objective):
    for constraints in FALLBACKS[objective]:
        keys = [problem.key(objective, c, h, q, n) for c, h, q, n, ok in plans
                if problem.feasible(constraints, c, h, ok)]
        if keys:
            return min(keys), constraints
    raise AssertionError("no plan")


def _key_of(problem, objective, plan):
    cost, wq = 0.0, 0.0
    for _roles, cand in plan:
        cost += cand.cost
        wq += cand.wq
    return problem.key(objective, cost, max(c.hours for _r, c in plan), wq, len(plan))


SETTINGS = dict(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(**SETTINGS)
@given(worlds())
def test_every_alternative_matches_brute_force(world):
    problem = _problem(world)
    if problem is None:
        return
    plans = list(_every_plan(problem))
    for objective in OBJECTIVES:
        want, constraints = _brute_best(problem, plans, objective)
        plan, met = problem.best(objective)
        assert met == constraints, objective
        assert _key_of(problem, objective, plan) == want, objective
        # and under every constraint set, not only the first one satisfiable
        for constraints in FALLBACKS[objective]:
            keys = [problem.key(objective, c, h, q, n) for c, h, q, n, ok in plans
                    if problem.feasible(constraints, c, h, ok)]
            found = problem.solve(objective, constraints)
            assert (found is None) == (not keys)
            if keys:
                assert found[0] == min(keys) == _key_of(problem, objective, found[1])


@settings(**SETTINGS)
@given(worlds())
def test_cost_time_front_matches_brute_force(world):
    problem = _problem(world)
    if problem is None:
        return
    plans = list(_every_plan(problem))
    pool = [p for p in plans if p[4]] or plans
    points = sorted(set((round(h, 9), round(c, 9)) for c, h, _q, _n, _ok in pool))
    want = []
    for hours, cost in points:
        if not want or cost < want[-1][1]:
            want.append((hours, cost))
    got = [(h, c) for h, c, _plan in problem.cost_time_front()]
    assert got == want


@settings(**dict(SETTINGS, max_examples=30))
@given(worlds(), st.sampled_from([2.0, 10.0]))
def test_more_budget_or_time_is_never_worse(world, factor):
    problem = _problem(world)
    if problem is None:
        return
    data, tokens, limits = world
    richer = _problem(world, budget=limits["budget"] * factor)
    later = _problem(world, deadline=limits["deadline"] * factor)
    for objective in ("balanced", "fastest", "best_quality"):
        before = problem.solve(objective, FALLBACKS[objective][0])
        after = richer.solve(objective, FALLBACKS[objective][0])
        if before is not None:
            assert after is not None
            if objective == "balanced":
                # the score divides by the budget: compare both plans under the new budget
                assert after[0][0] <= _key_of(richer, objective, before[1])[0] + EPS
            else:
                assert after[0] <= before[0]
    # a later deadline rents longer (more sessions, storage while stopped): the billed cost
    # may grow, but the plan cheapest before, priced for the longer window, still bounds it
    cheapest = problem.solve("cheapest", FALLBACKS["cheapest"][0])
    cheapest_later = later.solve("cheapest", FALLBACKS["cheapest"][0])
    if cheapest is not None:
        assert cheapest_later is not None
        same = dict(((roles, c.opt.index), c) for roles, cands in later.blocks.items()
                    for c in cands)
        repriced = sum(same[(roles, cand.opt.index)].cost for roles, cand in cheapest[1])
        assert cheapest_later[0][0] <= round(repriced, 9) + EPS


def test_owned_machine_serves_one_deployment():
    world = ({"gpus": [{"id": "cpu", "name": "CPU", "kind": "cpu", "vram_gb": 16,
                        "bandwidth_gbs": 40, "fp16_tflops": 1, "source": "t", "as_of": DAY}],
              "offers": [{"id": "me", "provider": "local", "pricing": "owned", "gpu": "cpu",
                          "provider_gpu_id": "cpu", "price_per_hour": 0, "source": "t",
                          "as_of": DAY}],
              "models": [{"id": "m", "name": "M", "hf_repo": "o/m", "params_b": 0.5,
                          "licence": "t", "context": 8192, "kv_kb_per_token": 20,
                          "quantizations": {"q4_1": {"weight_gb": 0.3, "repo": "o/m-gguf"}},
                          "score": {"value": 40, "benchmark": "t", "source": "t",
                                    "as_of": DAY}, "source": "t", "as_of": DAY}]},
             dict((r, [100000, 10000]) for r in ROLES),
             {"budget": 1.0, "deadline": 1.0, "quality": "draft"})
    problem = _problem(world)
    for objective in OBJECTIVES:
        plan, _met = problem.best(objective)
        assert len(plan) == 1 and plan[0][0] == tuple(ROLES)


@settings(**dict(SETTINGS, max_examples=15))
@given(worlds())
def test_every_tradeoff_applied_fits(world):
    data, tokens, limits = world
    catalog = load_catalog(bundled=False, data=[BASE, data])
    features = [{"name": "core", "description": "core", "priority": "must"},
                {"name": "nice", "description": "nice", "priority": "could"},
                {"name": "good", "description": "good", "priority": "should"}]
    bp = {"project": {"name": "prop", "description": "random"}, "features": features,
          "constraints": {"budget_usd": limits["budget"], "deadline_hours": limits["deadline"],
                          "quality": limits["quality"], "providers": ["runpod", "vast"]}}
    tasks = []
    for index, role in enumerate(ROLES):
        feature = ("core", "nice", "good", "core")[index]
        tasks.append({"role": role, "feature": feature, "title": role, "complexity": "low",
                      "input_tokens": tokens[role][0] + 10, "output_tokens": tokens[role][1] + 1})
    intent = {"source": "file", "tasks": tasks, "cost_drivers": [
        {"feature": "nice", "share": 0.3}, {"feature": "good", "share": 0.2}]}
    try:
        plan = build_plan(bp, intent, catalog, generated_at="2026-12-01T00:00:00Z")
    except Exception as exc:   # no offer of the allowed providers fits: nothing to trade
        assert "no catalog" in str(exc)
        return
    for tradeoff in plan["tradeoffs"]:
        if tradeoff["kind"] == "none":
            assert not tradeoff["fits"]
            continue
        changed = dict(bp, constraints=dict(bp["constraints"]))
        for key, value in tradeoff["changes"].items():
            if key == "drop_features":
                assert all(f["priority"] != "must" for f in features if f["name"] in value)
                changed["features"] = [f for f in features if f["name"] not in value]
            else:
                changed["constraints"][key] = value
        kept = set(f["name"] for f in changed["features"])
        trial_intent = dict(intent, tasks=[t for t in tasks if t["feature"] in kept])
        again = build_plan(changed, trial_intent, catalog, generated_at="2026-12-01T00:00:00Z")
        assert again["fits"], tradeoff
        assert again["tradeoffs"] == []
