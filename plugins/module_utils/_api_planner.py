# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-token APIs and local Ollama as planner options, and the routing policy.

An API model is an option billed per token: ``cost = rework x (input x input price + output x
output price)``, no rental, no cold start, nothing billed while idle (``scaling: always_on``,
``expected_wakes: 0``). An Ollama tag is owned hardware: zero price, always on, one machine
(``exclusive``). Both enter the same exact optimiser as rented GPUs (docs/cost-model.md,
"Per-token APIs and Ollama").

The routing policy (docs/blueprint.md): a role is *sensitive* when the project is
(``constraints.sensitive``) or when a sensitive feature has work for it; a sensitive role is
only ever planned (primary and alternatives) on local or self-hosted options. Budget tiers per
role (``constraints.tiers``) set a minimum quality and scale the role's quality weight
(``budget_tiers`` in catalog/routing.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    ROLES,
    Option,
    PlanError,
)

PER_TOKEN = "per_token"
CLASSES = ("per_token_api", "rented_gpu", "owned")


class _Offer(object):
    """The offer-shaped face of an API model or an Ollama tag (what plan documents read)."""

    def __init__(self, oid, provider, pricing, provider_gpu_id, country):
        self.id, self.provider, self.pricing = oid, provider, pricing
        self.provider_gpu_id, self.country = provider_gpu_id, country
        self.count, self.region = 1, "ALL" if pricing == PER_TOKEN else "local"
        self.price_per_hour, self.currency = 0.0, "USD"
        self.min_billing_hours = self.billing_period_hours = self.setup_fee = 0.0
        self.machine = oid   # what the optimiser's one-deployment-per-owned-machine rule keys on


class _Hardware(object):
    def __init__(self, gid, name):
        self.id, self.name, self.kind, self.vram_gb, self.fp8 = gid, name, "api", 0, False


class _ModelView(object):
    """What plan documents read of a model, for an API model or an Ollama tag."""

    def __init__(self, mid, name, context, licence, repo=None):
        self.id, self.name, self.context, self.licence = mid, name, context, licence
        self.repo = repo
        self.hf_repo = repo

    def weights(self, _quant_id):
        return self.repo, None, False, self.licence


class _Quant(object):
    vllm_quantization = None


class ApiOption(Option):
    """An option served through an API: per-token (third party) or Ollama (owned)."""

    __slots__ = ("per_token", "third_party", "api", "pin", "pout")

    def block(self, tokens_in, tokens_out, batching=None, billing=None, roles=()):
        """(hours, cost): per-token APIs bill their tokens, Ollama nothing; neither is
        billed by the hour, so ``billing`` (scale to zero) does not apply."""
        del billing, roles
        batching = self.batching if batching is None else batching
        hours = self.seconds(tokens_in, tokens_out, batching) / 3600.0
        if not self.per_token:
            return hours, 0.0
        return hours, self.token_cost(tokens_in, tokens_out)

    def token_cost(self, tokens_in, tokens_out):
        """What the provider bills: every token at the full rate (a weaker model's rework
        costs tokens too)."""
        return self.rework * (tokens_in * self.pin + tokens_out * self.pout) / 1e6

    def billed_cost(self, hours):
        return 0.0   # nothing is billed by the hour; a block's cost is its tokens

    SCALING = {"mode": "always_on", "idle_timeout_s": 0, "expected_wakes": 0,
               "wake_policy": "wait", "wake_timeout_s": 0}

    def api_billing(self, hours, cost):
        """(scaling, bill, always-on bill) of a deployment of this option doing ``hours`` of
        work that costs ``cost`` (its tokens): no GPU hours, nothing stopped or stored."""
        bill = {"up_hours": hours, "billed_hours": 0.0, "stopped_hours": 0.0,
                "compute_usd": cost, "storage_usd": 0.0, "cost_usd": cost}
        return dict(self.SCALING), bill, {"cost_usd": cost}

    def describe(self):
        if self.per_token:
            return "%s per token on %s ($%.2f/$%.2f per Mtok in/out)" % (
                self.model.name, self.offer.provider, self.pin, self.pout)
        return "%s on Ollama (%s, owned)" % (self.offer.provider_gpu_id, self.api["host"])

    def plan_doc(self):
        """The fields a plan deployment (or alternative) of this option adds."""
        doc = dict(self.api)
        doc.pop("host", None)
        out = {"api": doc, "data_policy": "third_party" if self.third_party else "local",
               "throughput_source": self.api.get("throughput_source", "catalog"),
               "cold_start_s": 0,
               "scaling": dict(self.SCALING)}
        if self.per_token:
            out["price_per_mtok_usd"] = {"input": self.pin, "output": self.pout}
        return out


def _common(opt, params, index, quality, decode, prefill, context, concurrency):
    opt.index, opt.quality = index, quality
    opt.rework = 1.0 + params.rework_per_point * max(0.0, params.rework_reference_score - quality)
    opt.max_batching = float(concurrency)
    opt.batching_seqs = concurrency
    opt.ttft_tokens = params.ttft_prompt_tokens
    opt.kv_tokens = float("inf")    # the service sizes its own memory; context caps the length
    opt.max_model_len, opt.max_num_seqs = context, concurrency
    opt.set_rates(decode, prefill, opt.batching_for(concurrency), 0.0)
    opt.cold_s = opt.price = opt.min_billing = opt.billing_period = opt.setup = 0.0
    opt.scaling, opt.resume_s, opt.storage_gb, opt.container_gb = None, 0.0, 0.0, 0.0
    opt.interrupt = 0.0
    opt.weight_gb = 0.0
    opt.quant = _Quant()
    opt.group = [opt.offer]


def api_options(catalog, constraints, providers, start):
    """ApiOption for every api_models entry and Ollama tag whose provider the blueprint
    allows (residency: a third-party provider must be located there)."""
    params = catalog.cost_model["default"]
    allowed = set(providers or constraints.providers)
    countries = _countries(constraints, params)
    out = []
    for model in sorted(catalog.api_models.values(), key=lambda m: m.id):
        provider = catalog.api_providers[model.provider]
        if provider.id not in allowed:
            continue
        if countries is not None and provider.country not in countries:
            continue
        opt = ApiOption()
        opt.per_token, opt.third_party = True, provider.data_policy == "third_party"
        opt.pin, opt.pout = model.input_usd_per_mtok, model.output_usd_per_mtok
        opt.offer = _Offer(model.id, provider.id, PER_TOKEN, model.model, provider.country)
        opt.gpu = _Hardware("api", "%s API" % provider.name)
        opt.model = _ModelView(model.id, model.name, model.context, "provider terms")
        opt.quant_id, opt.engine, opt.measured = PER_TOKEN, "api", False
        opt.api = {"provider": provider.id, "model": model.model,
                   "litellm_model": model.litellm_model, "api_base": provider.api_base,
                   "key_env": provider.key_env, "context": model.context,
                   "unverified": list(model.unverified), "catalog_id": model.id,
                   "throughput_source": "catalog (typical, %s)" % (
                       "unverified" if "output_tok_s" in model.unverified else "published")}
        # several requests run side by side on an API: aggregate speed grows with them
        _common(opt, params, start + len(out), model.score.value, model.output_tok_s,
                params.ttft_prompt_tokens / model.ttft_s, model.context,
                params.concurrent_sequences)
        out.append(opt)
    if "ollama" in allowed and "ollama" in catalog.api_providers:
        provider = catalog.api_providers["ollama"]
        for tag in sorted(catalog.ollama_models.values(), key=lambda t: t.id):
            base = catalog.models[tag.model]
            quant = catalog.quantizations[tag.quantization]
            opt = ApiOption()
            opt.per_token, opt.third_party = False, False
            opt.pin = opt.pout = 0.0
            opt.offer = _Offer("ollama:%s" % tag.id, "ollama", "owned", tag.id, None)
            opt.offer.machine = "ollama:%s" % tag.host   # one host: one deployment of a plan
            opt.gpu = _Hardware("ollama", tag.host)
            opt.model = _ModelView(base.id, base.name, min(tag.context, base.context),
                                   base.licence, "ollama:%s" % tag.id)
            opt.quant_id, opt.engine = tag.quantization, "ollama"
            opt.measured = tag.throughput == "measured"
            opt.api = {"provider": "ollama", "model": tag.id,
                       "litellm_model": "%s/%s" % (provider.litellm_prefix, tag.id),
                       "api_base": provider.api_base, "key_env": None, "host": tag.host,
                       "context": min(tag.context, base.context), "catalog_id": tag.id,
                       "throughput_source": tag.throughput}
            # Ollama answers one request at a time per model by default (OLLAMA_NUM_PARALLEL)
            _common(opt, params, start + len(out), max(0.0, base.score.value - quant.penalty),
                    tag.decode_tok_s, tag.prefill_tok_s, opt.model.context, 1)
            out.append(opt)
    return out


def _countries(constraints, params):
    if not constraints.residency:
        return None
    key = constraints.residency.strip().lower()
    if key in params.residency_groups:
        return set(params.residency_groups[key])
    return {key.upper()}


def is_third_party(opt):
    return bool(getattr(opt, "third_party", False))


def provider_class(opt):
    """per_token_api, rented_gpu or owned (local llama.cpp, Ollama, owned servers)."""
    if getattr(opt, "per_token", False):
        return "per_token_api"
    return "owned" if opt.offer.pricing == "owned" else "rented_gpu"


# -- the routing policy -----------------------------------------------------------------------
def role_policy(blueprint, intent, catalog):
    """{role: {"sensitive", "tier", "min_quality", "quality_weight", "why"}}."""
    constraints = blueprint.constraints
    sensitive_features = set(f.name for f in blueprint.features if getattr(f, "sensitive", False))
    tiers = catalog.budget_tiers
    policy = {}
    for role in ROLES:
        reasons = []
        if getattr(constraints, "sensitive", False):
            reasons.append("the project is sensitive (constraints.sensitive)")
        features = sorted(set(t["feature"] for t in intent["tasks"]
                              if t["role"] == role and t["feature"] in sensitive_features))
        if features:
            # the gateway routes by role alias: one sensitive task makes the whole alias local
            reasons.append("sensitive feature(s) %s have %s work" % (", ".join(features), role))
        tier_id = (getattr(constraints, "tiers", None) or {}).get(role, "standard")
        if tier_id in tiers:
            floor, weight = tiers[tier_id].min_quality, tiers[tier_id].quality_weight
        elif tier_id == "standard":
            floor, weight = 0.0, 1.0   # no tier set and none in the catalog: the plain objective
        else:
            raise PlanError("blueprint field 'constraints.tiers.%s': tier '%s' is not in the "
                            "catalog's budget_tiers; fix: add it (catalog/routing.yml) or use "
                            "one of %s" % (role, tier_id, sorted(tiers) or ["standard"]))
        policy[role] = {"sensitive": bool(reasons), "why": "; ".join(reasons),
                        "tier": tier_id, "min_quality": floor, "quality_weight": weight}
    return policy


def allowed_for(opt, roles, policy):
    """May ``opt`` serve this block of roles under the policy?"""
    if not policy:
        return True
    if is_third_party(opt) and any(policy[r]["sensitive"] for r in roles):
        return False
    return opt.quality >= max(policy[r]["min_quality"] for r in roles)


def check_policy(options, policy):
    """One PlanError naming every role that no allowed option can serve."""
    problems = []
    for role in ROLES:
        if not any(allowed_for(o, (role,), policy) for o in options):
            rule = policy[role]
            problems.append("role %s (%stier %s, minimum quality %s) has no allowed option"
                            % (role, "sensitive, " if rule["sensitive"] else "", rule["tier"],
                               rule["min_quality"]))
    if problems:
        raise PlanError("%s; fix: allow local or rented providers (ollama, local, runpod, "
                        "vast) for sensitive work, or lower constraints.tiers"
                        % "; ".join(problems))


def policy_doc(policy):
    return dict((role, {"sensitive": rule["sensitive"], "tier": rule["tier"],
                        "min_quality": rule["min_quality"], "why": rule["why"]})
                for role, rule in policy.items())


# -- which class of provider wins, and why -----------------------------------------------------
def class_comparison(problem, summarise):
    """For each provider class, the best balanced plan using that class only; the winner is
    the class of the chosen (balanced) plan. ``summarise(plan)`` -> the plan summary."""
    from ansible_collections.llmops.codestack.plugins.module_utils._optimiser import Problem
    rows = {}
    for klass in CLASSES:
        blocks = dict((roles, [c for c in cands if provider_class(c.opt) == klass])
                      for roles, cands in problem.blocks.items())
        if not any(all(blocks[b] for b in p) for p in problem.partitions):
            rows[klass] = {"available": False}
            continue
        sub = Problem(blocks, problem.budget, problem.deadline, problem.threshold,
                      problem.weights, problem.deadline_weight)
        plan, met = sub.best("balanced")
        summary = summarise(plan)
        rows[klass] = {"available": True, "cost_usd": summary["cost_usd"],
                       "hours": summary["hours"], "quality_score": summary["quality_score"],
                       "fits": summary["fits_budget"] and summary["meets_deadline"]
                       and summary["meets_quality"], "constraints_met": list(met),
                       "deployments": summary["deployments"]}
    return rows


def name_alternatives(doc):
    """API and Ollama alternatives need no provisioning: they get names now, so that the
    gateway routes them as ``<alias>-alt<N>`` groups (stack_endpoints reads the plan)."""
    if "api" in doc:
        for index, alt in enumerate(doc["alternatives"], 1):
            alt["name"] = "%s-alt%d" % (doc["name"], index)


def why_text(chosen_classes, rows, money):
    """Why the chosen plan's classes win: each class's best plan next to the chosen one."""
    won = "+".join(sorted(chosen_classes))
    best = [rows[k] for k in sorted(chosen_classes) if rows[k].get("available")]
    lines = []
    for klass in CLASSES:
        row = rows[klass]
        if not row.get("available"):
            lines.append("%s: none allowed for these roles (providers, sensitivity, tiers)"
                         % klass)
            continue
        lines.append("%s alone: %s, %.2f h, quality %.1f%s" % (
            klass, money(row["cost_usd"]), row["hours"], row["quality_score"],
            "" if row["fits"] else ", does not fit the limits"))
    reasons = []
    if len(chosen_classes) == 1 and best:
        mine = best[0]
        for klass in CLASSES:
            row = rows[klass]
            if klass in chosen_classes or not row.get("available"):
                continue
            if not row["fits"] and mine["fits"]:
                reasons.append("%s does not fit the limits" % klass)
            elif row["cost_usd"] > mine["cost_usd"] + 1e-9:
                reasons.append("%s costs %s more" % (klass, money(row["cost_usd"]
                                                                  - mine["cost_usd"])))
            elif row["hours"] > mine["hours"] + 1e-9:
                reasons.append("%s is %s cheaper but %.2f h slower" % (
                    klass, money(mine["cost_usd"] - row["cost_usd"]),
                    row["hours"] - mine["hours"]))
            else:
                reasons.append("%s scores lower on quality" % klass)
    else:
        reasons.append("mixing classes beats every single class (best value per role)")
    return "%s wins: %s. %s." % (won, "; ".join(reasons) or "the only class allowed",
                                 "; ".join(lines))
