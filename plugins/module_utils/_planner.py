# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner: blueprint + intent + catalog -> the priced plan (docs/plan-format.md).

The cost model is documented in docs/cost-model.md. In short, for every allowed offer x model x
quantization whose weights + KV cache fit in VRAM x utilisation:

    decode  = efficiency x bandwidth / active weight bytes   (x batching for the aggregate)
    prefill = mfu x FP16 FLOPs / (2 x active parameters)
    work    = rework(quality) x (output / decode + input x (1 - prefix cache hit) / prefill)
    hours   = (work x (1 + interruption) + cold start) / 3600
    cost    = max(hours, min billing) x price per GPU x count + setup fee

Roles are assigned by trying every way of sharing deployments between the four roles (15 set
partitions) over each role's best candidates, so a shared deployment wins when one cold start
and one rental are cheaper than two.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import heapq
import re

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)

ROLES = ("architect", "coder", "debugger", "reviewer")
QUALITY_ORDER = ("draft", "standard", "high")
OBJECTIVES = ("balanced", "cheapest", "fastest", "best_quality")
_QUALITY_MISS = 10.0   # score penalty per role under the quality threshold: a soft constraint
_TOP_K = 12


class PlanError(Exception):
    """Planning is impossible (e.g. no offer can serve any model); the message says why."""


class Option(object):
    """One (offer, model, quantization) that fits, with its derived rates."""

    __slots__ = ("offer", "group", "gpu", "model", "quant_id", "quant", "weight_gb", "engine",
                 "max_model_len", "decode", "agg_decode", "prefill", "quality", "rework", "spo",
                 "spi", "cold_s", "price", "min_billing", "setup", "interrupt", "measured",
                 "batching", "ttft_tokens")

    def set_rates(self, decode, prefill, batching, prefix_cache_hit):
        """Single-stream decode and prefill (tok/s) -> the per-token seconds the cost uses."""
        self.decode, self.prefill = decode, prefill
        self.agg_decode = decode * batching
        self.spo = 1.0 / self.agg_decode
        self.spi = (1.0 - prefix_cache_hit) / prefill

    @classmethod
    def from_plan(cls, deployment, decode_tok_s=None, prefill_tok_s=None):
        """The pricing of a plan deployment (its ``cost_terms``), optionally at other rates:
        what calibration uses to re-price a deployment with measured throughput."""
        terms = deployment.get("cost_terms")
        if not terms:
            raise PlanError("deployment %s has no cost_terms (the plan predates them); "
                            "fix: re-plan with this collection" % deployment.get("name"))
        opt = cls()
        opt.set_rates(decode_tok_s or terms["decode_tok_s"],
                      prefill_tok_s or terms["prefill_tok_s"],
                      terms["batching_factor"], terms["prefix_cache_hit"])
        opt.rework, opt.interrupt = terms["rework"], terms["interruption_overhead"]
        opt.cold_s, opt.price = terms["cold_start_s"], terms["price_per_hour_usd"]
        opt.min_billing, opt.setup = terms["min_billing_hours"], terms["setup_fee_usd"]
        return opt

    def seconds(self, tokens_in, tokens_out):
        return self.rework * (tokens_out * self.spo + tokens_in * self.spi)

    def block(self, tokens_in, tokens_out):
        """(hours, cost_usd) to serve this much work on one deployment of this option."""
        work = self.seconds(tokens_in, tokens_out) * (1.0 + self.interrupt)
        hours = (work + self.cold_s) / 3600.0
        billed = hours if hours > self.min_billing else self.min_billing
        return hours, billed * self.price + self.setup


def _allowed_offers(catalog, constraints, params, providers=None):
    providers = set(providers or constraints.providers)
    countries = None
    if constraints.residency:
        key = constraints.residency.strip().lower()
        if key in params.residency_groups:
            countries = set(params.residency_groups[key])
        elif len(key) == 2 and key.isalpha():
            countries = {key.upper()}
        else:
            raise PlanError("blueprint field 'constraints.residency': unknown residency '%s'; "
                            "fix: use a two-letter country code or one of %s"
                            % (constraints.residency, sorted(params.residency_groups)))
    region = (constraints.region or "").strip().lower()
    for offer in catalog.offers.values():
        if offer.provider not in providers:
            continue
        if offer.provider != "local":   # owned hardware sits wherever the user is
            if countries is not None and offer.country not in countries:
                continue
            if region and not (offer.region.lower().startswith(region)
                               or (offer.country or "").lower() == region):
                continue
        yield offer


def _economics(offer, price, catalog, params):
    """What makes one offer of a GPU type cheaper or slower than another (lower is better)."""
    cold = catalog.cold_start[offer.provider]
    return (price, cold.scheduling_s + cold.image_pull_s,
            8.0 / cold.download_gbps if cold.download_gbps else 0.0, 1.0 / cold.load_gb_per_s,
            params.interruption_overhead.get(offer.pricing, 0.0), offer.min_billing_hours,
            catalog.usd(offer.setup_fee, offer.currency))


def _undominated(groups, catalog):
    """Drop groups that another group of the same GPU type and count beats on every economic
    term: they can never win for any workload or objective (same speed and quality)."""
    params = catalog.cost_model["default"]
    by_hardware = {}
    for key, members in groups.items():
        members.sort()   # (price, unique id, offer): cheapest first, never compares offers
        econ = _economics(members[0][2], members[0][0], catalog, params)
        by_hardware.setdefault((key[2], key[3]), []).append((econ, key))
    kept = {}
    for entries in by_hardware.values():
        entries.sort()
        front = []
        for econ, key in entries:
            if any(all(a <= b for a, b in zip(other, econ)) for other in front):
                continue
            front.append(econ)
            kept[key] = groups[key]
    return kept


def enumerate_options(catalog, constraints, providers=None):
    """Every fitting Option for the allowed offers; the cheapest offer of each (provider,
    pricing, GPU, count) group stands for the group, the others are capacity fallbacks."""
    params = catalog.cost_model["default"]
    groups = {}
    rates = dict((key, c.usd_per_unit) for key, c in catalog.currencies.items())
    for offer in _allowed_offers(catalog, constraints, params, providers):
        key = (offer.provider, offer.pricing, offer.gpu, offer.count)
        price = offer.price_per_hour * rates[offer.currency]
        if key in groups:
            groups[key].append((price, offer.id, offer))
        else:
            groups[key] = [(price, offer.id, offer)]
    groups = _undominated(groups, catalog)
    context_need = max(params.role_context.values())
    util = params.gpu_memory_utilization
    options = []
    rejected = 0
    for members in groups.values():
        price, _unused, offer = members[0]
        gpu = catalog.gpus[offer.gpu]
        cold = catalog.cold_start[offer.provider]
        count = offer.count
        scale = 1.0 + (count - 1) * params.multi_gpu_efficiency
        memory = gpu.vram_gb * count * util - params.overhead_gb
        batching = params.batching_factor if gpu.kind == "gpu" else 1.0
        interrupt = params.interruption_overhead.get(offer.pricing, 0.0)
        group = [m[2] for m in members]
        for model in catalog.models.values():
            ctx = min(context_need, model.context)
            kv_gb = model.kv_kb_per_token * 1024.0 * ctx * params.concurrent_sequences / 1e9
            active = (model.active_params_b or model.params_b) / model.params_b
            for quant_id, weights in model.quantizations.items():
                if model.weights(quant_id)[0] is None:
                    continue  # no repository holds these weights: nothing to serve
                quant = catalog.quantizations[quant_id]
                if (quant.engine == "llamacpp") != (gpu.kind == "cpu") or \
                        (quant.needs_fp8 and not gpu.fp8):
                    continue
                if weights.weight_gb + kv_gb > memory:
                    rejected += 1
                    continue
                opt = Option()
                opt.offer, opt.group, opt.gpu, opt.model = offer, group, gpu, model
                opt.quant_id, opt.quant, opt.weight_gb = quant_id, quant, weights.weight_gb
                opt.engine, opt.max_model_len = quant.engine, ctx
                measured = catalog.measurement_for(offer, model.id, quant_id)
                opt.measured = measured is not None
                decode = (params.decode_efficiency * gpu.bandwidth_gbs * scale
                          / (weights.weight_gb * active))
                prefill = (params.prefill_mfu * gpu.fp16_tflops * scale * 1e3
                           / (2.0 * model.params_b * active))
                if measured is not None:
                    # a calibration run measures decode only: then the modelled prefill stays
                    decode = measured.decode_tok_s
                    prefill = measured.prefill_tok_s or prefill
                opt.batching, opt.ttft_tokens = batching, params.ttft_prompt_tokens
                opt.set_rates(decode, prefill, batching, params.prefix_cache_hit)
                opt.quality = max(0.0, model.score.value - quant.penalty)
                opt.rework = 1.0 + params.rework_per_point * max(
                    0.0, params.rework_reference_score - opt.quality)
                download = (weights.weight_gb * 8.0 / cold.download_gbps
                            if cold.download_gbps else 0.0)
                opt.cold_s = (cold.scheduling_s + cold.image_pull_s + download
                              + weights.weight_gb / cold.load_gb_per_s
                              + catalog.engines[quant.engine].init_s)
                opt.price = price * count
                opt.min_billing = offer.min_billing_hours
                opt.setup = catalog.usd(offer.setup_fee, offer.currency)
                opt.interrupt = interrupt
                options.append(opt)
    return options, rejected


class _Solver(object):
    """Assign roles to deployments for one token workload and one objective.

    Single-role rankings run over every option with the option rates held in flat lists
    (this is the hot loop of the planner); shared deployments are only tried over the union
    of each role's best candidates.
    """

    def __init__(self, options, role_tokens, params, budget_usd, deadline_h, quality):
        self.options = options
        self.tokens = role_tokens
        self.params = params
        self.budget = budget_usd
        self.deadline = deadline_h
        self.threshold = params.quality_thresholds[quality]
        self._columns = None
        self._tables = {}

    def _cols(self):
        if self._columns is None:
            opts = self.options
            self._columns = (
                [o.rework * (1.0 + o.interrupt) * o.spo for o in opts],
                [o.rework * (1.0 + o.interrupt) * o.spi for o in opts],
                [o.cold_s for o in opts],
                [o.price for o in opts],
                [o.min_billing for o in opts],
                [o.setup for o in opts],
                [o.quality for o in opts],
            )
        return self._columns

    def _table(self, role):
        """(hours, cost) of every option serving this role alone."""
        if role not in self._tables:
            spo, spi, cold, price, minb, setup, _q = self._cols()
            tin, tout = self.tokens[role]
            hours = [(tout * a + tin * b + c) / 3600.0 for a, b, c in zip(spo, spi, cold)]
            cost = [(h if h > m else m) * p + s for h, m, p, s in zip(hours, minb, price, setup)]
            self._tables[role] = (hours, cost)
        return self._tables[role]

    def _scores(self, objective, role):
        hours, cost = self._table(role)
        quality = self._cols()[6]
        thr = self.threshold
        if objective == "cheapest":
            return [c + h * 1e-6 + (1e6 if q < thr else 0.0)
                    for h, c, q in zip(hours, cost, quality)]
        if objective == "fastest":
            return [h + c * 1e-6 + (1e6 if q < thr else 0.0)
                    for h, c, q in zip(hours, cost, quality)]
        if objective == "best_quality":
            return [c * 1e-6 - q for c, q in zip(cost, quality)]
        weight = self.params.role_quality_weight.get(role, 0.0) / 100.0
        inv_b = 1.0 / self.budget
        dl = self.params.deadline_weight / self.deadline
        return [c * inv_b + h * dl - weight * q + (_QUALITY_MISS if q < thr else 0.0)
                for h, c, q in zip(hours, cost, quality)]

    def score(self, objective, roles, opt, hours, cost):
        # cheapest / fastest: among the options that meet the quality threshold when any do
        miss = len(roles) * 1e6 if opt.quality < self.threshold else 0.0
        if objective == "cheapest":
            return cost + hours * 1e-6 + miss
        if objective == "fastest":
            return hours + cost * 1e-6 + miss
        if objective == "best_quality":
            return -opt.quality * len(roles) + cost * 1e-6
        weights = self.params.role_quality_weight
        value = cost / self.budget + self.params.deadline_weight * hours / self.deadline
        for role in roles:
            value -= weights.get(role, 0.0) * opt.quality / 100.0
            if opt.quality < self.threshold:
                value += _QUALITY_MISS
        return value

    def evaluate(self, objective, roles, opt):
        tin = sum(self.tokens[r][0] for r in roles)
        tout = sum(self.tokens[r][1] for r in roles)
        hours, cost = opt.block(tin, tout)
        return self.score(objective, roles, opt, hours, cost), hours, cost

    def ranked(self, objective, roles, candidates, limit):
        scored = []
        for index, opt in enumerate(candidates):
            value, hours, cost = self.evaluate(objective, roles, opt)
            scored.append((value, index, opt, hours, cost))
        return heapq.nsmallest(limit, scored, key=lambda item: (item[0], item[1]))

    def best_single(self, objective, role, limit):
        scores = self._scores(objective, role)
        if len(scores) > limit:
            # the limit-th smallest score via C sort, then only the few indices under it
            kth = sorted(scores)[limit - 1]
            picked = [i for i, value in enumerate(scores) if value <= kth]
        else:
            picked = range(len(scores))
        picked = sorted(picked, key=lambda i: (scores[i], i))[:limit]
        return [self.options[i] for i in picked]

    def solve(self, objective):
        candidates = []
        seen = set()
        for role in ROLES:
            for opt in self.best_single(objective, role, _TOP_K):
                if id(opt) not in seen:
                    seen.add(id(opt))
                    candidates.append(opt)
        best_for = {}
        for subset in _subsets(ROLES):
            best_for[subset] = self.ranked(objective, subset, candidates, 1)[0]
        best = None
        for partition in _partitions(list(ROLES)):
            values = [best_for[tuple(block)][0] for block in partition]
            # deployments run in parallel: wall time is the slowest one's
            total = max(values) + 1e-6 * sum(values) if objective == "fastest" else sum(values)
            if best is None or total < best[0] - 1e-12:
                best = (total, partition)
        blocks = []
        for block in best[1]:
            value, _unused, opt, hours, cost = best_for[tuple(block)]
            blocks.append({"roles": tuple(block), "option": opt, "hours": hours, "cost": cost,
                           "score": value})
        return blocks, candidates


def _subsets(roles):
    out = []
    for mask in range(1, 1 << len(roles)):
        out.append(tuple(r for i, r in enumerate(roles) if mask & (1 << i)))
    return out


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _partitions(rest):
        for index in range(len(smaller)):
            yield smaller[:index] + [[first] + smaller[index]] + smaller[index + 1:]
        yield [[first]] + smaller


def _role_tokens(tasks, skip_features=()):
    tokens = dict((role, [0, 0]) for role in ROLES)
    for task in tasks:
        if task["feature"] in skip_features:
            continue
        tokens[task["role"]][0] += int(task["input_tokens"])
        tokens[task["role"]][1] += int(task["output_tokens"])
    return tokens


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _r(value, digits=2):
    return round(float(value), digits)


def _option_doc(opt, offer=None):
    offer = offer or opt.offer
    return {
        "provider": offer.provider,
        "offer_id": offer.id,
        "pricing": offer.pricing,
        "gpu": {"name": opt.gpu.name, "id": opt.gpu.id, "provider_id": offer.provider_gpu_id,
                "count": offer.count, "vram_gb": opt.gpu.vram_gb},
        "region": offer.region,
        "country": offer.country,
        "price_per_hour_usd": _r(opt.price, 4),
        "model": {
            "key": opt.model.id,
            "name": opt.model.name,
            "hf_repo": opt.model.weights(opt.quant_id)[0],
            "revision": opt.model.weights(opt.quant_id)[1],
            "gated": opt.model.weights(opt.quant_id)[2],
            "quantization": opt.quant_id,
            "vllm_quantization": opt.quant.vllm_quantization,
            "weight_gb": opt.weight_gb,
            "max_model_len": opt.max_model_len,
            "licence": opt.model.weights(opt.quant_id)[3],
        },
        "engine": opt.engine,
        "quality_score": _r(opt.quality, 1),
        "throughput_tok_s": _r(opt.agg_decode, 1),
        "single_stream_tok_s": _r(opt.decode, 1),
        "prefill_tok_s": _r(opt.prefill, 1),
        "throughput_source": "measured" if opt.measured else "roofline",
        "ttft_s": _r(predicted_ttft_s(opt.prefill, opt.decode, opt.ttft_tokens), 3),
        "ttft_prompt_tokens": opt.ttft_tokens,
        "cold_start_s": int(round(opt.cold_s)),
    }


def predicted_ttft_s(prefill_tok_s, decode_tok_s, prompt_tokens):
    """Time to first token of one uncached request: its prompt's prefill plus one decode step."""
    return prompt_tokens / float(prefill_tok_s) + 1.0 / float(decode_tok_s)


def reprice_deployment(plan, deployment, decode_tok_s=None, prefill_tok_s=None):
    """(hours, cost_usd) of a plan deployment's work at other single-stream decode / prefill
    rates (None keeps the planned one), by the planner's own Option.block."""
    tokens = [plan["roles"][role]["tokens"] for role in deployment["roles"]]
    opt = Option.from_plan(deployment, decode_tok_s, prefill_tok_s)
    return opt.block(sum(t["input"] for t in tokens), sum(t["output"] for t in tokens))


def _cost_terms(opt, params):
    """Everything Option.from_plan needs to price this deployment again at other rates."""
    return {
        "decode_tok_s": _r(opt.decode, 6), "prefill_tok_s": _r(opt.prefill, 6),
        "batching_factor": opt.batching, "prefix_cache_hit": params.prefix_cache_hit,
        "rework": _r(opt.rework, 6), "interruption_overhead": opt.interrupt,
        "cold_start_s": _r(opt.cold_s, 3), "price_per_hour_usd": _r(opt.price, 6),
        "min_billing_hours": opt.min_billing, "setup_fee_usd": _r(opt.setup, 6),
    }


def _describe_option(opt):
    return "%s %s on %dx %s (%s %s, $%.2f/h)" % (
        opt.model.name, opt.quant_id, opt.offer.count, opt.gpu.name, opt.offer.provider,
        opt.offer.pricing, opt.price)


class _Context(object):
    currency = "USD"
    usd_per_eur = 1.0

    def money(self, usd):
        """An amount in the blueprint's currency, for sentences."""
        if self.currency == "EUR":
            return "EUR %.2f" % (usd / self.usd_per_eur)
        return "USD %.2f" % usd


def _weighted_quality(params, blocks):
    """Role-weighted mean quality (architect/reviewer count more than coder/debugger)."""
    weights = params.role_quality_weight
    total = sum(weights.get(r, 0.0) for b in blocks for r in b["roles"]) or 1.0
    return sum(weights.get(r, 0.0) * b["option"].quality for b in blocks for r in b["roles"]) \
        / total


def _summarise(ctx, blocks, label):
    hours = max(b["hours"] for b in blocks)
    cost = sum(b["cost"] for b in blocks)
    lowest = min(b["option"].quality for b in blocks)
    return {
        "label": label,
        "cost_usd": _r(cost, 2),
        "hours": _r(hours, 2),
        "quality_score": _r(_weighted_quality(ctx.params, blocks), 1),
        "min_quality_score": _r(lowest, 1),
        "fits_budget": cost <= ctx.budget_usd + 1e-9,
        "meets_deadline": hours <= ctx.deadline + 1e-9,
        "meets_quality": lowest >= ctx.threshold,
        "deployments": ["%s: %s" % ("+".join(b["roles"]), _describe_option(b["option"]))
                        for b in blocks],
    }


def _pareto(ctx, named, candidates):
    """Named plans plus every 'all roles on one deployment' point; flag the non-dominated."""
    points = [dict(plan, kind=label) for label, plan in named]
    for opt in candidates:
        hours, cost = opt.block(ctx.total_in, ctx.total_out)
        blocks = [{"roles": ROLES, "option": opt, "hours": hours, "cost": cost}]
        points.append(dict(_summarise(ctx, blocks, "single deployment"), kind="single"))

    def dominated(p, q):
        return (q["cost_usd"] <= p["cost_usd"] and q["hours"] <= p["hours"]
                and q["quality_score"] >= p["quality_score"]
                and (q["cost_usd"], q["hours"], q["quality_score"])
                != (p["cost_usd"], p["hours"], p["quality_score"]))
    for point in points:
        point["pareto_optimal"] = not any(dominated(point, other) for other in points)
    keep = [p for p in points if p["kind"] != "single" or p["pareto_optimal"]]
    named_part = [p for p in keep if p["kind"] != "single"]
    singles = sorted((p for p in keep if p["kind"] == "single"),
                     key=lambda p: (p["cost_usd"], p["hours"]))
    seen = set((p["cost_usd"], p["hours"], p["quality_score"]) for p in named_part)
    out = list(named_part)
    for point in singles:
        key = (point["cost_usd"], point["hours"], point["quality_score"])
        if key not in seen and len(out) < 12:
            seen.add(key)
            out.append(point)
    return out


def _tradeoffs(ctx, chosen, plans, features):
    out = []
    cost = sum(b["cost"] for b in chosen)
    hours = max(b["hours"] for b in chosen)
    budget_ok = cost <= ctx.budget_usd + 1e-9
    if not budget_ok:
        # 1. drop could, then should features, biggest cost share first, until it fits
        order = sorted((f for f in features if f["priority"] == "could"),
                       key=lambda f: -f["share"])
        order += sorted((f for f in features if f["priority"] == "should"),
                        key=lambda f: -f["share"])
        dropped = []
        result = None
        for feature in order:
            dropped.append(feature["name"])
            tokens = _role_tokens(ctx.tasks, set(dropped))
            solver = _Solver(ctx.options, tokens, ctx.params, ctx.budget_usd, ctx.deadline,
                             ctx.quality)
            blocks, _unused = solver.solve("balanced")
            result = (sum(b["cost"] for b in blocks), max(b["hours"] for b in blocks))
            if result[0] <= ctx.budget_usd:
                break
        if dropped:
            fits = result[0] <= ctx.budget_usd
            out.append({
                "kind": "drop_features",
                "features": dropped,
                "cost_usd": _r(result[0]),
                "hours": _r(result[1]),
                "fits_budget": fits,
                "summary": ("Drop %s to fit the budget: the plan then costs %s (%.1f h)."
                            if fits else
                            "Even without %s the plan costs %s (%.1f h): more is needed.")
                % (", ".join("'%s'" % name for name in dropped), ctx.money(result[0]),
                   result[1]),
            })
        else:
            out.append({"kind": "drop_features", "features": [], "fits_budget": False,
                        "summary": "Every feature is a must: no feature can be dropped."})
        # 2. the cheapest plan: which cheaper GPU, and how many hours the budget buys there
        for block in plans["cheapest"]:
            opt = block["option"]
            affordable = ctx.budget_usd / opt.price if opt.price > 0 else None
            out.append({
                "kind": "cheaper_gpu",
                "roles": list(block["roles"]),
                "option": _option_doc(opt),
                "hours_needed": _r(block["hours"]),
                "hours_affordable": _r(affordable) if affordable is not None else None,
                "cost_usd": _r(block["cost"]),
                "meets_quality": opt.quality >= ctx.threshold,
                "summary": "%s on %s: needs %.1f h (%s); the whole budget buys %s of it%s."
                % ("+".join(block["roles"]), _describe_option(opt), block["hours"],
                   ctx.money(block["cost"]),
                   ("%.1f h" % affordable) if affordable is not None else "unlimited hours",
                   "" if opt.quality >= ctx.threshold else
                   " (quality %.1f, below the '%s' threshold %g)"
                   % (opt.quality, ctx.quality, ctx.threshold)),
            })
    if hours > ctx.deadline + 1e-9:
        fast = plans["fastest"]
        fast_hours = max(b["hours"] for b in fast)
        out.append({
            "kind": "faster_gpu",
            "hours": _r(fast_hours),
            "cost_usd": _r(sum(b["cost"] for b in fast)),
            "deployments": ["%s: %s" % ("+".join(b["roles"]), _describe_option(b["option"]))
                            for b in fast],
            "meets_deadline": fast_hours <= ctx.deadline,
            "summary": "Fastest option: %.1f h for %s using %s." % (
                fast_hours, ctx.money(sum(b["cost"] for b in fast)),
                "; ".join("%s on %s" % ("+".join(b["roles"]), _describe_option(b["option"]))
                          for b in fast)),
        })
    for block in chosen:
        opt = block["option"]
        if opt.quality >= ctx.threshold:
            continue
        tin = sum(ctx.tokens[r][0] for r in block["roles"])
        tout = sum(ctx.tokens[r][1] for r in block["roles"])
        best = None
        for pool, note in ((ctx.options, ""), (ctx.all_options, " (needs a provider that the "
                                                                "blueprint does not allow)")):
            for cand in pool:
                if cand.quality < ctx.threshold:
                    continue
                c_hours, c_cost = cand.block(tin, tout)
                if best is None or c_cost < best[2]:
                    best = (cand, c_hours, c_cost, note)
            if best is not None:
                break
        if best is None:
            out.append({"kind": "quality_upgrade", "roles": list(block["roles"]),
                        "summary": "No catalog option reaches quality '%s' (%g) for %s."
                        % (ctx.quality, ctx.threshold, "+".join(block["roles"]))})
            continue
        cand, c_hours, c_cost, note = best
        out.append({
            "kind": "quality_upgrade",
            "roles": list(block["roles"]),
            "option": _option_doc(cand),
            "hours": _r(c_hours),
            "cost_usd": _r(c_cost),
            "extra_cost_usd": _r(c_cost - block["cost"]),
            "summary": "For quality '%s' run %s on %s: score %.1f instead of %.1f, %.1f h, "
                       "%s (%s more)%s." % (ctx.quality, "+".join(block["roles"]),
                                            _describe_option(cand), cand.quality, opt.quality,
                                            c_hours, ctx.money(c_cost),
                                            ctx.money(c_cost - block["cost"]), note),
        })
    return out


def _alternatives(ctx, block, candidates, limit):
    opt = block["option"]
    tin = sum(ctx.tokens[r][0] for r in block["roles"])
    tout = sum(ctx.tokens[r][1] for r in block["roles"])
    out = []
    used = {opt.offer.id}
    for offer in opt.group[1:2]:   # same GPU and model, next offer of the same kind
        doc = _option_doc(opt, offer)
        doc["price_per_hour_usd"] = _r(ctx.catalog.usd(offer.price_per_hour, offer.currency)
                                       * offer.count, 4)
        doc["reason"] = "same GPU type, next offer"
        out.append(doc)
        used.add(offer.id)
    solver = ctx.solver
    ranked = solver.ranked("balanced", block["roles"], candidates, len(candidates))
    for _value, _index, cand, hours, cost in ranked:
        if len(out) >= limit:
            break
        if cand.offer.id in used:
            continue
        used.add(cand.offer.id)
        doc = _option_doc(cand)
        doc.update({"reason": "next best option", "hours": _r(hours), "cost_usd": _r(cost)})
        out.append(doc)
    return out


def build_plan(blueprint, intent, catalog, **options):
    """Price every option and return the plan.json mapping (docs/plan-format.md).

    Options: ``usd_per_eur`` (overrides the catalog's EUR rate), ``generated_at`` (ISO time,
    default now), ``max_alternatives`` (3).
    """
    if isinstance(blueprint, dict):
        blueprint = validate_blueprint(blueprint)
    constraints = blueprint.constraints
    params = catalog.cost_model["default"]
    eur = catalog.currencies.get("EUR")
    usd_per_eur = float(options.get("usd_per_eur") or (eur.usd_per_unit if eur else 0) or 0)
    if usd_per_eur <= 0:
        raise PlanError("no EUR exchange rate: add currency 'EUR' to the catalog or pass "
                        "usd_per_eur")
    if constraints.budget_usd is not None:
        budget, currency, budget_usd = constraints.budget_usd, "USD", constraints.budget_usd
    else:
        budget, currency = constraints.budget_eur, "EUR"
        budget_usd = constraints.budget_eur * usd_per_eur
    known = set(f.name for f in blueprint.features) | {"(project)"}
    for task in intent["tasks"]:
        if task["role"] not in ROLES or task["feature"] not in known:
            raise PlanError("intent task %r: role must be one of %s and feature one of the "
                            "blueprint's features or '(project)'" % (task.get("title"), ROLES))

    ctx = _Context()
    ctx.catalog, ctx.params = catalog, params
    ctx.currency, ctx.usd_per_eur = currency, usd_per_eur
    ctx.budget_usd, ctx.deadline = budget_usd, constraints.deadline_hours
    ctx.quality = constraints.quality
    ctx.threshold = params.quality_thresholds[constraints.quality]
    ctx.tasks = intent["tasks"]
    ctx.tokens = _role_tokens(ctx.tasks)
    ctx.total_in = sum(t[0] for t in ctx.tokens.values())
    ctx.total_out = sum(t[1] for t in ctx.tokens.values())
    ctx.options, rejected = enumerate_options(catalog, constraints)
    if not ctx.options:
        raise PlanError(
            "no catalog offer can serve any model for providers %s%s%s (%d option(s) too big "
            "for VRAM); fix: allow more providers, relax residency/region, or add offers in a "
            "user catalog" % (", ".join(constraints.providers),
                              " with residency %s" % constraints.residency
                              if constraints.residency else "",
                              " in region %s" % constraints.region if constraints.region else "",
                              rejected))
    ctx.solver = _Solver(ctx.options, ctx.tokens, params, budget_usd, ctx.deadline, ctx.quality)
    plans = {}
    candidates = None
    for objective in OBJECTIVES:
        blocks, found = ctx.solver.solve(objective)
        plans[objective] = blocks
        if objective == "balanced":
            candidates = found
    chosen = plans["balanced"]
    ctx.all_options = ()
    if any(b["option"].quality < ctx.threshold for b in chosen):
        ctx.all_options, _unused = enumerate_options(catalog, constraints, providers=set(
            o.provider for o in catalog.offers.values()))

    deployments = []
    role_docs = {}
    used_names = set()
    for block in chosen:
        opt = block["option"]
        name = _slug("%s-%s-%s-%s" % ("all" if len(block["roles"]) == len(ROLES)
                                      else "-".join(block["roles"]), opt.model.id,
                                      opt.quant_id, opt.gpu.id))[:63].strip("-")
        base, n = name, 2
        while name in used_names:
            name, n = "%s-%d" % (base, n), n + 1
        used_names.add(name)
        doc = {"name": name}
        doc.update(_option_doc(opt))
        work = dict((r, opt.seconds(*ctx.tokens[r]) * (1.0 + opt.interrupt))
                    for r in block["roles"])
        total_work = sum(work.values()) or 1.0
        doc.update({
            "roles": list(block["roles"]),
            "cost_terms": _cost_terms(opt, params),
            "hours": _r(block["hours"], 3),
            "cost_usd": _r(block["cost"], 4),
            "alternatives": _alternatives(ctx, block, candidates,
                                          int(options.get("max_alternatives", 3))),
        })
        deployments.append(doc)
        share_cold = opt.cold_s / len(block["roles"])
        for role in block["roles"]:
            fraction = (work[role] / total_work) if sum(work.values()) else \
                1.0 / len(block["roles"])
            role_docs[role] = {
                "alias": role,
                "deployment": name,
                "tokens": {"input": ctx.tokens[role][0], "output": ctx.tokens[role][1]},
                "hours": _r((work[role] + share_cold) / 3600.0, 3),
                "cost_usd": _r(block["cost"] * fraction, 4),
                "quality_score": _r(opt.quality, 1),
            }
    total_cost = sum(b["cost"] for b in chosen)
    wall = max(b["hours"] for b in chosen)
    gpu_hours = sum(max(b["hours"], b["option"].min_billing) * b["option"].offer.count
                    for b in chosen)
    achieved = min(b["option"].quality for b in chosen)
    achieved_level = None
    for level in QUALITY_ORDER:
        if achieved >= params.quality_thresholds[level]:
            achieved_level = level
    estimate_in_currency = total_cost if currency == "USD" else total_cost / usd_per_eur
    features = []
    shares = dict((d["feature"], d.get("share", 0.0)) for d in intent.get("cost_drivers", []))
    for feature in blueprint.features:
        features.append({"name": feature.name, "priority": feature.priority,
                         "share": shares.get(feature.name, 0.0)})
    named = [(label, _summarise(ctx, plans[key], label)) for label, key in (
        ("chosen", "balanced"), ("cheapest", "cheapest"), ("fastest", "fastest"),
        ("best quality", "best_quality"))]
    generated = options.get("generated_at") or datetime.datetime.now(
        datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    plan = {
        "schema_version": 1,
        "stack_id": "codestack-%s" % blueprint.project.name,
        "generated_at": generated,
        "blueprint": blueprint.model_dump(mode="json"),
        "intent": {
            "source": intent["source"],
            "model": intent.get("model"),
            "reasoning": intent.get("reasoning", ""),
            "tasks": intent["tasks"],
            "cost_drivers": intent.get("cost_drivers", []),
            "notes": intent.get("notes", []),
            "tokens": {"input": ctx.total_in, "output": ctx.total_out},
        },
        "catalog": dict(catalog.summary(), options_considered=len(ctx.options),
                        options_too_big=rejected),
        "roles": dict((role, role_docs[role]) for role in ROLES),
        "deployments": deployments,
        "totals": {
            "hours": _r(wall, 3),
            "gpu_hours": _r(gpu_hours, 3),
            "cost_usd": _r(total_cost, 4),
            "cost_eur": _r(total_cost / usd_per_eur, 4),
            # upper bound when nothing scales to zero: every deployment rented until the deadline
            "always_on_cost_usd": _r(sum(max(ctx.deadline, b["hours"], b["option"].min_billing)
                                         * b["option"].price + b["option"].setup
                                         for b in chosen), 4),
            "usd_per_eur": usd_per_eur,
        },
        "checks": {
            "budget": {"ok": total_cost <= budget_usd + 1e-9, "limit": budget,
                       "estimate": _r(estimate_in_currency, 4), "currency": currency},
            "deadline": {"ok": wall <= ctx.deadline + 1e-9, "limit_hours": ctx.deadline,
                         "estimate_hours": _r(wall, 3)},
            "quality": {"ok": achieved >= ctx.threshold, "required": ctx.quality,
                        "required_score": ctx.threshold, "achieved": achieved_level,
                        "achieved_score": _r(achieved, 1)},
        },
        "pareto": _pareto(ctx, named, candidates),
        "tradeoffs": [],
    }
    plan["fits"] = all(check["ok"] for check in plan["checks"].values())
    if not plan["fits"]:
        plan["tradeoffs"] = _tradeoffs(ctx, chosen, plans, features)
    return plan
