# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: litellm_config
short_description: Build a LiteLLM proxy config.yaml from a plan and the serving endpoints
version_added: 0.1.0
description:
  - Returns the proxy configuration as a dictionary (C(model_list), C(router_settings),
    C(litellm_settings), C(general_settings)); the P(llmops.codestack.litellm_gateway#role) role
    writes it as C(config.yaml).
  - One model group per role alias of the plan (C(roles.<role>.alias)) plus the C(intent) group.
    Each group's deployment points at the endpoint of the plan deployment serving that role.
  - Alternatives of a deployment that have an endpoint become groups named C(<alias>-alt<N>)
    (serverless ones first). Fallbacks of a group are its alternatives, then the groups of other
    roles served by cheaper deployments (most expensive of those first).
  - Timeouts leave room for the deployment's C(cold_start_s). GPU time is priced per second
    (C(price_per_hour_usd / 3600)); the plan's budget becomes the proxy's C(max_budget).
  - Per-token API and Ollama deployments (those with an C(api) block in the plan) use LiteLLM's
    own providers (C(openrouter/...), C(deepseek/...), C(mistral/...), C(ollama_chat/...)) with
    the plan's C(api_base) and per-token prices (C(input_cost_per_token),
    C(output_cost_per_token)); their keys stay C(os.environ/...) references. Ollama routes ask
    for the deployment's context (C(num_ctx) = C(serving.max_model_len)).
  - Routing policy. A role marked C(sensitive) in the plan never gets a route or fallback to a
    C(third_party) deployment (its own alternatives or another role's group); when the
    blueprint marks anything sensitive, the C(intent) group avoids them too.
options:
  _input:
    description: The plan (content of plan.json, see docs/plan-format.md).
    type: dict
    required: true
  endpoints:
    description:
      - Where each deployment answers, keyed by C(deployments[].name).
      - Each value has C(api_base), C(api_key) (a key or C(os.environ/NAME)) and optionally
        C(model) (the served model name; defaults to the first role alias of the deployment) and
        C(ssl_verify) (path of the only CA file the route trusts, for a model server serving its
        own TLS).
      - A deployment behind the KEDA HTTP interceptor (provider C(kubernetes)) also has
        C(extra_headers) (C(Host), which the interceptor routes on), C(timeout) (seconds, the
        interceptor's hold for a cold Deployment plus the answer) and C(num_retries).
    type: dict
    required: true
  intent:
    description:
      - Target of the C(intent) group (C(api_base), C(api_key), C(model)); default the endpoint of
        the cheapest deployment that has one.
    type: dict
  settings:
    description:
      - Tuning keys, all optional. C(request_timeout) (s, default 600), C(num_retries) (2),
        C(allowed_fails) (3), C(cooldown_time) (30), C(vllm_provider) (V(hosted_vllm) or
        V(openai)), C(max_budget_usd) (default from the plan's budget), C(budget_duration)
        (V(30d)), C(deployment_budget_margin) (1.2; 0 disables deployment budgets),
        C(fallbacks) (dict alias to list of groups; replaces the computed ones for that alias),
        C(extra_routes) (list of model_list entries appended), C(database) (bool),
        C(metrics_require_auth) (bool, default false, so Prometheus scrapes C(/metrics) without key),
        C(custom_auth) (C(module.function) of the proxy's custom auth, such as the role's
        V(codestack_auth.user_api_key_auth) for scoped keys; empty for the master key only),
        C(spend_log) (bool, default false; true adds the role's spend logger
        V(codestack_spend.spend_logger) to C(litellm_settings.callbacks), one JSON line per call).
    type: dict
"""

EXAMPLES = r"""
- name: Render the gateway configuration
  ansible.builtin.copy:
    content: "{{ plan | llmops.codestack.litellm_config(endpoints) | to_nice_yaml }}"
    dest: /etc/codestack/litellm/config.yaml
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The LiteLLM proxy configuration.
  type: dict
"""

from ansible.errors import AnsibleFilterError

ROLE_ORDER = ("architect", "coder", "debugger", "reviewer")
SERVERLESS = ("serverless", "runpod_serverless")
# The role's custom logger (roles/litellm_gateway/files/codestack_spend.py), beside config.yaml.
SPEND_LOGGER = "codestack_spend.spend_logger"


def _num(value, default=0.0):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _budget_usd(plan):
    budget = (plan.get("checks") or {}).get("budget") or {}
    limit = budget.get("limit")
    if limit is None:
        return None
    if str(budget.get("currency", "USD")).upper() == "USD":
        return float(limit)
    totals = plan.get("totals") or {}
    usd, eur = _num(totals.get("cost_usd")), _num(totals.get("cost_eur"))
    # Convert with the plan's own rate so the proxy enforces what the planner checked.
    return round(float(limit) * usd / eur, 4) if usd and eur else None


def _third_party(dep):
    """A deployment (or alternative) whose prompts leave the owner's machines."""
    return dep.get("data_policy") == "third_party" or (
        bool(dep.get("api")) and dep.get("data_policy") is None)


def _anything_sensitive(plan):
    blueprint = plan.get("blueprint") or {}
    return bool((blueprint.get("constraints") or {}).get("sensitive")) or any(
        f.get("sensitive") for f in blueprint.get("features") or []) or any(
        r.get("sensitive") for r in (plan.get("roles") or {}).values())


def _is_serverless(dep):
    return dep.get("pricing") in SERVERLESS or dep.get("provider") in SERVERLESS


class _Builder:
    def __init__(self, plan, endpoints, intent, settings):
        self.plan = plan
        self.endpoints = endpoints or {}
        self.intent = intent
        self.s = settings or {}
        self.deps = dict((d["name"], d) for d in plan.get("deployments") or [])

    def _api_route(self, group, dep, endpoint, rid):
        """A per-token API or Ollama: LiteLLM's own provider, prices per token."""
        api = dep["api"]
        model = endpoint.get("model") or api["litellm_model"]
        timeout = int(_num(self.s.get("request_timeout"), 600))
        params = {"model": model, "api_base": endpoint.get("api_base") or api["api_base"],
                  "api_key": endpoint.get("api_key") or "none",
                  "timeout": timeout, "stream_timeout": timeout}
        if model.startswith(("ollama/", "ollama_chat/")):
            # Ollama's default context is a few thousand tokens: ask for the role's
            serving = dep.get("serving") or {}
            params["num_ctx"] = int(serving.get("max_model_len") or api.get("context") or 4096)
        prices = dep.get("price_per_mtok_usd") or {}
        if prices:
            params["input_cost_per_token"] = round(_num(prices.get("input")) / 1e6, 12)
            params["output_cost_per_token"] = round(_num(prices.get("output")) / 1e6, 12)
            self._deployment_budget(params, dep)
        return {"model_name": group, "litellm_params": params,
                "model_info": {"id": rid or "%s--%s" % (group, dep["name"]), "mode": "chat",
                               "data_policy": dep.get("data_policy", "third_party")}}

    def _deployment_budget(self, params, dep):
        """LiteLLM's per-deployment budget: the plan's spend of the roles it serves, times the
        margin (``deployment_budget_margin``; 0 sets none)."""
        margin = _num(self.s.get("deployment_budget_margin"), 1.2)
        spend = sum(_num(r.get("cost_usd")) for r in (self.plan.get("roles") or {}).values()
                    if r.get("deployment") == dep["name"])
        if margin > 0 and spend > 0:
            params["max_budget"] = round(spend * margin, 4)
            params["budget_duration"] = self.s.get("budget_duration", "30d")

    def _route(self, group, dep, served=None, rid=None):
        endpoint = self.endpoints[dep["name"]]
        if dep.get("api"):
            return self._api_route(group, dep, endpoint, rid)
        engine = dep.get("engine", "vllm")
        prefix = "openai" if engine == "llamacpp" else self.s.get("vllm_provider", "hosted_vllm")
        model = endpoint.get("model") or served or (dep.get("roles") or [group])[0]
        timeout = int(_num(self.s.get("request_timeout"), 600) + _num(dep.get("cold_start_s")))
        params = {"model": "%s/%s" % (prefix, model), "api_base": endpoint["api_base"],
                  "api_key": endpoint.get("api_key") or "none",
                  "timeout": timeout, "stream_timeout": timeout}
        if endpoint.get("extra_headers"):
            # a KEDA HTTP interceptor routes on the Host header (docs/autoscaling.md)
            params["extra_headers"] = dict(endpoint["extra_headers"])
        if endpoint.get("timeout"):
            # the interceptor's hold for a cold Deployment plus the backend's answer
            params["timeout"] = params["stream_timeout"] = int(_num(endpoint["timeout"]))
        if endpoint.get("num_retries") is not None:
            params["num_retries"] = int(_num(endpoint["num_retries"]))
        if endpoint.get("ssl_verify"):
            # the CA file the route trusts alone (a pinned private authority), not the system store
            params["ssl_verify"] = endpoint["ssl_verify"]
        price = _num(dep.get("price_per_hour_usd"))
        if price > 0:
            params["input_cost_per_second"] = round(price / 3600.0, 10)
            params["output_cost_per_second"] = 0.0
            self._deployment_budget(params, dep)
        return {"model_name": group, "litellm_params": params,
                "model_info": {"id": rid or "%s--%s" % (group, dep["name"]), "mode": "chat"}}

    def build(self):
        roles = self.plan.get("roles") or {}
        if not roles:
            raise AnsibleFilterError("litellm_config: the plan has no roles")
        model_list, fallbacks, primary, sensitive = [], [], {}, set()
        for role in sorted(roles, key=lambda r: (ROLE_ORDER.index(r) if r in ROLE_ORDER else 9, r)):
            entry = roles[role]
            alias = entry.get("alias") or role
            dep = self.deps.get(entry.get("deployment"))
            if dep is None:
                raise AnsibleFilterError("litellm_config: role %s uses unknown deployment %r"
                                         % (role, entry.get("deployment")))
            if dep["name"] not in self.endpoints:
                raise AnsibleFilterError("litellm_config: no endpoint for deployment %s (role %s)"
                                         % (dep["name"], role))
            if entry.get("sensitive") and _third_party(dep):
                raise AnsibleFilterError("litellm_config: role %s is sensitive but its deployment "
                                         "%s is a third-party API; re-plan" % (role, dep["name"]))
            primary[alias] = dep
            if entry.get("sensitive"):
                sensitive.add(alias)
            model_list.append(self._route(alias, dep))
        alt_groups = {}
        for alias, dep in primary.items():
            alts = [a for a in dep.get("alternatives") or [] if a.get("name") in self.endpoints
                    and not (alias in sensitive and _third_party(a))]
            alts.sort(key=lambda a: (not _is_serverless(a), _num(a.get("price_per_hour_usd"))))
            alt_groups[alias] = []
            for index, alt in enumerate(alts, 1):
                group = "%s-alt%d" % (alias, index)
                alt_groups[alias].append(group)
                model_list.append(self._route(group, alt, served=alias))
        explicit = self.s.get("fallbacks") or {}
        for alias, dep in primary.items():
            price = _num(dep.get("price_per_hour_usd"))
            # Most capable (most expensive) of the cheaper groups first, in role order on ties.
            cheaper = sorted(((-_num(d.get("price_per_hour_usd")), i, a)
                              for i, (a, d) in enumerate(primary.items())
                              if d["name"] != dep["name"] and _num(d.get("price_per_hour_usd")) < price
                              and not (alias in sensitive and _third_party(d))))
            chain = explicit.get(alias, alt_groups[alias] + [entry[2] for entry in cheaper])
            if chain:
                fallbacks.append({alias: list(chain)})
        model_list.append(self._intent_route())
        for alias, chain in explicit.items():
            if alias not in primary and chain:
                fallbacks.append({alias: list(chain)})
        model_list.extend(self.s.get("extra_routes") or [])
        return self._settings(model_list, fallbacks)

    def _intent_route(self):
        if self.intent:
            return {"model_name": "intent",
                    "litellm_params": {"model": self.intent["model"] if "/" in self.intent["model"]
                                       else "openai/" + self.intent["model"],
                                       "api_base": self.intent["api_base"],
                                       "api_key": self.intent.get("api_key") or "none",
                                       "timeout": int(_num(self.s.get("request_timeout"), 600))},
                    "model_info": {"id": "intent--explicit", "mode": "chat"}}
        served = [d for d in self.deps.values() if d["name"] in self.endpoints]
        if _anything_sensitive(self.plan):
            # the intent model reads the whole blueprint: keep it off third-party APIs
            served = [d for d in served if not _third_party(d)]
            if not served:
                raise AnsibleFilterError("litellm_config: the blueprint marks work sensitive and "
                                         "no local or self-hosted deployment can take the intent "
                                         "group; pass intent= (a local model)")
        cheapest = min(served, key=lambda d: (_num(d.get("price_per_hour_usd")), d["name"]))
        return self._route("intent", cheapest, rid="intent--%s" % cheapest["name"])

    def _settings(self, model_list, fallbacks):
        router = {"routing_strategy": "simple-shuffle",
                  "num_retries": int(_num(self.s.get("num_retries"), 2)),
                  "timeout": max(r["litellm_params"].get("timeout", 600) for r in model_list),
                  "allowed_fails": int(_num(self.s.get("allowed_fails"), 3)),
                  "cooldown_time": int(_num(self.s.get("cooldown_time"), 30)),
                  "fallbacks": fallbacks}
        callbacks = ["prometheus"]
        if _bool(self.s.get("spend_log", False)):
            callbacks.append(SPEND_LOGGER)
        litellm_settings = {"callbacks": callbacks, "drop_params": True,
                            "require_auth_for_metrics_endpoint": _bool(
                                self.s.get("metrics_require_auth", False)),
                            "request_timeout": router["timeout"],
                            "num_retries": router["num_retries"]}
        budget = self.s.get("max_budget_usd")
        budget = _budget_usd(self.plan) if budget in (None, "", "None") else _num(budget, None)
        if budget:
            litellm_settings["max_budget"] = float(budget)
            litellm_settings["budget_duration"] = self.s.get("budget_duration", "30d")
        general = {"master_key": "os.environ/LITELLM_MASTER_KEY"}
        if _bool(self.s.get("database")):
            general["database_url"] = "os.environ/DATABASE_URL"
            general["store_model_in_db"] = True
        if self.s.get("custom_auth"):
            general["custom_auth"] = self.s["custom_auth"]
        return {"model_list": model_list, "router_settings": router,
                "litellm_settings": litellm_settings, "general_settings": general}


def litellm_config(plan, endpoints, intent=None, settings=None):
    if not isinstance(plan, dict):
        raise AnsibleFilterError("litellm_config: the plan must be a mapping (plan.json)")
    if not isinstance(endpoints, dict):
        raise AnsibleFilterError("litellm_config: endpoints must be a mapping of deployment name")
    return _Builder(plan, endpoints, intent, settings).build()


class FilterModule:
    def filters(self):
        return {"litellm_config": litellm_config}
