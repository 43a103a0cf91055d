# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scoped keys for the codestack gateway, without a database.

LiteLLM's virtual keys live in its database. This module is the proxy's
``general_settings.custom_auth`` instead: it reads a 0600 JSON file of scoped keys (their SHA-256
hashes, each with the model groups it may call) named by ``CODESTACK_SCOPED_KEYS_FILE``:

    {"keys": [{"name": "ide", "sha256": "<hex>", "models": ["architect", "coder"]}]}

With ``custom_auth`` set, LiteLLM 1.102.4 hands every request to this function and skips its
own checks (``custom_auth_run_common_checks`` unset), the master key's included. So it:

- lets the public routes through as LiteLLM does (health probes, ``/``);
- accepts the master key (``LITELLM_MASTER_KEY``, compared in constant time) as the proxy
  admin, on every route, as before;
- accepts a scoped key only on the inference routes (chat completions, the model list) and only
  for its model groups (the request's ``model`` and any ``fallbacks`` it names); 403 otherwise;
- refuses every other key with 401.

Standard library plus LiteLLM itself: the role copies it beside config.yaml.
"""

import hashlib
import json
import os
import secrets

from litellm.proxy._types import LitellmUserRoles, LiteLLMRoutes, ProxyException, UserAPIKeyAuth
from litellm.proxy.common_utils.http_parsing_utils import _read_request_body

# What a scoped key may reach: the OpenAI inference routes a coding client uses.
CHAT_ROUTES = frozenset(("/chat/completions", "/v1/chat/completions"))
LIST_ROUTES = frozenset(("/models", "/v1/models"))

_cache = {"stat": None, "keys": {}}


def load_keys(path):
    """{sha256: {name, models}} from the key file, re-read when it changes."""
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    marker = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if _cache["stat"] != marker:
        with open(path) as handle:
            data = json.load(handle)
        _cache["keys"] = dict((entry["sha256"], {"name": entry["name"], "models": list(entry["models"])})
                              for entry in data.get("keys") or [])
        _cache["stat"] = marker
    return _cache["keys"]


def _refuse(code, message):
    return ProxyException(message=message, type="auth_error", param="Authorization", code=code)


def _requested_models(body):
    models = [body.get("model")]
    for fallback in body.get("fallbacks") or []:
        models.append(fallback.get("model") if isinstance(fallback, dict) else fallback)
    return models


async def user_api_key_auth(request, api_key):
    route = request.url.path
    if route in LiteLLMRoutes.public_routes.value:
        return UserAPIKeyAuth()
    master_key = os.environ.get("LITELLM_MASTER_KEY") or ""
    if api_key and master_key and secrets.compare_digest(api_key.encode(), master_key.encode()):
        return UserAPIKeyAuth(api_key=master_key, user_role=LitellmUserRoles.PROXY_ADMIN,
                              user_id="codestack-admin")
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    scoped = load_keys(os.environ.get("CODESTACK_SCOPED_KEYS_FILE") or "").get(digest)
    if scoped is None:
        raise _refuse(401, "Authentication Error: invalid key")
    if route in CHAT_ROUTES:
        body = await _read_request_body(request=request)
        outside = [m for m in _requested_models(body) if m not in scoped["models"]]
        if outside:
            raise _refuse(403, "key %s may call %s, not %s" % (
                scoped["name"], ", ".join(scoped["models"]), ", ".join(str(m) for m in outside)))
    elif route not in LIST_ROUTES:
        raise _refuse(403, "key %s may not use %s" % (scoped["name"], route))
    return UserAPIKeyAuth(api_key=digest, key_alias=scoped["name"], key_name=scoped["name"],
                          models=scoped["models"], user_role=LitellmUserRoles.INTERNAL_USER)
