# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between the stage playbooks: a stack directory with plan.json and state.json.

Every stage (plan, provision, serve, route, scale, ide, guard) starts from the stack directory
only, so each one also runs alone. This module reads that directory and derives what the stages
share: the budget in USD, the local and rented deployments, the providers a run can build with
the credentials it has, and the endpoints the gateway routes to. Pure functions: they raise
``StackError`` and never print a secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import json
import os

# The providers the stage playbooks build, and the environment variable holding each one's key.
# "local" needs none: it runs on the control host.
CREDENTIALS = {
    "runpod": "RUNPOD_API_KEY",
    "runpod_serverless": "RUNPOD_API_KEY",
    "vast": "VAST_API_KEY",
}
LOCAL_PROVIDERS = ("local",)
# Clusters the user brings (catalog section ``kubernetes``): no key; deployed by the provision
# stage with vllm_server and keda_autoscaler, reached through the KEDA HTTP interceptor.
KUBERNETES_PROVIDERS = ("kubernetes",)
# Served through the gateway without provisioning (plan deployments with an ``api`` block):
# the per-token APIs, with the environment variable of each one's key (the plan's
# ``api.key_env`` wins, from the catalog), and Ollama on the owner's machine (no key).
API_CREDENTIALS = {
    "openrouter": "OPENROUTER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "mistral": "MISTRAL_API_KEY",
}
KEYLESS_API_PROVIDERS = ("ollama",)
HOURS_PER_MONTH = 730.0   # storage is priced per GB-month (the planner's _billing does the same)


class StackError(Exception):
    """A stack directory that the stages cannot use, with a message naming the file."""


def stack_dir(path, cwd=None):
    """The absolute stack directory: a relative one is the job's working directory's."""
    if not path:
        raise StackError("codestack_output is empty: name the stack's directory")
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path):
        path = os.path.join(cwd or os.getcwd(), path)
    return os.path.realpath(path)


def _read_json(path, what):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise StackError("cannot read the %s %s: %s" % (what, path, exc.strerror or exc))
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StackError("the %s %s is not UTF-8 (byte %d)" % (what, path, exc.start))
    except ValueError as exc:
        raise StackError("the %s %s is not JSON: %s" % (what, path, exc))


def decode_document(content):
    """A JSON document given as text or as slurp's base64."""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    text = content.strip()
    if text and text[0] not in "{[":
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise StackError("not JSON and not base64: %s" % exc)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StackError("not JSON: %s" % exc)


def parse_plan(content, path="plan.json"):
    """A plan from its text (or base64), checked for the fields every stage relies on."""
    try:
        plan = decode_document(content)
    except StackError as exc:
        raise StackError("%s is not a plan.json (docs/plan-format.md): %s" % (path, exc))
    return _check_plan(plan, path)


def load_plan(path):
    """plan.json, checked for the fields every stage relies on."""
    return _check_plan(_read_json(path, "plan"), path)


def _check_plan(plan, path):
    missing = [key for key in ("stack_id", "deployments", "roles") if not isinstance(plan, dict) or key not in plan]
    if missing:
        raise StackError("%s is not a plan.json (docs/plan-format.md): missing %s" % (path, ", ".join(missing)))
    return plan


def load_state(path, stack_id=None):
    """state.json, or an empty document when the stack has no resource yet."""
    if not os.path.exists(path):
        return {"stack_id": stack_id, "resources": [], "removed": []}
    state = _read_json(path, "state file")
    if not isinstance(state, dict) or not isinstance(state.get("resources", []), list):
        raise StackError("the state file %s has no list of resources" % path)
    if stack_id and state.get("stack_id") not in (None, stack_id):
        raise StackError("the state file %s belongs to stack %s, not %s: give each stack its own codestack_output"
                         % (path, state.get("stack_id"), stack_id))
    state.setdefault("resources", [])
    state.setdefault("removed", [])
    return state


def budget_usd(plan):
    """The blueprint's budget in USD (the guard's limit), from the plan's budget check."""
    budget = (plan.get("checks") or {}).get("budget") or {}
    limit = float(budget.get("limit") or 0.0)
    if budget.get("currency") == "EUR":
        limit *= float((plan.get("totals") or {}).get("usd_per_eur") or 1.0)
    return round(limit, 2)


def split_deployments(plan):
    """(local, rented) deployments of the plan; API-served ones (api_deployments) and those on
    the user's clusters (kubernetes_deployments) are neither."""
    deployments = [d for d in plan.get("deployments") or [] if not d.get("api")]
    local = [d for d in deployments if d.get("provider") in LOCAL_PROVIDERS]
    rented = [d for d in deployments
              if d.get("provider") not in LOCAL_PROVIDERS + KUBERNETES_PROVIDERS]
    return local, rented


def served_context(dep):
    """The context window a deployment serves: what its engine is started with
    (``serving.max_model_len``), else the model's, else a per-token API's; None if unknown."""
    for value in ((dep.get("serving") or {}).get("max_model_len"),
                  (dep.get("model") or {}).get("max_model_len"),
                  (dep.get("api") or {}).get("context")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def agent_model_limits(plan, aliases, overrides=None, output_share=0.25, output_max=16384):
    """{alias: {context, output}} for the coding agents' configurations.

    Without a limit, the Kilo CLI and KiloCode 7.x ask every request for 32000 output tokens:
    vLLM refuses a request whose prompt plus ``max_tokens`` exceeds ``--max-model-len``, and
    llama.cpp generates until its context is full when the model does not stop. ``context`` is
    the smallest window among the deployment a role's alias routes to and its capacity
    fallbacks; ``output`` is ``output_share`` of it, at most ``output_max``. ``overrides``
    ({alias: {context, output}}) wins per field; an alias whose context is unknown is left out.
    """
    if not isinstance(aliases, dict):
        raise StackError("agent_model_limits: expected {role: alias}, not %r" % (aliases,))
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise StackError("agent_model_limits: the overrides must be {alias: {context, output}}")
    share = float(output_share)
    if not 0 < share < 1:
        raise StackError("agent_model_limits: output_share must be between 0 and 1, not %r" % (output_share,))
    unknown = sorted(set(overrides) - set(aliases.values()))
    if unknown:
        raise StackError("agent_model_limits: no role routes to %s (the aliases are %s)"
                         % (", ".join(map(str, unknown)), ", ".join(sorted(set(aliases.values())))))
    deployments = {d.get("name"): d for d in (plan or {}).get("deployments") or [] if isinstance(d, dict)}
    contexts = {}
    for role, entry in ((plan or {}).get("roles") or {}).items():
        if not isinstance(entry, dict) or aliases.get(role) is None:
            continue
        dep = deployments.get(entry.get("deployment"))
        if dep is None:
            continue
        routes = [dep] + [a for a in dep.get("alternatives") or [] if isinstance(a, dict)]
        windows = [c for c in (served_context(route) for route in routes) if c]
        if windows:
            alias = aliases[role]
            contexts[alias] = min(windows + ([contexts[alias]] if alias in contexts else []))
    out = {}
    for alias in dict.fromkeys(aliases.values()):
        given = overrides.get(alias) or {}
        if not isinstance(given, dict):
            raise StackError("agent_model_limits: the limits of %s must be {context, output}, not %r" % (alias, given))
        context = given.get("context", contexts.get(alias))
        if context is None:
            continue
        output = given.get("output", min(int(output_max), int(int(context) * share)))
        for field, value in (("context", context), ("output", output)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise StackError("agent_model_limits: %s of %s must be a positive integer, not %r"
                                 % (field, alias, value))
        if output >= context:
            raise StackError("agent_model_limits: the output of %s (%d) must be smaller than its context (%d)"
                             % (alias, output, context))
        out[alias] = {"context": context, "output": output}
    return out


def kubernetes_deployments(plan):
    """The deployments on a cluster the user brings (provider ``kubernetes``)."""
    return [d for d in plan.get("deployments") or []
            if not d.get("api") and d.get("provider") in KUBERNETES_PROVIDERS]


def _by_deployment(state, providers):
    """{deployment name: its state resource} for the resources of ``providers``."""
    out = {}
    for res in (state or {}).get("resources") or []:
        attrs = res.get("attributes") or {}
        if res.get("provider") in providers and attrs.get("deployment"):
            out[attrs["deployment"]] = res
    return out


def _kubernetes_by_deployment(state):
    return _by_deployment(state, KUBERNETES_PROVIDERS)


def api_deployments(plan):
    """The deployments the gateway calls directly: per-token APIs and Ollama."""
    return [d for d in plan.get("deployments") or [] if d.get("api")]


def _key_env(dep):
    api = dep.get("api") or {}
    if dep.get("provider") in KEYLESS_API_PROVIDERS:
        return None
    return api.get("key_env") or API_CREDENTIALS.get(dep.get("provider"))


def api_key_envs(plan):
    """Names of the environment variables holding the keys the plan's API routes use
    (alternatives included), for the gateway's environment; never their values."""
    names = set()
    for dep in api_deployments(plan):
        for one in [dep] + [a for a in dep.get("alternatives") or [] if a.get("api")]:
            if _key_env(one):
                names.add(_key_env(one))
    return sorted(names)


def keyed_providers(environ):
    """The providers whose key is set in ``environ``, "local" (and keyless Ollama) first."""
    keyed = set(p for p, var in CREDENTIALS.items() if environ.get(var))
    keyed |= set(p for p, var in API_CREDENTIALS.items() if environ.get(var))
    return list(LOCAL_PROVIDERS) + list(KEYLESS_API_PROVIDERS) + sorted(keyed)


def build_problems(plan, environ):
    """Every reason this plan cannot be built with these credentials, one message each."""
    problems = []
    providers = sorted({d.get("provider") for d in plan.get("deployments") or [] if not d.get("api")})
    supported = set(LOCAL_PROVIDERS) | set(CREDENTIALS) | set(KUBERNETES_PROVIDERS)
    unsupported = [p for p in providers if p not in supported]
    if unsupported:
        problems.append("The stage playbooks provision %s deployments; the plan asks for %s: limit "
                        "constraints.providers in the blueprint" % (", ".join(sorted(supported)), ", ".join(unsupported)))
    keyed = set(keyed_providers(environ))
    missing = [p for p in providers if p in CREDENTIALS and p not in keyed]
    if missing:
        names = sorted({CREDENTIALS[p] for p in missing})
        problems.append("The plan rents on %s: set %s (or limit constraints.providers in the blueprint)"
                        % (", ".join(missing), " and ".join(names)))
    unkeyed = sorted({"%s (%s)" % (d.get("provider"), _key_env(d)) for d in api_deployments(plan)
                      if _key_env(d) and not environ.get(_key_env(d))})
    if unkeyed:
        problems.append("The plan routes roles to the per-token API(s) %s: set those keys (or limit "
                        "constraints.providers in the blueprint)" % ", ".join(unkeyed))
    return problems


def usable_alternatives(deployments, providers):
    """The deployments with only the alternatives whose provider is in ``providers``."""
    allowed = set(providers or [])
    out = []
    for dep in deployments:
        dep = dict(dep)
        dep["alternatives"] = [alt for alt in dep.get("alternatives") or [] if alt.get("provider") in allowed]
        out.append(dep)
    return out


def find_resource(state, resource_id, provider="local"):
    """The live resource of ``state`` with this id and provider, or None."""
    for res in (state or {}).get("resources") or []:
        if res.get("id") == resource_id and res.get("provider") == provider:
            return res
    return None


def stale_rented(state, plan):
    """Names of the rented deployments recorded in ``state`` that the plan no longer has."""
    _local, rented = split_deployments(plan)
    wanted = {d.get("name") for d in rented}
    names = []
    for res in (state or {}).get("resources") or []:
        if res.get("provider") in CREDENTIALS and res.get("name") not in wanted and res.get("name") not in names:
            names.append(res.get("name"))
    return names


# The contract's scaling defaults (docs/plan-format.md, "scaling"), for plans written before the
# planner priced scaling: rented pods and instances stop when idle, serverless endpoints scale at
# the provider, clusters through KEDA, everything else is always on.
DEFAULT_MODES = {"runpod": "idle_stop", "vast": "idle_stop", "runpod_serverless": "serverless",
                 "kubernetes": "keda"}
DEFAULT_IDLE_TIMEOUT_S = 300
WAKE_MARGIN_S = 60
WAKER_MODES = ("idle_stop",)


def scaling_policy(dep):
    """The deployment's ``scaling`` with the contract's defaults filled in."""
    given = dict(dep.get("scaling") or {})
    mode = given.get("mode") or DEFAULT_MODES.get(dep.get("provider"), "always_on")
    cold = float(dep.get("cold_start_s") or 0)
    policy = {
        "mode": mode,
        "idle_timeout_s": int(given.get("idle_timeout_s") or (DEFAULT_IDLE_TIMEOUT_S if mode != "always_on" else 0)),
        "expected_wakes": int(given.get("expected_wakes") or 0),
        "wake_policy": given.get("wake_policy") or "wait",
        # Without the plan's figure: a full cold start (the worst case) plus a margin.
        "wake_timeout_s": int(given.get("wake_timeout_s") or (cold + max(WAKE_MARGIN_S, cold / 2))),
    }
    if policy["wake_policy"] not in ("wait", "fallback"):
        raise StackError("deployment %s: scaling.wake_policy must be wait or fallback, not %r"
                         % (dep.get("name"), policy["wake_policy"]))
    return policy


def _rented_by_deployment(state):
    return _by_deployment(state, CREDENTIALS)


def waker_deployments(plan, state):
    """{deployment: what the waker needs} for every idle_stop pod or instance the state lists."""
    by_deployment = _rented_by_deployment(state)
    out = {}
    for dep in plan.get("deployments") or []:
        policy = scaling_policy(dep)
        res = by_deployment.get(dep.get("name"))
        if policy["mode"] not in WAKER_MODES or res is None or res.get("kind") not in ("pod", "instance"):
            continue
        attrs = res.get("attributes") or {}
        if not attrs.get("endpoint_url"):
            continue
        options = [dep] + list(dep.get("alternatives") or [])
        chosen = next((o for o in options if o.get("offer_id") == attrs.get("offer_id")), dep)
        gpu = chosen.get("gpu") or {}
        model = chosen.get("model") or {}
        # A fresh machine replaces a pod whose host has no free GPU any more: the same GPU type,
        # then the plan's alternatives on the same provider with the same model and GPU count.
        same_model = (model.get("key"), model.get("quantization"), gpu.get("count"))
        replacements = []
        for opt in [chosen] + [o for o in options if o is not chosen]:
            ogpu, omodel = opt.get("gpu") or {}, opt.get("model") or {}
            if opt.get("provider") != res["provider"] or (omodel.get("key"), omodel.get("quantization"), ogpu.get("count")) != same_model:
                continue
            replacements.append({"offer_id": opt.get("offer_id"), "gpu_type_id": ogpu.get("provider_id") or ogpu.get("name"),
                                 "gpu": ogpu.get("name"), "gpu_count": int(ogpu.get("count") or 1),
                                 "region": opt.get("region") or "",
                                 "interruptible": opt.get("pricing") in ("spot", "bid"),
                                 "price_per_hour_usd": opt.get("price_per_hour_usd")})
        # The model server's own TLS authority, read here on the controller: a waker on another
        # control host cannot open the controller's file (ca_file stays for older wakers).
        ca_pem = ""
        if attrs.get("tls_ca_file"):
            try:
                with open(attrs["tls_ca_file"]) as handle:
                    ca_pem = handle.read()
            except (IOError, OSError):
                ca_pem = ""   # the waker then opens ca_file itself (and says why it cannot)
        out[dep["name"]] = dict(policy, provider=res["provider"], kind=res["kind"], resource_id=str(res["id"]),
                                name=res.get("name") or dep["name"], upstream=attrs["endpoint_url"],
                                model=attrs.get("model") or dep["name"], ca_file=attrs.get("tls_ca_file") or "",
                                ca_pem=ca_pem, gpu_count=int(gpu.get("count") or 1),
                                bid_per_gpu=(float(chosen["price_per_hour_usd"]) / int(gpu.get("count") or 1)
                                             if chosen.get("pricing") in ("spot", "bid") and chosen.get("price_per_hour_usd")
                                             else None),
                                cold_start_s=float(chosen.get("cold_start_s") or dep.get("cold_start_s") or 0),
                                replacements=replacements)
    return out


def waker_url(state, deployment):
    """The waker's base URL for ``deployment`` when the waker runs and manages it, else ''."""
    waker = ((find_resource(state, "waker") or {}).get("attributes") or {})
    if deployment in (waker.get("deployments") or []) and waker.get("url"):
        return "%s/d/%s/v1" % (waker["url"].rstrip("/"), deployment)
    return ""


def stack_endpoints(plan, state, local_api_key="", vllm_api_key=""):
    """{deployment: {api_base, api_key, model}} for the gateway, from the state file alone.

    Local deployments route to the local engine's service record (id ``llamacpp``); rented ones
    to the resource recorded for them (``attributes.deployment``) with its endpoint URL and served
    model. Raises ``StackError`` naming every deployment that has no endpoint yet.
    """
    local, rented = split_deployments(plan)
    endpoints = {}
    missing = []
    engine = find_resource(state, "llamacpp")
    for dep in local:
        attrs = (engine or {}).get("attributes") or {}
        if not attrs.get("api_base"):
            missing.append("%s (local engine not recorded: run the serve stage)" % dep.get("name"))
            continue
        endpoints[dep["name"]] = {"api_base": attrs["api_base"], "api_key": local_api_key or "none",
                                  "model": attrs.get("model") or dep["name"]}
    by_deployment = {}
    for res in (state or {}).get("resources") or []:
        attrs = res.get("attributes") or {}
        if res.get("provider") in CREDENTIALS and attrs.get("deployment"):
            by_deployment[attrs["deployment"]] = res
    for dep in rented:
        res = by_deployment.get(dep.get("name"))
        url = ((res or {}).get("attributes") or {}).get("endpoint_url")
        if not url:
            missing.append("%s (%s)" % (dep.get("name"), "no endpoint URL yet" if res else "not provisioned"))
            continue
        endpoints[dep["name"]] = {"api_base": url, "api_key": endpoint_key(res, vllm_api_key),
                                  "model": res["attributes"].get("model") or dep["name"]}
        ca_file = res["attributes"].get("tls_ca_file")
        waker = waker_url(state, dep["name"])
        if waker:
            # An idle_stop machine is reached through the waker, which resumes it on demand and
            # speaks TLS to it itself (plain HTTP on the control host's loopback).
            endpoints[dep["name"]]["api_base"] = waker
            if scaling_policy(dep)["wake_policy"] == "fallback":
                # While it wakes the waker answers 503 at once: the gateway goes to the fallback
                # on that first answer, not after its retries and their back-off.
                endpoints[dep["name"]]["num_retries"] = 0
        elif ca_file:
            # The model server serves its own TLS: the gateway trusts this authority alone.
            try:
                with open(ca_file) as handle:
                    endpoints[dep["name"]]["ca_pem"] = handle.read()
            except OSError as exc:
                missing.append("%s (cannot read its TLS authority %s: %s)" % (dep.get("name"), ca_file, exc.strerror))
    clusters = _kubernetes_by_deployment(state)
    for dep in kubernetes_deployments(plan):
        res = clusters.get(dep.get("name"))
        attrs = (res or {}).get("attributes") or {}
        if not attrs.get("endpoint_url"):
            missing.append("%s (not deployed to its cluster yet: run the provision stage)" % dep.get("name"))
            continue
        # Through the KEDA HTTP interceptor, which routes on the Host header and holds a request
        # while the Deployment scales from zero (docs/autoscaling.md).
        endpoints[dep["name"]] = {"api_base": attrs["endpoint_url"], "api_key": vllm_api_key or "none",
                                  "model": attrs.get("model") or dep["name"],
                                  "extra_headers": {"Host": attrs["host_header"]},
                                  "timeout": int(attrs.get("gateway_timeout_s") or 0),
                                  "num_retries": int(attrs.get("gateway_retries") or 0)}
    endpoints.update(api_endpoints(plan))
    if missing:
        raise StackError("no endpoint to route to for: %s" % "; ".join(missing))
    return endpoints


def rendered_only_aliases(plan, state):
    """{alias: manifest directory} of the role aliases whose deployment is on a user's cluster
    but was only rendered (no KUBECONFIG): the gateway routes them, nothing answers yet."""
    clusters = _kubernetes_by_deployment(state)
    out = {}
    for info in (plan.get("roles") or {}).values():
        res = clusters.get(info.get("deployment"))
        attrs = (res or {}).get("attributes") or {}
        if res is not None and not attrs.get("applied"):
            out[info.get("alias")] = attrs.get("manifest_dir") or ""
    return out


def api_endpoints(plan):
    """{name: {api_base, api_key, model}} of the plan's API-served deployments and their named
    alternatives, from the plan alone: the key is an ``os.environ/<key_env>`` reference (the
    gateway's environment holds the value), Ollama's is "none"."""
    endpoints = {}
    for dep in api_deployments(plan):
        for one in [dep] + [a for a in dep.get("alternatives") or [] if a.get("api") and a.get("name")]:
            api = one["api"]
            key = _key_env(one)
            endpoints[one["name"]] = {"api_base": api["api_base"],
                                      "api_key": ("os.environ/%s" % key) if key else "none",
                                      "model": api["litellm_model"]}
    return endpoints


def endpoint_key(resource, vllm_api_key=""):
    """The key the gateway sends to a rented deployment: the stack's vLLM key for a model
    server of its own (pod, instance); for a RunPod serverless endpoint the RunPod API key,
    which RunPod's OpenAI-compatible route authenticates, as an environment reference
    (``os.environ/RUNPOD_API_KEY``) so that it is never written into the gateway's config."""
    if resource.get("kind") == "endpoint" and resource.get("provider") in CREDENTIALS:
        return "os.environ/%s" % CREDENTIALS[resource["provider"]]
    return vllm_api_key or "none"


def plan_storage(plan):
    """{deployment: {gb, running_gb, running_usd_per_gb_hour, stopped_usd_per_gb_hour}}: the
    disk each rented machine of the plan keeps (``gb``, ``billed.storage_gb``), the disks it has
    while running (``running_gb``: that plus a container disk erased at each stop) and what a
    GB is billed while running and while stopped (the storage prices in
    ``cost_terms.scaling``); deployments without storage (serverless, local, plans from before
    scaling) are left out."""
    out = {}
    for dep in plan.get("deployments") or []:
        gb = float((dep.get("billed") or {}).get("storage_gb") or 0.0)
        terms = (dep.get("cost_terms") or {}).get("scaling") or {}
        if not gb or terms.get("mode") not in ("idle_stop", "always_on"):
            continue
        running = float(terms.get("storage_running_usd_per_gb_month") or 0.0) / HOURS_PER_MONTH
        stopped = float(terms.get("storage_stopped_usd_per_gb_month") or 0.0) / HOURS_PER_MONTH
        if running or stopped:
            out[dep["name"]] = {"gb": gb,
                                "running_gb": gb + float(terms.get("container_disk_gb") or 0.0),
                                "running_usd_per_gb_hour": round(running, 9),
                                "stopped_usd_per_gb_hour": round(stopped, 9)}
    return out


def plan_clusters(plan):
    """{deployment: {usd_per_hour, idle_timeout_s}}: the deployments on a cluster the user brings
    (provider ``kubernetes``) whose nodes have an internal hourly price (the user catalog's
    ``price_per_hour``, the plan's ``price_per_hour_usd``) and the scaledown period KEDA keeps
    them up after the last request (``scaling.idle_timeout_s``). Free clusters are left out."""
    out = {}
    for dep in kubernetes_deployments(plan):
        price = float(dep.get("price_per_hour_usd") or 0.0)
        if price > 0:
            out[dep["name"]] = {"usd_per_hour": price,
                                "idle_timeout_s": scaling_policy(dep)["idle_timeout_s"]}
    return out


def model_servers(state):
    """The rented model servers to wait for: [{deployment, url, model}] (serverless endpoints
    have no server of their own to wait for)."""
    servers = []
    for res in (state or {}).get("resources") or []:
        attrs = res.get("attributes") or {}
        if res.get("provider") in CREDENTIALS and res.get("kind") != "endpoint" and attrs.get("endpoint_url"):
            url = attrs["endpoint_url"].rstrip("/")
            if url.endswith("/v1"):
                url = url[:-3]
            servers.append({"deployment": attrs.get("deployment") or res.get("name"), "url": url,
                            "model": attrs.get("model") or res.get("name"), "id": res.get("id"),
                            "provider": res.get("provider"), "tls_ca_file": attrs.get("tls_ca_file") or ""})
    return servers


# How each kind of deployment scales today, and what it bills while idle (docs/site.md, "scale").
SCALING = {
    ("local", "service"): ("always_on", "nothing: it runs on the control host"),
    ("runpod", "pod"): ("always_on", "the pod's hourly price until the budget guard stops it or teardown"),
    ("vast", "instance"): ("always_on", "the instance's hourly price until the budget guard stops it or teardown"),
    ("runpod_serverless", "endpoint"): ("serverless", "nothing: RunPod scales the workers to zero after idleTimeout"),
}


def scaling_report(plan, state):
    """[{deployment, provider, kind, mode, idle_billing}] for every plan deployment, as the stack
    really scales it."""
    by_deployment = {}
    for res in (state or {}).get("resources") or []:
        attrs = res.get("attributes") or {}
        if attrs.get("deployment"):
            by_deployment[attrs["deployment"]] = res
    rows = []
    for dep in plan.get("deployments") or []:
        provider = dep.get("provider")
        res = by_deployment.get(dep.get("name"))
        kind = (res or {}).get("kind") or ("service" if provider in LOCAL_PROVIDERS else "not provisioned")
        mode, idle = SCALING.get((provider, kind), ("always_on", "until teardown"))
        if waker_url(state, dep.get("name")):
            policy = scaling_policy(dep)
            mode, idle = "idle_stop", ("its disk only: the waker stops it after %ss without requests and resumes it "
                                       "on the next one (%s)" % (policy["idle_timeout_s"], policy["wake_policy"]))
        if res is not None and provider in KUBERNETES_PROVIDERS:
            attrs = res.get("attributes") or {}
            mode = "keda"
            idle = ("nothing: KEDA scales it to zero after %ss without requests and the interceptor wakes it "
                    "(the nodes are the owner's)" % attrs.get("idle_timeout_s")) if attrs.get("applied") else \
                ("nothing: rendered only, not applied (no KUBECONFIG); manifests in %s" % attrs.get("manifest_dir"))
        if res is None and provider not in LOCAL_PROVIDERS:
            mode, idle = "none", "nothing: not provisioned"
        rows.append({"deployment": dep.get("name"), "provider": provider, "kind": kind,
                     "mode": mode, "idle_billing": idle})
    return rows


def host_conflicts(results, own_dirs):
    """Lines naming each unit that runs another stack's service: ``results`` are
    ``systemctl is-active`` results whose ``item`` is the slurp result of the unit file."""
    own = [str(d).rstrip("/") + "/" for d in own_dirs if d]
    conflicts = []
    for result in results:
        if (result.get("stdout") or "").strip() != "active":
            continue
        unit = result.get("item") or {}
        try:
            text = base64.b64decode(unit.get("content") or "").decode("utf-8", "replace")
        except (TypeError, ValueError) as exc:
            raise StackError("host_conflicts: unreadable unit file of %s: %s" % (unit.get("item"), exc))
        start = next((line.split("=", 1)[1].strip() for line in text.splitlines()
                      if line.startswith("ExecStart=")), "")
        program = start.split(" ", 1)[0]
        if not any(program.startswith(d) for d in own):
            conflicts.append("unit %s runs %s" % (unit.get("item"), program or "(no ExecStart)"))
    return conflicts


def check_report(plan, stage, host="localhost"):
    """What a stage would create, for a check run (site.yml --check) on a stack not built yet:
    one line per resource, naming where it would run. Nothing is read or written."""
    local, rented = split_deployments(plan or {})
    aliases = sorted({r.get("alias") for r in ((plan or {}).get("roles") or {}).values() if r.get("alias")})
    stack_id = (plan or {}).get("stack_id") or "?"
    lines = []
    if stage == "provision":
        for dep in rented:
            gpu = dep.get("gpu") or {}
            lines.append("would rent %s: %sx %s on %s (USD %s/h), labelled %s" % (
                dep.get("name"), gpu.get("count"), gpu.get("name"), dep.get("provider"),
                dep.get("price_per_hour_usd"), stack_id))
        for dep in kubernetes_deployments(plan or {}):
            where = dep.get("kubernetes") or {}
            lines.append("would deploy %s to cluster %s, namespace %s (%sx %s, vLLM + KEDA scale to zero; "
                         "applied with KUBECONFIG, else rendered into the stack directory)" % (
                             dep.get("name"), where.get("cluster", "?"), where.get("namespace", "codestack"),
                             (dep.get("gpu") or {}).get("count"), (dep.get("gpu") or {}).get("name")))
        if not rented and not kubernetes_deployments(plan or {}):
            lines.append("would rent nothing (every deployment is local)")
    elif stage == "serve":
        for dep in rented:
            lines.append("would wait for the model server of %s to list %s" % (
                dep.get("name"), (dep.get("model") or {}).get("name")))
        for dep in local:
            lines.append("would start llama.cpp for %s (%s) on %s in /var/lib/codestack/%s/llamacpp" % (
                dep.get("name"), (dep.get("model") or {}).get("name"), host, stack_id))
    elif stage == "route":
        lines.append("would start the LiteLLM gateway on %s in /var/lib/codestack/%s/litellm with aliases %s"
                     % (host, stack_id, ", ".join(aliases)))
        if ((plan or {}).get("blueprint") or {}).get("ide", "kilocode") != "none":
            lines.append("would write the IDE's scoped key (role aliases only)")
    elif stage == "ide":
        if ((plan or {}).get("blueprint") or {}).get("ide", "kilocode") == "none":
            lines.append("would install no IDE (ide: none)")
        else:
            lines.append("would start code-server with KiloCode on %s, one mode per role (%s)"
                         % (host, ", ".join(aliases)))
    elif stage == "expose":
        lines.append("would serve the gateway%s over TLS on %s (Caddy; services on loopback only)"
                     % ("" if ((plan or {}).get("blueprint") or {}).get("ide", "kilocode") == "none" else " and the IDE",
                        host))
    elif stage == "guard":
        if rented or plan_clusters(plan or {}):
            lines.append("would start the budget guard on %s at USD %s" % (host, budget_usd(plan)))
        else:
            lines.append("would start no budget guard (nothing rented)")
    else:
        raise StackError("check_report: unknown stage %r" % stage)
    return lines


def summary(plan, state, directory):
    """The lines site.yml ends with: where everything is, per role what serves it, the estimate,
    the guard and the teardown command."""
    deployments = dict((d.get("name"), d) for d in plan.get("deployments") or [])
    lines = ["Stack %s: plan %s/plan.json, report %s/report.md, state %s/state.json"
             % (plan.get("stack_id"), directory, directory, directory)]
    gateway = (find_resource(state, "litellm") or {}).get("attributes") or {}
    aliases = sorted({r.get("alias") for r in (plan.get("roles") or {}).values() if r.get("alias")})
    if gateway:
        lines.append("Gateway: %s (master key in %s on %s); aliases: %s"
                     % (gateway.get("api_base"), gateway.get("master_key_file"), gateway.get("host", "localhost"),
                        ", ".join(aliases)))
    ide = (find_resource(state, "code-server") or {}).get("attributes") or {}
    lines.append("IDE: %s (password in %s)" % (ide["url"], ide.get("password_file")) if ide.get("url")
                 else "IDE: not installed (ide: none)")
    proxy = (find_resource(state, "reverse-proxy") or {}).get("attributes") or {}
    if proxy:
        lines.append("TLS on %s: %s; %s" % (
            proxy.get("host"), ", ".join("%s %s" % item for item in sorted((proxy.get("urls") or {}).items())),
            ("CA certificate %s, SHA-256 %s (clients trust this file alone)"
             % (proxy.get("ca_file"), proxy.get("ca_sha256"))) if proxy.get("ca_file")
            else "certificate from ACME for %s" % proxy.get("domain")))
    per_role = []
    for role, info in sorted((plan.get("roles") or {}).items()):
        dep = deployments.get(info.get("deployment")) or {}
        model = dep.get("model") or {}
        gpu = dep.get("gpu") or {}
        per_role.append("%s -> %s %s on %sx %s (%s, %s)" % (
            role, model.get("name"), model.get("quantization"), gpu.get("count"), gpu.get("name"),
            dep.get("provider"), info.get("deployment")))
    lines.append("Per role: " + "; ".join(per_role))
    serving = []
    for res in state.get("resources") or []:
        attrs = res.get("attributes") or {}
        if res.get("provider") in CREDENTIALS:
            serving.append("%s on %s %s (%s %s, USD %s/h)" % (
                attrs.get("deployment") or res.get("name"), res.get("provider"), attrs.get("gpu"), res.get("kind"),
                res.get("id"), res.get("cost_per_hour")))
        elif res.get("provider") in KUBERNETES_PROVIDERS:
            serving.append("%s on cluster %s, namespace %s (%s, through the KEDA interceptor, Host %s)" % (
                attrs.get("deployment") or res.get("name"), attrs.get("cluster"), attrs.get("namespace"),
                "applied" if attrs.get("applied") else "rendered only: " + str(attrs.get("manifest_dir")),
                attrs.get("host_header")))
    if find_resource(state, "llamacpp"):
        serving.append("local deployments on the control host (llama.cpp)")
    lines.append("Serving: " + ("; ".join(serving) or "nothing"))
    totals = plan.get("totals") or {}
    lines.append("Estimated: USD %s over %s h" % (totals.get("cost_usd"), totals.get("hours")))
    calibrated = os.path.exists(os.path.join(directory, "calibration.md"))
    lines.append("Calibration (predicted vs measured): %s/calibration.md" % directory if calibrated
                 else "Calibration: not run (codestack_calibrate=false)")
    guard = (find_resource(state, "budget-guard") or {}).get("attributes") or {}
    lines.append("Budget guard: at USD %s, status in %s" % (budget_usd(plan), guard.get("status_file")) if guard
                 else "Budget guard: none (nothing rented)")
    lines.append("Tear down: ansible-playbook llmops.codestack.teardown -e codestack_output=%s" % directory)
    return lines
