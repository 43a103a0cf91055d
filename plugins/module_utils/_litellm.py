# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LiteLLM routes (model group -> deployment) in the proxy's config.yaml or its admin API.

A *route* is one entry of the proxy's ``model_list``::

    {model_name: coder, litellm_params: {model, api_base, api_key, rpm, ...}, model_info: {id}}

Both stores below expose the same three calls (``find``, ``create``, ``update``, ``delete``) so
the module does not care where routes live. Secrets (``api_key``) are never returned: use
:func:`redact` before putting a route into a result or a diff.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient

SECRET_PARAMS = ("api_key",)
MASK = "********"
# litellm_params the module manages; anything else in an existing route is left untouched.
ROUTE_PARAMS = ("model", "api_base", "api_key", "rpm", "tpm", "timeout", "tags",
                "input_cost_per_token", "output_cost_per_token",
                "input_cost_per_second", "output_cost_per_second")


class RouteError(Exception):
    """Bad input or an ambiguous match; the module turns it into ``fail_json``."""


def route_id(route):
    return ((route or {}).get("model_info") or {}).get("id")


def matches(route, model_name, model=None, rid=None):
    """Is ``route`` the one the user means? By id when given, else by group and backend model."""
    if rid is not None:
        return route_id(route) == rid
    if route.get("model_name") != model_name:
        return False
    return model is None or (route.get("litellm_params") or {}).get("model") == model


def select(routes, model_name, model=None, rid=None):
    found = [r for r in routes if matches(r, model_name, model, rid)]
    return found


def desired_params(params):
    """The litellm_params the user set (None means: do not manage that field)."""
    return dict((k, params[k]) for k in ROUTE_PARAMS if params.get(k) is not None)


def differences(route, wanted, compare_secrets=True):
    """Names of the wanted litellm_params that differ from ``route``."""
    current = (route or {}).get("litellm_params") or {}
    changed = []
    for key, value in sorted(wanted.items()):
        if key in SECRET_PARAMS and not compare_secrets:
            continue
        have = current.get(key)
        if isinstance(value, float) or isinstance(have, float):
            try:
                if have is not None and abs(float(have) - float(value)) <= 1e-15 * max(1.0, abs(float(value))):
                    continue
            except (TypeError, ValueError):
                pass
        if key == "tags" and have is not None and sorted(have) == sorted(value):
            continue
        if have != value:
            changed.append(key)
    return changed


def redact(route):
    """A copy of ``route`` safe to return or diff: secret values replaced by a mask."""
    if route is None:
        return None
    out = dict(route)
    params = dict(out.get("litellm_params") or {})
    for key in SECRET_PARAMS:
        if params.get(key):
            params[key] = MASK
    out["litellm_params"] = params
    out["model_info"] = dict(out.get("model_info") or {})
    return out


def diff_view(route, keys):
    """The user-set fields of a route, for diff mode (secrets masked)."""
    if route is None:
        return {}
    params = (route.get("litellm_params") or {})
    view = {"model_name": route.get("model_name")}
    if route_id(route):
        view["id"] = route_id(route)
    for key in keys:
        if key in params:
            view[key] = MASK if key in SECRET_PARAMS and params[key] else params[key]
    return view


def merged(route, model_name, wanted, rid=None):
    """``route`` with the wanted params applied (a new route when ``route`` is None)."""
    base = dict(route or {})
    base["model_name"] = model_name
    params = dict(base.get("litellm_params") or {})
    params.update(wanted)
    base["litellm_params"] = params
    info = dict(base.get("model_info") or {})
    if rid is not None:
        info["id"] = rid
    if info:
        base["model_info"] = info
    return base


class ConfigRoutes:
    """Routes in the proxy's config.yaml. Writes are atomic and keep the file's mode and owner."""

    def __init__(self, path):
        if not HAS_YAML:
            raise RouteError("PyYAML is required for the config backend")
        self.path = path
        self._doc = None

    def load(self):
        if not os.path.exists(self.path):
            raise RouteError("config file %s does not exist (create it with the litellm_gateway role)"
                             % self.path)
        with open(self.path) as handle:
            doc = yaml.safe_load(handle) or {}
        if not isinstance(doc, dict):
            raise RouteError("%s is not a LiteLLM config (top level must be a mapping)" % self.path)
        model_list = doc.get("model_list")
        if model_list is None:
            doc["model_list"] = []
        elif not isinstance(model_list, list):
            raise RouteError("%s: model_list must be a list" % self.path)
        self._doc = doc
        return doc

    def routes(self):
        return list((self._doc or self.load())["model_list"])

    def _save(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        stat = os.stat(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".litellm-route-", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump(self._doc, handle, default_flow_style=False, sort_keys=False)
            os.chmod(tmp, stat.st_mode & 0o7777)
            try:
                os.chown(tmp, stat.st_uid, stat.st_gid)
            except OSError:
                pass  # not root: the file stays ours, which it already was
            os.replace(tmp, self.path)
        except Exception:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def create(self, route):
        self._doc["model_list"].append(route)
        self._save()
        return route

    def update(self, old, new):
        items = self._doc["model_list"]
        items[items.index(old)] = new
        self._save()
        return new

    def delete(self, route):
        self._doc["model_list"].remove(route)
        self._save()


class ApiRoutes:
    """Routes through the proxy's admin API (needs a database-backed proxy in real life)."""

    def __init__(self, endpoint, master_key, timeout=30, client=None):
        if not master_key:
            raise RouteError("api_key (the proxy's master key) is required for the api backend")
        self.client = client or HttpClient(endpoint, token=master_key, timeout=timeout, retries=3)

    def routes(self):
        body = self.client.request("GET", "/model/info") or {}
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ApiError(200, "unexpected /model/info answer (no data list)", body=body)
        return data

    def create(self, route):
        self.client.request("POST", "/model/new", body=route)
        return route

    def update(self, old, new):
        # Only the managed fields: the proxy merges them into the stored deployment, so a key
        # that /model/info hides (api_key) is kept when the module does not send it.
        params = dict((k, v) for k, v in new["litellm_params"].items() if k in ROUTE_PARAMS)
        body = {"model_name": new["model_name"], "litellm_params": params,
                "model_info": dict(new.get("model_info") or {}, id=route_id(old))}
        self.client.request("POST", "/model/update", body=body)
        return new

    def delete(self, route):
        rid = route_id(route)
        if not rid:
            raise RouteError("route %s has no model_info.id; cannot delete it through the API"
                             % route.get("model_name"))
        self.client.request("POST", "/model/delete", body={"id": rid})
