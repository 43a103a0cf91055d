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
    cost    = whole billing periods of max(hours, min billing) x price x count + setup fee

The KV cache of a deployment is sized from the roles it serves (their context and
concurrency). Roles are assigned by the exact optimiser in ``_optimiser.py`` over every way of
sharing deployments (15 set partitions) and every option: nothing is shortlisted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import itertools
import math
import re

from ansible_collections.llmops.codestack.plugins.module_utils import _billing, _control
from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._optimiser import (
    FALLBACKS,
    Cand,
    Problem,
    subsets,
)

ROLES = ("architect", "coder", "debugger", "reviewer")
QUALITY_ORDER = ("draft", "standard", "high")
OBJECTIVES = ("balanced", "cheapest", "fastest", "best_quality")
_FRONT_POINTS = 8      # Pareto-front points listed in plan.json besides the named plans
_DROP_SETS = 24        # feature subsets re-planned at most when looking for one to drop


class PlanError(Exception):
    """Planning is impossible (e.g. no offer can serve any model); the message says why."""


class Option(object):
    """One (offer, model, quantization) that fits, with its derived rates."""

    __slots__ = ("offer", "group", "gpu", "model", "quant_id", "quant", "weight_gb", "engine",
                 "max_model_len", "max_num_seqs", "decode", "agg_decode", "prefill", "quality", "rework", "spo",
                 "spi", "cold_s", "price", "min_billing", "billing_period", "setup", "interrupt",
                 "measured", "batching", "max_batching", "batching_seqs", "ttft_tokens",
                 "prefix_cache_hit", "kv_tokens", "index", "scaling", "resume_s",
                 "storage_gb", "container_gb")

    def set_rates(self, decode, prefill, batching, prefix_cache_hit):
        """Single-stream decode and prefill (tok/s) -> the per-token seconds the cost uses."""
        self.decode, self.prefill = decode, prefill
        self.batching, self.prefix_cache_hit = batching, prefix_cache_hit
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
        opt.billing_period = terms.get("billing_period_hours", 0.0)
        opt.scaling = terms.get("scaling")
        if opt.scaling:
            opt.resume_s = opt.scaling["resume_s"]
            opt.storage_gb = opt.scaling["storage_gb"]
            opt.container_gb = float(opt.scaling.get("container_disk_gb") or 0.0)
        return opt

    def batching_for(self, seqs):
        """Aggregate decode over single-stream decode with ``seqs`` concurrent sequences:
        1 for one sequence, rising linearly to the catalog's batching_factor at
        concurrent_sequences (and no further)."""
        if self.max_batching <= 1.0 or self.batching_seqs <= 1:
            return self.max_batching if seqs >= self.batching_seqs else 1.0
        used = min(seqs, self.batching_seqs)
        return 1.0 + (self.max_batching - 1.0) * (used - 1) / float(self.batching_seqs - 1)

    def seconds(self, tokens_in, tokens_out, batching=None):
        """Seconds of work (before interruptions) for this many tokens."""
        batching = self.batching if batching is None else batching
        return self.rework * (tokens_out / (self.decode * batching) + tokens_in * self.spi)

    def billed_cost(self, hours):
        """What the provider charges for a deployment up for ``hours``: its minimum billing,
        whole billing periods, the setup fee. The one place billing terms apply."""
        billed = hours if hours > self.min_billing else self.min_billing
        period = self.billing_period
        if period:
            billed = math.ceil(billed / period - 1e-9) * period
        return billed * self.price + self.setup

    def block(self, tokens_in, tokens_out, batching=None, billing=None, roles=()):
        """(hours, cost_usd) to serve this much work on one deployment of this option: the
        cost of a deployment, used for every block the optimiser prices. With ``billing`` (a
        ``Billing``: deadline, usage, per-role scaling) the cost is what the provider bills
        under the deployment's scaling policy; without it, the work alone."""
        batching = self.batching if batching is None else batching
        work = self.rework * (tokens_out / (self.decode * batching) + tokens_in * self.spi) \
            * (1.0 + self.interrupt)
        hours = (work + self.cold_s) / 3600.0
        if billing is None:
            return hours, self.billed_cost(hours)
        return hours, self._bill(work, billing, roles)["cost_usd"]

    def _bill(self, work_s, billing, roles, idle=None):
        """``_billing.bill`` of this deployment (the priced half of ``billed``: the optimiser
        calls it for every option and block, so the per-role policy comes from a cache)."""
        sc = self.scaling or {}
        mode = sc.get("mode", "always_on")
        if idle is None:
            idle = 0 if mode == "always_on" else billing.role_policy(
                roles, sc.get("idle_timeout_s", 0), sc.get("wake_policy", "wait"))[0]
        return _billing.bill(
            mode, work_s, self.cold_s, self.resume_s, int(idle),
            _billing.expected_wakes(mode, billing.window_h, work_s / 3600.0, billing.usage),
            billing.window_h, self.price, self.min_billing, self.billing_period, self.setup,
            self.storage_gb, _billing.gb_hour(sc.get("storage_running_usd_per_gb_month", 0.0)),
            _billing.gb_hour(sc.get("storage_stopped_usd_per_gb_month", 0.0)),
            self.container_gb)

    def policy(self, billing, roles, work_s):
        """The deployment's ``scaling`` (plan.json contract) for these roles and work."""
        sc = self.scaling or {}
        mode = sc.get("mode", "always_on")
        idle, wake_policy = billing.role_policy(roles, sc.get("idle_timeout_s", 0),
                                                sc.get("wake_policy", "wait"))
        if mode == "always_on":
            idle = 0
        start = self.resume_s if mode == "idle_stop" else self.cold_s
        return {"mode": mode, "idle_timeout_s": int(idle),
                "expected_wakes": _billing.expected_wakes(mode, billing.window_h,
                                                          work_s / 3600.0, billing.usage),
                "wake_policy": wake_policy,
                "wake_timeout_s": _billing.wake_timeout_s(
                    start, sc.get("wake_timeout_factor", 1.5),
                    sc.get("wake_timeout_margin_s", 30))}

    def billed(self, work_s, billing, roles):
        """(scaling, bill) of a deployment doing ``work_s`` of active compute over the
        deadline (``_billing.bill``)."""
        scaling = self.policy(billing, roles, work_s)
        return scaling, self._bill(work_s, billing, roles, scaling["idle_timeout_s"])


class Billing(object):
    """What the billed cost of every deployment of one plan depends on besides its option:
    the window it is rented for (the deadline), the usage model, per-role scaling."""

    __slots__ = ("window_h", "usage", "overrides", "_policies")

    def __init__(self, window_h, usage=None, overrides=None):
        self.window_h = float(window_h)
        self.usage = _billing.usage_of(usage)
        self.overrides = overrides or {}
        self._policies = {}

    def role_policy(self, roles, default_idle_s, default_policy):
        """``_billing.role_policy`` for these roles, computed once per plan."""
        key = (tuple(roles), default_idle_s, default_policy)
        found = self._policies.get(key)
        if found is None:
            found = self._policies[key] = _billing.role_policy(
                roles, self.overrides, default_idle_s, default_policy)
        return found

    @classmethod
    def of(cls, blueprint, deadline_h=None):
        """From a validated blueprint (its usage block and constraints.scaling)."""
        scaling = blueprint.constraints.scaling
        overrides = dict((role, value) for role, value in
                         (scaling.model_dump() if scaling is not None else {}).items()
                         if value)
        return cls(blueprint.constraints.deadline_hours if deadline_h is None else deadline_h,
                   blueprint.usage.model_dump(), overrides)


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


def _billing_terms(offer, catalog):
    return (offer.min_billing_hours, offer.billing_period_hours,
            catalog.usd(offer.setup_fee, offer.currency))


def _economics(offer, price, catalog, params):
    """What makes one offer of a GPU type cheaper or slower than another (lower is better)."""
    cold = catalog.cold_start[offer.provider]
    return (price, cold.scheduling_s + cold.image_pull_s,
            8.0 / cold.download_gbps if cold.download_gbps else 0.0, 1.0 / cold.load_gb_per_s,
            params.interruption_overhead.get(offer.pricing, 0.0)) + _billing_terms(offer, catalog)


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


def role_needs(params):
    """{role: (context tokens, concurrent sequences)} from the cost model."""
    return dict((role, (params.role_context[role], params.role_concurrency.get(role, 1)))
                for role in ROLES)


def serving_for(opt, roles, needs):
    """(max_model_len, max_num_seqs) of a deployment of ``opt`` serving ``roles``, or None
    when that KV cache does not fit next to the weights."""
    context = min(max(needs[r][0] for r in roles), opt.model.context)
    seqs = sum(needs[r][1] for r in roles)
    if context * seqs > opt.kv_tokens:
        return None
    return context, seqs


def enumerate_options(catalog, constraints, providers=None):
    """Every Option for the allowed offers whose weights fit with the KV cache of at least
    one role; the cheapest offer of each (provider, pricing, GPU, count, billing terms) group
    stands for the group, the others are capacity fallbacks."""
    params = catalog.cost_model["default"]
    groups = {}
    rates = dict((key, c.usd_per_unit) for key, c in catalog.currencies.items())
    for offer in _allowed_offers(catalog, constraints, params, providers):
        # billing terms are part of the group: a monthly server never stands for hourly ones
        key = (offer.provider, offer.pricing, offer.gpu, offer.count) + \
            _billing_terms(offer, catalog)
        price = offer.price_per_hour * rates[offer.currency]
        if key in groups:
            groups[key].append((price, offer.id, offer))
        else:
            groups[key] = [(price, offer.id, offer)]
    groups = _undominated(groups, catalog)
    needs = role_needs(params)
    smallest = min(needs.values(), key=lambda n: n[0] * n[1])
    util = params.gpu_memory_utilization
    options = []
    rejected = 0
    for gkey in sorted(groups):
        members = groups[gkey]
        price, _unused, offer = members[0]
        gpu = catalog.gpus[offer.gpu]
        cold = catalog.cold_start[offer.provider]
        count = offer.count
        scale = 1.0 + (count - 1) * params.multi_gpu_efficiency
        memory = gpu.vram_gb * count * util - params.overhead_gb
        interrupt = params.interruption_overhead.get(offer.pricing, 0.0)
        group = [m[2] for m in members]
        for model in sorted(catalog.models.values(), key=lambda m: m.id):
            active = (model.active_params_b or model.params_b) / model.params_b
            kv_bytes = model.kv_kb_per_token * 1024.0
            for quant_id in sorted(model.quantizations):
                weights = model.quantizations[quant_id]
                if model.weights(quant_id)[0] is None:
                    continue  # no repository holds these weights: nothing to serve
                quant = catalog.quantizations[quant_id]
                if (quant.engine == "llamacpp") != (gpu.kind == "cpu") or \
                        (quant.needs_fp8 and not gpu.fp8):
                    continue
                kv_tokens = (memory - weights.weight_gb) * 1e9 / kv_bytes
                if min(smallest[0], model.context) * smallest[1] > kv_tokens:
                    rejected += 1
                    continue
                opt = Option()
                opt.offer, opt.group, opt.gpu, opt.model = offer, group, gpu, model
                opt.quant_id, opt.quant, opt.weight_gb = quant_id, quant, weights.weight_gb
                opt.engine, opt.kv_tokens = quant.engine, kv_tokens
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
                opt.max_batching = params.batching_factor if gpu.kind == "gpu" else 1.0
                opt.batching_seqs = params.concurrent_sequences
                opt.ttft_tokens = params.ttft_prompt_tokens
                all_roles = serving_for(opt, ROLES, needs) or \
                    (min(max(n[0] for n in needs.values()), model.context), 1)
                opt.max_model_len, opt.max_num_seqs = all_roles[0], all_roles[1]
                opt.set_rates(decode, prefill, opt.batching_for(all_roles[1]),
                              params.prefix_cache_hit)
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
                opt.billing_period = offer.billing_period_hours
                opt.setup = catalog.usd(offer.setup_fee, offer.currency)
                opt.interrupt = interrupt
                _set_scaling(opt, catalog.scaling.get(offer.provider), cold, download,
                             weights.weight_gb)
                opt.index = len(options)
                options.append(opt)
    from ansible_collections.llmops.codestack.plugins.module_utils._api_planner import (
        api_options,
    )
    options.extend(api_options(catalog, constraints, providers, len(options)))
    return options, rejected


def _set_scaling(opt, entry, cold, download_s, weight_gb):
    """The option's scaling terms (catalog ``scaling``, by provider), the start of a wake
    (what a stopped machine still holds is not pulled again) and the disk it keeps."""
    if entry is None:
        opt.scaling, opt.resume_s, opt.storage_gb, opt.container_gb = None, opt.cold_s, 0.0, 0.0
        return
    opt.scaling = entry.model_dump(mode="json", exclude={"id", "source", "as_of"})
    opt.resume_s = opt.cold_s
    if entry.mode == "idle_stop":   # serverless workers and KEDA pods start afresh
        opt.resume_s -= (cold.image_pull_s if entry.resume_keeps_image else 0.0) \
            + (download_s if entry.resume_keeps_weights else 0.0)
    opt.storage_gb, opt.container_gb = _billing.disk_sizes(opt.scaling, weight_gb)


def block_candidates(options, roles, tokens, needs, weights, policy=None, billing=None):
    """Every option that can serve this block of roles, priced for the block's work (as
    billed under ``billing``); the routing ``policy`` (sensitive roles, budget tiers)
    removes what it forbids."""
    from ansible_collections.llmops.codestack.plugins.module_utils._api_planner import (
        is_third_party,
    )
    # _api_planner.allowed_for, with its per-block terms computed once per block
    sensitive = bool(policy) and any(policy[r]["sensitive"] for r in roles)
    floor = max(policy[r]["min_quality"] for r in roles) if policy else None
    tin = sum(tokens[r][0] for r in roles)
    tout = sum(tokens[r][1] for r in roles)
    weight = sum(weights[r] for r in roles)
    context = max(needs[r][0] for r in roles)
    seqs = sum(needs[r][1] for r in roles)
    out = []
    batchings = {}   # batching depends on the host kind only, not on the option
    for opt in options:
        mml = context if context < opt.model.context else opt.model.context
        if mml * seqs > opt.kv_tokens or (floor is not None and (
                opt.quality < floor or (sensitive and is_third_party(opt)))):
            continue
        batching = batchings.get(opt.max_batching)
        if batching is None:
            batching = batchings[opt.max_batching] = opt.batching_for(seqs)
        hours, cost = opt.block(tin, tout, batching, billing, roles)
        out.append(Cand(opt, cost, hours, opt.quality, weight * opt.quality,
                        (mml, seqs, batching), opt.index,
                        getattr(opt.offer, "machine", opt.offer.id)
                        if opt.offer.pricing == "owned" else None))
    return out


def build_problem(options, tokens, params, budget_usd, deadline_h, quality, policy=None,
                  billing=None):
    """The optimiser's problem: every block of roles with its candidates, priced as billed
    under ``billing`` (a ``Billing``; None: a window of the deadline and default usage).
    ``policy``: the routing policy of _api_planner.role_policy (a budget tier scales its
    role's weight)."""
    if billing is None:
        billing = Billing(deadline_h)
    needs = role_needs(params)
    problem_weights = dict((r, params.role_quality_weight.get(r, 0.0)) for r in ROLES)
    if not sum(problem_weights.values()):
        problem_weights = dict((r, 1.0) for r in ROLES)
    if policy:
        problem_weights = dict((r, w * policy[r]["quality_weight"])
                               for r, w in problem_weights.items())
    blocks = dict((roles, block_candidates(options, roles, tokens, needs, problem_weights,
                                           policy, billing))
                  for roles in subsets(ROLES))
    return Problem(blocks, budget_usd, deadline_h, params.quality_thresholds[quality],
                   problem_weights, params.deadline_weight)


def _blocks_of(plan):
    """Optimiser plan [(roles, Cand)] -> the planner's block dicts."""
    return [{"roles": tuple(roles), "option": cand.opt, "hours": cand.hours,
             "cost": cand.cost, "serving": cand.serving, "cand": cand}
            for roles, cand in plan]


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


def _option_doc(opt, offer=None, serving=None):
    """The plan's description of an option; ``serving`` (max_model_len, max_num_seqs,
    batching) is the block's, else the all-roles deployment's."""
    offer = offer or opt.offer
    max_model_len, max_num_seqs, batching = (serving[0], serving[1], serving[2]) if serving else \
        (opt.max_model_len, opt.max_num_seqs, opt.batching)
    doc = {
        "provider": offer.provider,
        "offer_id": offer.id,
        "pricing": offer.pricing,
        "gpu": {"name": opt.gpu.name, "id": opt.gpu.id, "provider_id": offer.provider_gpu_id,
                "count": offer.count, "vram_gb": opt.gpu.vram_gb},
        "region": offer.region,
        "country": offer.country,
        "price_per_hour_usd": _r(opt.price, 4),
        "billing": {"min_billing_hours": offer.min_billing_hours,
                    "billing_period_hours": offer.billing_period_hours,
                    "setup_fee_usd": _r(opt.setup, 4)},
        "model": {
            "key": opt.model.id,
            "name": opt.model.name,
            "hf_repo": opt.model.weights(opt.quant_id)[0],
            "revision": opt.model.weights(opt.quant_id)[1],
            "gated": opt.model.weights(opt.quant_id)[2],
            "quantization": opt.quant_id,
            "vllm_quantization": opt.quant.vllm_quantization,
            "weight_gb": opt.weight_gb,
            "max_model_len": max_model_len,
            "max_num_seqs": max_num_seqs,
            "licence": opt.model.weights(opt.quant_id)[3],
        },
        "engine": opt.engine,
        "quality_score": _r(opt.quality, 1),
        "throughput_tok_s": _r(opt.decode * batching, 1),
        "single_stream_tok_s": _r(opt.decode, 1),
        "prefill_tok_s": _r(opt.prefill, 1),
        "throughput_source": "measured" if opt.measured else "roofline",
        "ttft_s": _r(predicted_ttft_s(opt.prefill, opt.decode, opt.ttft_tokens), 3),
        "ttft_prompt_tokens": opt.ttft_tokens,
        "cold_start_s": int(round(opt.cold_s)),
    }
    disk = disk_doc(opt)
    if disk:
        doc["disk"] = disk
    if hasattr(opt, "plan_doc"):   # a per-token API or Ollama (_api_planner)
        doc.update(opt.plan_doc())
    return doc


def disk_doc(opt):
    """plan.json ``disk`` of an option, what gpu_provision rents: the disks the plan prices
    (``_billing.disk_sizes``); None for an option that keeps none."""
    if not (opt.storage_gb or opt.container_gb):
        return None
    return {"volume_gb": opt.storage_gb, "container_disk_gb": opt.container_gb}


def predicted_ttft_s(prefill_tok_s, decode_tok_s, prompt_tokens):
    """Time to first token of one uncached request: its prompt's prefill plus one decode step."""
    return prompt_tokens / float(prefill_tok_s) + 1.0 / float(decode_tok_s)


def reprice_deployment(plan, deployment, decode_tok_s=None, prefill_tok_s=None):
    """(hours, cost_usd) of a plan deployment's work at other single-stream decode / prefill
    rates (None keeps the planned one), by the planner's own Option.block."""
    tokens = [plan["roles"][role]["tokens"] for role in deployment["roles"]]
    opt = Option.from_plan(deployment, decode_tok_s, prefill_tok_s)
    billing = None
    if opt.scaling:   # billed under the plan's scaling policy (plans since 2026-12-01)
        billing = Billing(opt.scaling["window_h"], opt.scaling.get("usage"))
    return opt.block(sum(t["input"] for t in tokens), sum(t["output"] for t in tokens),
                     billing=billing, roles=tuple(deployment["roles"]))


def _always_on(opt, hours, window_h):
    """The bill of a deployment that never stops: up from creation until the deadline."""
    sc = opt.scaling or {}
    return _billing.bill("always_on", hours * 3600.0 - opt.cold_s, opt.cold_s, opt.cold_s, 0, 0,
                         window_h, opt.price, opt.min_billing, opt.billing_period, opt.setup,
                         opt.storage_gb,
                         _billing.gb_hour(sc.get("storage_running_usd_per_gb_month", 0.0)),
                         container_gb=opt.container_gb)


def _billed_doc(opt, billed, always, scaling):
    """plan.json ``deployments[].billed``: where the billed estimate comes from."""
    return {
        "up_hours": _r(billed["up_hours"], 3),
        "billed_hours": _r(billed["billed_hours"], 3),
        "stopped_hours": _r(billed["stopped_hours"], 3),
        "compute_usd": _r(billed["compute_usd"], 4),
        "storage_usd": _r(billed["storage_usd"], 4),
        "storage_gb": opt.storage_gb,
        "resume_s": int(round(opt.resume_s if scaling["mode"] == "idle_stop" else opt.cold_s)),
        "always_on_cost_usd": _r(always["cost_usd"], 4),
    }


def _cost_terms(opt, params, batching, scaling=None, billing=None):
    """Everything Option.from_plan needs to price this deployment again at other rates."""
    terms = _work_terms(opt, params, batching)
    if scaling is not None:
        sc = opt.scaling or {}
        terms["scaling"] = dict(
            sc, mode=scaling["mode"], idle_timeout_s=scaling["idle_timeout_s"],
            wake_policy=scaling["wake_policy"], resume_s=_r(opt.resume_s, 3),
            storage_gb=opt.storage_gb, window_h=billing.window_h, usage=dict(billing.usage))
    return terms


def _work_terms(opt, params, batching):
    return {
        "decode_tok_s": _r(opt.decode, 6), "prefill_tok_s": _r(opt.prefill, 6),
        "batching_factor": _r(batching, 6), "prefix_cache_hit": params.prefix_cache_hit,
        "rework": _r(opt.rework, 6), "interruption_overhead": opt.interrupt,
        "cold_start_s": _r(opt.cold_s, 3), "price_per_hour_usd": _r(opt.price, 6),
        "min_billing_hours": opt.min_billing, "billing_period_hours": opt.billing_period,
        "setup_fee_usd": _r(opt.setup, 6),
    }


def _describe_option(opt):
    if hasattr(opt, "describe"):
        return opt.describe()
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

    def to_currency(self, usd):
        return usd if self.currency == "USD" else usd / self.usd_per_eur

    control_entry = None
    control_rate = 1.0

    def control(self, deadline=None):
        """plan.json ``control_plane`` for a stack that lives ``deadline`` hours (default the
        blueprint's): the created control server, billed from creation until teardown; None
        when the stack creates none."""
        if self.control_entry is None:
            return None
        return _control.price(self.control_entry, self.deadline if deadline is None else deadline,
                              self.control_rate)

    def control_usd(self, deadline=None):
        found = self.control(deadline)
        return found["cost_usd"] if found else 0.0


def _weighted_quality(params, blocks):
    """Role-weighted mean quality (architect/reviewer count more than coder/debugger)."""
    weights = dict((r, params.role_quality_weight.get(r, 0.0)) for r in ROLES)
    if not sum(weights.values()):
        weights = dict((r, 1.0) for r in ROLES)
    total = sum(weights[r] for b in blocks for r in b["roles"])
    return sum(weights[r] * b["option"].quality for b in blocks for r in b["roles"]) / total


def _summarise(ctx, blocks, label, budget_usd=None, deadline=None, threshold=None):
    budget_usd = ctx.budget_usd if budget_usd is None else budget_usd
    deadline = ctx.deadline if deadline is None else deadline
    threshold = ctx.threshold if threshold is None else threshold
    hours = max(b["hours"] for b in blocks)
    # a created control server bills over the same window: every plan's figure includes it
    cost = sum(b["cost"] for b in blocks) + ctx.control_usd(deadline)
    lowest = min(b["option"].quality for b in blocks)
    return {
        "label": label,
        "cost_usd": _r(cost, 4),
        "hours": _r(hours, 3),
        "quality_score": _r(_weighted_quality(ctx.params, blocks), 1),
        "min_quality_score": _r(lowest, 1),
        "fits_budget": cost <= budget_usd + 1e-9,
        "meets_deadline": hours <= deadline + 1e-9,
        "meets_quality": lowest >= threshold,
        "deployments": ["%s: %s" % ("+".join(b["roles"]), _describe_option(b["option"]))
                        for b in blocks],
    }


def _fits(summary):
    return summary["fits_budget"] and summary["meets_deadline"] and summary["meets_quality"]


def _pareto(ctx, named, front):
    """The named plans plus a sample of the exact cost-time front; every point flagged
    against the whole front (docs/cost-model.md: what Pareto-optimal is measured against)."""
    def dominated(cost, hours):
        for f_hours, f_cost, _plan in front:
            if f_hours > hours + 1e-9:
                break
            if f_cost <= cost + 1e-9 and (f_cost < cost - 1e-9 or f_hours < hours - 1e-9):
                return True
        return False

    points = []
    for label, blocks, summary in named:
        cost = sum(b["cost"] for b in blocks)
        hours = max(b["hours"] for b in blocks)
        points.append(dict(summary, kind=label, pareto_optimal=not dominated(cost, hours)))
    if len(front) <= _FRONT_POINTS:
        sample = front
    else:
        step = (len(front) - 1) / float(_FRONT_POINTS - 1)
        sample = [front[int(round(i * step))] for i in range(_FRONT_POINTS)]
    seen = set((p["cost_usd"], p["hours"]) for p in points)
    for _hours, _cost, plan in sample:
        blocks = _blocks_of(plan)
        summary = _summarise(ctx, blocks, "Pareto front")
        if (summary["cost_usd"], summary["hours"]) in seen:
            continue
        seen.add((summary["cost_usd"], summary["hours"]))
        points.append(dict(summary, kind="front", pareto_optimal=True))
    return points


class _Solution(object):
    """The four named plans of one workload and one set of limits."""

    def __init__(self, ctx, tokens, budget_usd, deadline, quality, options=None, like=None):
        # ``budget_usd`` is the whole budget: a created control server takes its share first
        control_usd = ctx.control_usd(deadline)
        budget_usd = max(budget_usd - control_usd, 1e-9)
        if like is not None and abs(deadline - like.problem.deadline) < 1e-12:
            # same workload, options and rental window: only the limits differ
            self.problem = like.problem.with_limits(
                budget_usd, deadline, ctx.params.quality_thresholds[quality])
        else:
            # the billed cost depends on the deadline (sessions, storage while stopped)
            self.problem = build_problem(options if options is not None else ctx.options,
                                         tokens, ctx.params, budget_usd, deadline, quality,
                                         getattr(ctx, "policy", None),
                                         Billing(deadline, ctx.billing.usage,
                                                 ctx.billing.overrides))
        if not any(all(self.problem.blocks[b] for b in partition)
                   for partition in self.problem.partitions):
            raise PlanError("no catalog option has room for the KV cache of a deployment "
                            "serving the roles (cost_model role_context x role_concurrency); "
                            "fix: lower role_context or role_concurrency in a user catalog, "
                            "or allow bigger GPUs")
        self.plans, self.met = {}, {}
        for objective in OBJECTIVES:
            plan, met = self.problem.best(objective)
            self.plans[objective] = _blocks_of(plan)
            self.met[objective] = met
        self.fits = self.met["balanced"] == FALLBACKS["balanced"][0]
        self.cost = sum(b["cost"] for b in self.plans["balanced"]) + control_usd
        self.hours = max(b["hours"] for b in self.plans["balanced"])


def _ceil(value, digits=2):
    scale = 10 ** digits
    return math.ceil(value * scale - 1e-6) / float(scale)


def _tradeoff(ctx, kind, changes, solution, summary):
    chosen = solution.plans["balanced"]
    return {
        "kind": kind,
        "changes": changes,
        "cost_usd": _r(solution.cost, 4),
        "hours": _r(solution.hours, 3),
        "quality_score": _r(_weighted_quality(ctx.params, chosen), 1),
        "fits": True,
        "deployments": ["%s: %s" % ("+".join(b["roles"]), _describe_option(b["option"]))
                        for b in chosen],
        "summary": summary,
    }


def _tradeoffs(ctx, solution, features):
    """Blueprint changes that make it fit, each re-planned and shown only if it then fits:
    drop the fewest should/could features, raise the budget, extend the deadline, lower the
    quality level, allow more providers (docs/cost-model.md, section 6)."""
    out = []
    plans = solution.plans
    quality_met = "quality" in solution.met["balanced"]
    # 1. drop features: smallest sets first, the largest cost share first within a size
    droppable = [f for f in features if f["priority"] != "must"]
    if quality_met and droppable:
        tried = 0
        found = None
        for size in range(1, len(droppable) + 1):
            sets = sorted(itertools.combinations(droppable, size),
                          key=lambda fs: (-sum(f["share"] for f in fs),
                                          [("could", "should").index(f["priority"]) for f in fs],
                                          [f["name"] for f in fs]))
            for subset in sets:
                if tried >= _DROP_SETS:
                    break
                tried += 1
                names = [f["name"] for f in subset]
                tokens = _role_tokens(ctx.tasks, set(names))
                if not any(sum(t) for t in tokens.values()):
                    continue
                trial = _Solution(ctx, tokens, ctx.budget_usd, ctx.deadline, ctx.quality)
                if trial.fits:
                    found = (names, trial)
                    break
            if found or tried >= _DROP_SETS:
                break
        if found:
            names, trial = found
            out.append(_tradeoff(
                ctx, "drop_features", {"drop_features": names}, trial,
                "Drop %s: the plan then fits, %s in %.1f h." % (
                    ", ".join("'%s'" % n for n in names), ctx.money(trial.cost), trial.hours)))
    # 2. raise the budget to what the cheapest plan within deadline and quality costs
    if plans["cheapest"] and solution.met["cheapest"] == FALLBACKS["cheapest"][0] and \
            solution.cost > ctx.budget_usd + 1e-9:
        need = _ceil(ctx.to_currency(sum(b["cost"] for b in plans["cheapest"]) + ctx.control_usd()))
        need_usd = need if ctx.currency == "USD" else need * ctx.usd_per_eur
        trial = _Solution(ctx, ctx.tokens, max(need_usd, 1e-6), ctx.deadline, ctx.quality,
                          like=solution)
        if trial.fits:
            key = "budget_usd" if ctx.currency == "USD" else "budget_eur"
            out.append(_tradeoff(
                ctx, "raise_budget", {key: need}, trial,
                "Raise the budget to %s %.2f: the plan then fits, %s in %.1f h." % (
                    ctx.currency, need, ctx.money(trial.cost), trial.hours)))
    # 3. extend the deadline to the fastest plan within budget and quality
    if solution.met["fastest"] == FALLBACKS["fastest"][0] and solution.hours > ctx.deadline + 1e-9:
        need = _ceil(max(b["hours"] for b in plans["fastest"]))
        trial = _Solution(ctx, ctx.tokens, ctx.budget_usd, need, ctx.quality, like=solution)
        if trial.fits:
            out.append(_tradeoff(
                ctx, "extend_deadline", {"deadline_hours": need}, trial,
                "Extend the deadline to %.2f h: the plan then fits, %s in %.1f h." % (
                    need, ctx.money(trial.cost), trial.hours)))
    # 4. a lower quality level (the highest that fits)
    for level in reversed(QUALITY_ORDER[:QUALITY_ORDER.index(ctx.quality)]):
        trial = _Solution(ctx, ctx.tokens, ctx.budget_usd, ctx.deadline, level, like=solution)
        if trial.fits:
            out.append(_tradeoff(
                ctx, "lower_quality", {"quality": level}, trial,
                "Accept quality '%s': the plan then fits, %s in %.1f h." % (
                    level, ctx.money(trial.cost), trial.hours)))
            break
    # 5. more providers (what the blueprint does not allow yet)
    others = sorted(set(o.provider for o in ctx.catalog.offers.values())
                    - set(ctx.constraints.providers))
    if others:
        wider, _unused = enumerate_options(ctx.catalog, ctx.constraints,
                                           providers=set(ctx.constraints.providers) | set(others))
        trial = _Solution(ctx, ctx.tokens, ctx.budget_usd, ctx.deadline, ctx.quality, wider)
        if trial.fits:
            used = sorted(set(b["option"].offer.provider for b in trial.plans["balanced"])
                          - set(ctx.constraints.providers))
            providers = list(ctx.constraints.providers) + used
            out.append(_tradeoff(
                ctx, "allow_providers", {"providers": providers}, trial,
                "Allow provider(s) %s: the plan then fits, %s in %.1f h." % (
                    ", ".join(used), ctx.money(trial.cost), trial.hours)))
    if not out:
        out.append({"kind": "none", "changes": {}, "fits": False,
                    "summary": "No single change tried (dropping should/could features, a "
                               "higher budget, a later deadline, a lower quality level, more "
                               "providers) makes the blueprint fit."})
    return out


def _alternatives(ctx, block, problem, limit):
    """Capacity fallbacks of a deployment: the next offer of the same kind, then the best
    other offers for the same roles (quality threshold first, then the balanced score)."""
    opt = block["option"]
    out = []
    used = {opt.offer.id}
    for offer in opt.group[1:2]:   # same GPU and model, next offer of the same kind
        doc = _option_doc(opt, offer, block["serving"])
        doc["price_per_hour_usd"] = _r(ctx.catalog.usd(offer.price_per_hour, offer.currency)
                                       * offer.count, 4)
        doc["reason"] = "same GPU type, next offer"
        out.append(doc)
        used.add(offer.id)
    ranked = sorted(problem.blocks[block["roles"]],
                    key=lambda c: (c.quality < ctx.threshold,
                                   problem.score(c.cost, c.hours, c.wq), c.index))
    for cand in ranked:
        if len(out) >= limit:
            break
        # a rented deployment falls back on what can be rented (the provisioner walks them),
        # an API or Ollama deployment on what the gateway reaches without provisioning
        if cand.opt.offer.id in used or hasattr(cand.opt, "api") != hasattr(opt, "api"):
            continue
        used.add(cand.opt.offer.id)
        doc = _option_doc(cand.opt, serving=cand.serving)
        doc.update({"reason": "next best option", "hours": _r(cand.hours),
                    "cost_usd": _r(cand.cost)})
        out.append(doc)
    return out


def build_plan(blueprint, intent, catalog, **options):
    """Price every option and return the plan.json mapping (docs/plan-format.md).

    Options: ``usd_per_eur`` (overrides the catalog's EUR rate), ``generated_at`` (ISO time,
    default now), ``max_alternatives`` (3), ``tradeoffs`` (True: search them when the
    blueprint does not fit).
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

    from ansible_collections.llmops.codestack.plugins.module_utils import (
        _api_planner as api_planner,
    )
    ctx = _Context()
    ctx.catalog, ctx.params, ctx.constraints = catalog, params, constraints
    ctx.currency, ctx.usd_per_eur = currency, usd_per_eur
    ctx.budget_usd, ctx.deadline = budget_usd, constraints.deadline_hours
    ctx.quality = constraints.quality
    ctx.billing = Billing.of(blueprint)
    request = options.get("control_server")
    try:
        wanted = _control.requested(request)
        if wanted is not None:
            ctx.control_entry = _control.catalog_entry(catalog.control_servers, *wanted)
            unit = ctx.control_entry.currency
            rate = usd_per_eur if unit == "EUR" else (
                catalog.currencies[unit].usd_per_unit if unit in catalog.currencies else 0)
            if not rate:
                raise PlanError("no exchange rate for %s (control server %s): add currency %r to "
                                "the catalog" % (unit, ctx.control_entry.id, unit))
            ctx.control_rate = float(rate)
    except _control.ControlPlaneError as exc:
        raise PlanError(str(exc))
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
    ctx.policy = api_planner.role_policy(blueprint, intent, catalog)
    api_planner.check_policy(ctx.options, ctx.policy)
    solution = _Solution(ctx, ctx.tokens, budget_usd, ctx.deadline, ctx.quality)
    ctx.solution = solution
    plans = solution.plans
    chosen = plans["balanced"]

    deployments = []
    role_docs = {}
    used_names = set()
    for block in chosen:
        opt = block["option"]
        mml, seqs, batching = block["serving"]
        name = _slug("%s-%s-%s-%s" % ("all" if len(block["roles"]) == len(ROLES)
                                      else "-".join(block["roles"]), opt.model.id,
                                      opt.quant_id, opt.gpu.id))[:63].strip("-")
        base, n = name, 2
        while name in used_names:
            name, n = "%s-%d" % (base, n), n + 1
        used_names.add(name)
        doc = {"name": name}
        doc.update(_option_doc(opt, serving=block["serving"]))
        work = dict((r, opt.seconds(ctx.tokens[r][0], ctx.tokens[r][1], batching)
                     * (1.0 + opt.interrupt)) for r in block["roles"])
        total_work = sum(work.values()) or 1.0
        if hasattr(opt, "api_billing"):   # a per-token API or Ollama: nothing idles or wakes
            scaling, billed, always = opt.api_billing(block["hours"], block["cost"])
        else:
            scaling, billed = opt.billed(block["hours"] * 3600.0 - opt.cold_s, ctx.billing,
                                         block["roles"])
            always = _always_on(opt, block["hours"], ctx.billing.window_h)
        block["always_on_cost"], block["billed_hours"] = always["cost_usd"], \
            billed["billed_hours"]
        doc.update({
            "roles": list(block["roles"]),
            "serving": {"max_model_len": mml, "max_num_seqs": seqs},
            "scaling": scaling,
            "billed": _billed_doc(opt, billed, always, scaling),
            "cost_terms": _cost_terms(opt, params, batching, scaling, ctx.billing),
            "hours": _r(block["hours"], 3),
            "cost_usd": _r(block["cost"], 4),
            "alternatives": _alternatives(ctx, block, solution.problem,
                                          int(options.get("max_alternatives", 3))),
        })
        api_planner.name_alternatives(doc)
        deployments.append(doc)
        share_cold = opt.cold_s / len(block["roles"])
        for role in block["roles"]:
            fraction = (work[role] / total_work) if sum(work.values()) else \
                1.0 / len(block["roles"])
            role_docs[role] = {
                "alias": role,
                "deployment": name,
                "tokens": {"input": ctx.tokens[role][0], "output": ctx.tokens[role][1]},
                "context_tokens": params.role_context[role],
                "concurrency": params.role_concurrency.get(role, 1),
                "hours": _r((work[role] + share_cold) / 3600.0, 3),
                "cost_usd": _r(block["cost"] * fraction, 4),
                "quality_score": _r(opt.quality, 1),
                "sensitive": ctx.policy[role]["sensitive"],
                "tier": ctx.policy[role]["tier"],
            }
    control = ctx.control()
    control_usd = control["cost_usd"] if control else 0.0
    total_cost = sum(b["cost"] for b in chosen) + control_usd
    wall = max(b["hours"] for b in chosen)
    gpu_hours = sum(b["billed_hours"] * b["option"].offer.count for b in chosen)
    achieved = min(b["option"].quality for b in chosen)
    achieved_level = None
    for level in QUALITY_ORDER:
        if achieved >= params.quality_thresholds[level]:
            achieved_level = level
    estimate_in_currency = ctx.to_currency(total_cost)
    features = []
    shares = dict((d["feature"], d.get("share", 0.0)) for d in intent.get("cost_drivers", []))
    for feature in blueprint.features:
        features.append({"name": feature.name, "priority": feature.priority,
                         "share": shares.get(feature.name, 0.0)})
    named = [(label, plans[key], dict(_summarise(ctx, plans[key], label),
                                      constraints_met=list(solution.met[key])))
             for label, key in (("chosen", "balanced"), ("cheapest", "cheapest"),
                                ("fastest", "fastest"), ("best quality", "best_quality"))]
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
        # the server the stack creates for its gateway, guard and IDE (None: the controller or
        # an inventory host, which the stack does not bill)
        "control_plane": control,
        "totals": {
            "hours": _r(wall, 3),
            "gpu_hours": _r(gpu_hours, 3),
            "cost_usd": _r(total_cost, 4),
            "cost_eur": _r(total_cost / usd_per_eur, 4),
            # the upper bound when nothing scales to zero: every deployment up until the deadline
            # (per-token APIs: their tokens, nothing idles)
            "always_on_cost_usd": _r(sum(b["always_on_cost"] for b in chosen) + control_usd, 4),
            "control_plane_usd": _r(control_usd, 4),
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
        "pareto": _pareto(ctx, named, solution.problem.cost_time_front()),
        "tradeoffs": [],
        "routing": api_planner.policy_doc(ctx.policy),
    }
    classes = api_planner.class_comparison(
        solution.problem, lambda p: _summarise(ctx, _blocks_of(p), "class"))
    won = set(api_planner.provider_class(b["option"]) for b in chosen)
    plan["provider_classes"] = {"chosen": sorted(won), "classes": classes,
                                "why": api_planner.why_text(won, classes, ctx.money)}
    plan["fits"] = all(check["ok"] for check in plan["checks"].values())
    if not plan["fits"] and options.get("tradeoffs", True):
        plan["tradeoffs"] = _tradeoffs(ctx, solution, features)
    return plan
