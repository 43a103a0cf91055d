# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale-to-zero objects for vLLM on Kubernetes and the matching LiteLLM routes.

Three filters share this file: ``keda_targets`` (plan + overrides -> validated targets with their
cold-start budget), ``keda_manifests`` (targets -> HTTPScaledObject, ScaledObject, ...) and
``keda_gateway_config`` (targets -> LiteLLM ``model_list``/``router_settings`` fragment).
Their documentation lives in the ``keda_*.yml`` files beside this one.
"""

from __future__ import annotations

import copy
import math
import re

from ansible.errors import AnsibleFilterError

DEFAULTS = {
    "namespace": "codestack",
    "providers": ["kubernetes"],
    "port": 8000,
    "min_replicas": 0,
    "max_replicas": 1,
    "concurrency_target": 16,
    "scaledown_period_s": 600,
    "cold_start_s": 300,
    "cold_start_margin": 1.5,
    "response_timeout_s": 600,
    "queue_threshold": 5,
    "polling_interval_s": 15,
    "prometheus_url": "http://prometheus-server.monitoring.svc.cluster.local:80",
    "prometheus_namespace_label": "namespace",
    "prometheus_auth_secret": None,
    "keda_namespace": "keda",
    "interceptor_service": "keda-add-ons-http-interceptor-proxy",
    "interceptor_port": 8080,
    "interceptor_url": "",
    "external_scaler_service": "keda-add-ons-http-external-scaler",
    "external_scaler_port": 9090,
    "gateway_retries": 2,
    "backend_api_key": "",
    "fallback": None,
    "stack_id": "",
}

FALLBACK_AFTER_S = 20
SKIP_SO_ANNOTATION = "httpscaledobject.keda.sh/skip-scaledobject-creation"
QUEUE_METRIC = "vllm:num_requests_waiting"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TARGET_KEYS = {
    "name", "namespace", "service", "port", "host", "aliases", "served_model_name",
    "min_replicas", "max_replicas", "concurrency_target", "scaledown_period_s", "cold_start_s",
    "queue_threshold", "fallback", "prometheus_query",
}
_FALLBACK_KEYS = {"group", "after_s", "litellm_params", "model_info"}
# The ``vllm_server_k8s`` fact of the vllm_server role (kubernetes target) is accepted as a target.
_VLLM_FACT_KEYS = {"deployment", "port_name", "model", "labels", "selector", "api_key_secret",
                   "api_base", "manifests", "objects"}


def _from_vllm_fact(entry):
    if not isinstance(entry, dict) or "deployment" not in entry or "model" not in entry:
        return entry
    target = {k: v for k, v in entry.items() if k not in _VLLM_FACT_KEYS}
    target["name"] = entry["deployment"]
    target.setdefault("served_model_name", entry["model"])
    target.setdefault("aliases", [entry["model"]])
    return target


def dns_label(text):
    """``text`` as a Kubernetes object name (DNS-1123 label, at most 63 characters)."""
    label = re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")
    return label[:63].rstrip("-")


def _settings(settings):
    merged = dict(DEFAULTS)
    for key, value in (settings or {}).items():
        if key not in DEFAULTS:
            raise AnsibleFilterError("keda: unknown setting %r (known: %s)"
                                     % (key, ", ".join(sorted(DEFAULTS))))
        if value is not None:
            merged[key] = value
    try:
        margin = float(merged["cold_start_margin"])
    except (TypeError, ValueError):
        margin = 0
    if margin < 1:
        raise AnsibleFilterError("keda_autoscaler: cold_start_margin must be a number >= 1, got %r"
                                 % (merged["cold_start_margin"],))
    return merged


def _int(problems, where, key, value, minimum=0):
    try:
        number = int(value)
    except (TypeError, ValueError):
        problems.append("%s: %s must be an integer, got %r" % (where, key, value))
        return None
    if isinstance(value, float) and value != number:
        problems.append("%s: %s must be an integer, got %r" % (where, key, value))
        return None
    if number < minimum:
        problems.append("%s: %s must be >= %d, got %d" % (where, key, minimum, number))
        return None
    return number


def _from_plan(plan, cfg):
    """One target per vLLM deployment of the plan that runs on a provider KEDA manages."""
    roles = (plan or {}).get("roles") or {}
    alias_of = {role: (spec or {}).get("alias", role) for role, spec in roles.items()}
    found = []
    for deployment in (plan or {}).get("deployments") or []:
        if deployment.get("engine", "vllm") != "vllm":
            continue
        if cfg["providers"] and deployment.get("provider") not in cfg["providers"]:
            continue
        target = {
            "name": dns_label(deployment["name"]),
            "aliases": [alias_of.get(role, role) for role in deployment.get("roles") or []],
        }
        for key in ("cold_start_s", "max_replicas", "min_replicas"):
            if deployment.get(key) is not None:
                target[key] = deployment[key]
        # a deployment on a user's cluster carries its placement and its plan's idle timeout
        where = deployment.get("kubernetes") or {}
        if where.get("namespace"):
            target["namespace"] = where["namespace"]
        if where.get("max_replicas") and "max_replicas" not in target:
            target["max_replicas"] = where["max_replicas"]
        idle = (deployment.get("scaling") or {}).get("idle_timeout_s")
        if (deployment.get("scaling") or {}).get("mode") == "keda" and idle is not None:
            target["scaledown_period_s"] = idle
        found.append(target)
    return found


def keda_stack_deployments(plan, stack_dir, providers=None):
    """What the provision stage deploys for each vLLM deployment of ``plan`` on a user's
    cluster: the ``vllm_server`` settings (kubernetes target) and the ``keda_autoscaler`` target,
    grouped by cluster: [{cluster, context, namespace, interceptor_url, render_dir,
    deployments: [{deployment, name, vllm, target}]}]."""
    providers = providers or ["kubernetes"]
    roles = (plan or {}).get("roles") or {}
    alias_of = {role: (spec or {}).get("alias", role) for role, spec in roles.items()}
    clusters = {}
    order = []
    problems = []
    for dep in (plan or {}).get("deployments") or []:
        if dep.get("provider") not in providers or dep.get("api"):
            continue
        if dep.get("engine", "vllm") != "vllm":
            problems.append("deployment %s: engine %s cannot run on Kubernetes (vLLM only)"
                            % (dep.get("name"), dep.get("engine")))
            continue
        where = dep.get("kubernetes") or {}
        cluster = where.get("cluster") or "default"
        model = dep.get("model") or {}
        serving = dep.get("serving") or {}
        aliases = [alias_of.get(role, role) for role in dep.get("roles") or []]
        if not model.get("hf_repo") or not aliases:
            problems.append("deployment %s: needs model.hf_repo and at least one role"
                            % dep.get("name"))
            continue
        name = dns_label(dep["name"])
        namespace = where.get("namespace") or DEFAULTS["namespace"]
        render_dir = "%s/kubernetes/%s" % (str(stack_dir).rstrip("/"), cluster)
        if cluster not in clusters:
            clusters[cluster] = {"cluster": cluster, "context": where.get("context") or "",
                                 "interceptor_url": where.get("interceptor_url") or "",
                                 "render_dir": render_dir, "deployments": []}
            order.append(cluster)
        scaling = dep.get("scaling") or {}
        clusters[cluster]["deployments"].append({
            "deployment": dep["name"],
            "name": name,
            "vllm": {
                "name": name, "model": model["hf_repo"], "revision": model.get("revision") or "",
                "served_model_name": aliases[0],
                "quantization": model.get("vllm_quantization") or "",
                "max_model_len": int(serving.get("max_model_len") or model.get("max_model_len") or 0),
                "max_num_seqs": int(serving.get("max_num_seqs") or model.get("max_num_seqs") or 0),
                "tensor_parallel_size": int((dep.get("gpu") or {}).get("count") or 1),
                "namespace": namespace,
                "node_selector": dict(where.get("node_selector") or {}),
                "tolerations": list(where.get("tolerations") or []),
                "manifest_dir": render_dir,
            },
            "target": {
                "name": name, "namespace": namespace, "service": name, "aliases": aliases,
                "served_model_name": aliases[0],
                "cold_start_s": max(1, int(dep.get("cold_start_s") or DEFAULTS["cold_start_s"])),
                "max_replicas": int(where.get("max_replicas") or 1),
                "min_replicas": 0,
                "scaledown_period_s": int(scaling.get("idle_timeout_s")
                                          or DEFAULTS["scaledown_period_s"]),
            },
        })
    if problems:
        raise AnsibleFilterError("keda_stack_deployments: " + "; ".join(problems))
    return [clusters[c] for c in order]


def _fallback(problems, where, value, aliases):
    if not value:
        return None
    if not isinstance(value, dict):
        problems.append("%s: fallback must be a dict, got %r" % (where, value))
        return None
    unknown = set(value) - _FALLBACK_KEYS
    if unknown:
        problems.append("%s: unknown fallback keys %s" % (where, ", ".join(sorted(unknown))))
    result = {
        "group": value.get("group"),
        "after_s": _int(problems, where, "fallback.after_s",
                        value.get("after_s", FALLBACK_AFTER_S), minimum=1),
        "litellm_params": value.get("litellm_params"),
        "model_info": value.get("model_info") or {},
    }
    if result["litellm_params"] is not None and not (
            isinstance(result["litellm_params"], dict) and result["litellm_params"].get("model")):
        problems.append("%s: fallback.litellm_params needs at least 'model'" % where)
    if not result["group"] and not result["litellm_params"]:
        problems.append("%s: fallback needs 'group' (an existing gateway group) or "
                        "'litellm_params' (a model this role adds)" % where)
    if result["group"] in aliases:
        problems.append("%s: fallback group %r is the target's own alias" % (where, result["group"]))
    return result


def keda_targets(plan, targets=None, settings=None):
    """Validated targets: plan deployments (vLLM on a KEDA provider) overlaid by ``targets``."""
    cfg = _settings(settings)
    by_name = {}
    order = []
    for target in _from_plan(plan, cfg):
        by_name[target["name"]] = target
        order.append(target["name"])
    problems = []
    for override in targets or []:
        override = _from_vllm_fact(override)
        if not isinstance(override, dict) or not override.get("name"):
            problems.append("keda_autoscaler_targets: every entry needs a 'name', got %r" % (override,))
            continue
        unknown = set(override) - _TARGET_KEYS
        if unknown:
            problems.append("target %s: unknown keys %s" % (override["name"], ", ".join(sorted(unknown))))
        name = override["name"]
        if name not in by_name:
            by_name[name] = {}
            order.append(name)
        by_name[name].update(override)

    result = []
    hosts = {}
    for name in order:
        raw = by_name[name]
        where = "target %s" % name
        if not _DNS_LABEL.match(name) or len(name) > 63:
            problems.append("%s: name must be a DNS-1123 label of at most 63 characters" % where)
        namespace = raw.get("namespace") or cfg["namespace"]
        if not _DNS_LABEL.match(str(namespace)):
            problems.append("%s: namespace %r is not a DNS-1123 label" % (where, namespace))
        aliases = list(raw.get("aliases") or [])
        if not aliases:
            problems.append("%s: no gateway alias (plan roles or 'aliases')" % where)
        service = raw.get("service") or name
        port = _int(problems, where, "port", raw.get("port", cfg["port"]), minimum=1)
        if port is not None and port > 65535:
            problems.append("%s: port must be <= 65535, got %d" % (where, port))
        minimum = _int(problems, where, "min_replicas", raw.get("min_replicas", cfg["min_replicas"]))
        maximum = _int(problems, where, "max_replicas", raw.get("max_replicas", cfg["max_replicas"]),
                       minimum=1)
        if minimum is not None and maximum is not None and minimum > maximum:
            problems.append("%s: min_replicas %d > max_replicas %d" % (where, minimum, maximum))
        cold_start = _int(problems, where, "cold_start_s", raw.get("cold_start_s", cfg["cold_start_s"]),
                          minimum=1)
        concurrency = _int(problems, where, "concurrency_target",
                           raw.get("concurrency_target", cfg["concurrency_target"]), minimum=1)
        scaledown = _int(problems, where, "scaledown_period_s",
                         raw.get("scaledown_period_s", cfg["scaledown_period_s"]), minimum=0)
        threshold = _int(problems, where, "queue_threshold",
                         raw.get("queue_threshold", cfg["queue_threshold"]), minimum=1)
        fallback = _fallback(problems, where, raw.get("fallback", cfg["fallback"]), aliases)
        host = raw.get("host") or "%s.%s.svc.cluster.local" % (service, namespace)
        if host in hosts:
            problems.append("%s: host %r already routes to target %s" % (where, host, hosts[host]))
        hosts[host] = name
        if problems:
            continue
        wake_s = int(math.ceil(cold_start * float(cfg["cold_start_margin"])))
        condition_wait_s = fallback["after_s"] if fallback else wake_s
        response_header_s = int(cfg["response_timeout_s"])
        served = raw.get("served_model_name") or aliases[0]
        query = raw.get("prometheus_query") or _queue_query(served, namespace, cfg)
        result.append({
            "name": name,
            "namespace": namespace,
            "service": service,
            "port": port,
            "host": host,
            "aliases": aliases,
            "served_model_name": raw.get("served_model_name"),
            "metric_model_name": served,
            "min_replicas": minimum,
            "max_replicas": maximum,
            "concurrency_target": concurrency,
            "scaledown_period_s": scaledown,
            "queue_threshold": threshold,
            "prometheus_query": query,
            "fallback": fallback,
            "cold_start_s": cold_start,
            "wake_s": wake_s,
            "condition_wait_s": condition_wait_s,
            "response_header_s": response_header_s,
            # The interceptor holds a request at most condition_wait_s, then the backend has
            # response_header_s to answer: the gateway must wait for both, plus connect slack.
            "gateway_timeout_s": condition_wait_s + response_header_s + 5,
            "gateway_retries": 0 if fallback else int(cfg["gateway_retries"]),
        })
    if problems:
        raise AnsibleFilterError("keda_autoscaler: invalid targets:\n- " + "\n- ".join(problems))
    return result


def _queue_query(model_name, namespace, cfg):
    labels = ['model_name="%s"' % _promql_escape(model_name)]
    if cfg["prometheus_namespace_label"]:
        labels.append('%s="%s"' % (cfg["prometheus_namespace_label"], _promql_escape(namespace)))
    return "sum(%s{%s})" % (QUEUE_METRIC, ",".join(labels))


def _promql_escape(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _labels(target, cfg, component):
    labels = {
        "app.kubernetes.io/name": target["name"],
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "llmops.codestack",
    }
    if cfg["stack_id"]:
        labels["codestack/stack"] = dns_label(cfg["stack_id"])
    return labels


def _metadata(name, target, cfg, component):
    return {"name": name, "namespace": target["namespace"],
            "labels": _labels(target, cfg, component)}


def _scale_target(target):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": target["name"]}


def http_scaled_object(target, cfg):
    metadata = _metadata(target["name"], target, cfg, "http-scaling")
    # Our own ScaledObject carries the add-on's trigger next to the Prometheus one: KEDA lets a
    # single ScaledObject own a workload, so the add-on must not create its own.
    metadata["annotations"] = {SKIP_SO_ANNOTATION: "true"}
    return {
        "apiVersion": "http.keda.sh/v1alpha1",
        "kind": "HTTPScaledObject",
        "metadata": metadata,
        "spec": {
            "hosts": [target["host"]],
            "scaleTargetRef": dict(_scale_target(target), service=target["service"],
                                   port=target["port"]),
            "replicas": {"min": target["min_replicas"], "max": target["max_replicas"]},
            "scaledownPeriod": target["scaledown_period_s"],
            "scalingMetric": {"concurrency": {"targetValue": target["concurrency_target"]}},
            "timeouts": {
                "conditionWait": "%ds" % target["condition_wait_s"],
                "responseHeader": "%ds" % target["response_header_s"],
            },
        },
    }


def scaled_object(target, cfg):
    prometheus = {
        "type": "prometheus",
        "name": "vllm-queue",
        "metadata": {
            "serverAddress": cfg["prometheus_url"],
            "query": target["prometheus_query"],
            "threshold": str(target["queue_threshold"]),
            # No pod, no series: an empty answer means an empty queue, not an error.
            "ignoreNullValues": "true",
        },
    }
    if cfg["prometheus_auth_secret"]:
        prometheus["metadata"]["authModes"] = "bearer"
        prometheus["authenticationRef"] = {"name": "%s-prometheus" % target["name"]}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata("%s-scaler" % target["name"], target, cfg, "autoscaling"),
        "spec": {
            "scaleTargetRef": _scale_target(target),
            "minReplicaCount": target["min_replicas"],
            "maxReplicaCount": target["max_replicas"],
            "pollingInterval": int(cfg["polling_interval_s"]),
            "cooldownPeriod": target["scaledown_period_s"],
            # A new replica needs the whole model load before it can take traffic: do not
            # judge it idle (and scale it back to zero) before then.
            "initialCooldownPeriod": target["wake_s"],
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": min(target["scaledown_period_s"], 3600)},
            }}},
            "triggers": [
                {
                    "type": "external-push",
                    "name": "http-requests",
                    "metadata": {
                        "httpScaledObject": target["name"],
                        "scalerAddress": "%s.%s:%d" % (cfg["external_scaler_service"],
                                                       cfg["keda_namespace"],
                                                       int(cfg["external_scaler_port"])),
                    },
                },
                prometheus,
            ],
        },
    }


def trigger_authentication(target, cfg):
    secret = cfg["prometheus_auth_secret"]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _metadata("%s-prometheus" % target["name"], target, cfg, "autoscaling"),
        "spec": {"secretTargetRef": [{"parameter": "bearerToken", "name": secret["name"],
                                      "key": secret.get("key", "token")}]},
    }


def namespace_object(namespace, cfg):
    labels = {"app.kubernetes.io/managed-by": "llmops.codestack"}
    if cfg["stack_id"]:
        labels["codestack/stack"] = dns_label(cfg["stack_id"])
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels}}


def keda_manifests(targets, settings=None, namespaces=True):
    """Kubernetes objects for ``targets`` (from ``keda_targets``), in the order to apply them."""
    cfg = _settings(settings)
    if cfg["prometheus_auth_secret"] and not (
            isinstance(cfg["prometheus_auth_secret"], dict) and cfg["prometheus_auth_secret"].get("name")):
        raise AnsibleFilterError("keda_autoscaler: prometheus_auth_secret needs a 'name' (and 'key')")
    objects = []
    if namespaces:
        for namespace in sorted({t["namespace"] for t in targets}):
            objects.append(namespace_object(namespace, cfg))
    for target in targets:
        if cfg["prometheus_auth_secret"]:
            objects.append(trigger_authentication(target, cfg))
        objects.append(http_scaled_object(target, cfg))
        objects.append(scaled_object(target, cfg))
    return objects


def interceptor_url(cfg):
    if cfg["interceptor_url"]:
        return cfg["interceptor_url"].rstrip("/")
    return "http://%s.%s.svc.cluster.local:%d" % (
        cfg["interceptor_service"], cfg["keda_namespace"], int(cfg["interceptor_port"]))


def keda_gateway_config(targets, settings=None):
    """LiteLLM ``model_list`` + ``router_settings`` routing each alias through the interceptor."""
    cfg = _settings(settings)
    base = interceptor_url(cfg) + "/v1"
    model_list = []
    fallbacks = []
    added_groups = set()
    for target in targets:
        for alias in target["aliases"]:
            params = {
                # vLLM serves one name per deployment: every alias asks for that name.
                "model": "hosted_vllm/%s" % target["metric_model_name"],
                "api_base": base,
                # The interceptor routes on Host: without it the request gets a 404.
                "extra_headers": {"Host": target["host"]},
                "timeout": target["gateway_timeout_s"],
                "stream_timeout": target["gateway_timeout_s"],
                "num_retries": target["gateway_retries"],
            }
            if cfg["backend_api_key"]:
                params["api_key"] = cfg["backend_api_key"]
            model_list.append({
                "model_name": alias,
                "litellm_params": params,
                "model_info": {
                    "id": "keda-%s-%s" % (target["name"], dns_label(alias)),
                    "codestack_deployment": target["name"],
                    "codestack_scale_to_zero": target["min_replicas"] == 0,
                    "codestack_cold_start_s": target["cold_start_s"],
                },
            })
            fallback = target["fallback"]
            if not fallback:
                continue
            group = fallback["group"] or "%s-fallback" % alias
            if fallback["litellm_params"] and group not in added_groups:
                added_groups.add(group)
                model_list.append({
                    "model_name": group,
                    "litellm_params": copy.deepcopy(fallback["litellm_params"]),
                    "model_info": dict({"id": "keda-fallback-%s" % dns_label(group)},
                                       **fallback["model_info"]),
                })
            fallbacks.append({alias: [group]})
    router_settings = {}
    if fallbacks:
        router_settings["fallbacks"] = fallbacks
    return {"model_list": model_list, "router_settings": router_settings}


def _ref(obj):
    meta = obj.get("metadata") or {}
    return {"api_version": obj.get("apiVersion"), "kind": obj.get("kind"),
            "name": meta.get("name"), "namespace": meta.get("namespace")}


def keda_stack_record(deployment, vllm_fact, targets, gateway, manifests, cluster, applied=False):
    """The state.json ``attributes`` of one deployment on a user's cluster: how the gateway
    reaches it (interceptor URL, Host header, served name, timeout, retries) and every object
    made for it, in the order teardown deletes them (scaling objects first)."""
    name = deployment["name"]
    target = next((t for t in targets or [] if t.get("name") == name), None)
    route = next((e for e in (gateway or {}).get("model_list") or []
                  if (e.get("model_info") or {}).get("codestack_deployment") == name), None)
    if target is None or route is None:
        raise AnsibleFilterError("keda_stack_record: deployment %s has no resolved KEDA target or "
                                 "gateway route" % name)
    own = (name, "%s-scaler" % name, "%s-prometheus" % name)
    scaling = [_ref(o) for o in manifests or [] if o.get("kind") != "Namespace"
               and (o.get("metadata") or {}).get("name") in own]
    serving = [_ref(o) for o in (vllm_fact or {}).get("objects") or []]
    secret = (vllm_fact or {}).get("api_key_secret")
    if secret:
        serving.append({"api_version": "v1", "kind": "Secret", "name": secret,
                        "namespace": target["namespace"]})
    return {
        "deployment": deployment["deployment"],
        "cluster": cluster.get("cluster"),
        "context": cluster.get("context") or "",
        "namespace": target["namespace"],
        "applied": bool(applied),
        "manifest_dir": cluster.get("render_dir"),
        "objects": list(reversed(scaling)) + serving,
        "endpoint_url": route["litellm_params"]["api_base"],
        "host_header": target["host"],
        "model": target["metric_model_name"],
        "gateway_timeout_s": target["gateway_timeout_s"],
        "gateway_retries": target["gateway_retries"],
        "idle_timeout_s": target["scaledown_period_s"],
        "cold_start_s": target["cold_start_s"],
        "max_replicas": target["max_replicas"],
    }


class FilterModule:
    """Scale-to-zero filters of llmops.codestack."""

    def filters(self):
        return {
            "keda_targets": keda_targets,
            "keda_manifests": keda_manifests,
            "keda_gateway_config": keda_gateway_config,
            "keda_stack_deployments": keda_stack_deployments,
            "keda_stack_record": keda_stack_record,
        }
