"""The gateway's scoped keys (roles/litellm_gateway/files/codestack_auth.py), against LiteLLM's
own types: the master key is the admin, a scoped key reaches only its groups on the inference
routes, anything else is refused. The real proxy is exercised in
tests/integration/test_serving_stack.py."""

import asyncio
import hashlib
import importlib.util
import json
import os
import types

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "litellm_gateway", "files",
                      "codestack_auth.py")
spec = importlib.util.spec_from_file_location("codestack_auth", SCRIPT)
auth = importlib.util.module_from_spec(spec)
spec.loader.exec_module(auth)

from litellm.proxy._types import LitellmUserRoles, ProxyException  # noqa: E402

MASTER = "sk-master-0123456789"
IDE = "ide-key-0123456789abcdefghij"


@pytest.fixture
def keys(tmp_path, monkeypatch):
    path = tmp_path / "scoped_keys.json"
    path.write_text(json.dumps({"keys": [{"name": "ide", "sha256": hashlib.sha256(IDE.encode()).hexdigest(),
                                          "models": ["architect", "coder"]}]}))
    monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER)
    monkeypatch.setenv("CODESTACK_SCOPED_KEYS_FILE", str(path))
    return path


def call(monkeypatch, route, key, body=None):
    async def read_body(request):
        return body or {}

    monkeypatch.setattr(auth, "_read_request_body", read_body)
    request = types.SimpleNamespace(url=types.SimpleNamespace(path=route))
    return asyncio.run(auth.user_api_key_auth(request, key))


@pytest.mark.parametrize("route", ["/model/info", "/key/generate", "/config/update", "/chat/completions"])
def test_master_key_is_the_admin_everywhere(keys, monkeypatch, route):
    result = call(monkeypatch, route, MASTER, {"model": "intent"})
    assert result.user_role == LitellmUserRoles.PROXY_ADMIN


@pytest.mark.parametrize("route,body", [
    ("/v1/chat/completions", {"model": "coder"}),
    ("/chat/completions", {"model": "architect", "fallbacks": ["coder"]}),
    ("/v1/models", None),
])
def test_scoped_key_reaches_its_groups(keys, monkeypatch, route, body):
    result = call(monkeypatch, route, IDE, body)
    assert result.models == ["architect", "coder"] and result.key_alias == "ide"
    assert result.user_role == LitellmUserRoles.INTERNAL_USER and IDE not in (result.api_key or "")


@pytest.mark.parametrize("route,body,code,text", [
    ("/v1/chat/completions", {"model": "intent"}, 403, "not intent"),
    ("/v1/chat/completions", {"model": "coder", "fallbacks": [{"model": "coder-alt1"}]}, 403, "not coder-alt1"),
    ("/model/info", None, 403, "may not use /model/info"),
    ("/key/generate", None, 403, "may not use /key/generate"),
    ("/config/update", None, 403, "may not use /config/update"),
])
def test_scoped_key_is_refused_elsewhere(keys, monkeypatch, route, body, code, text):
    with pytest.raises(ProxyException) as err:
        call(monkeypatch, route, IDE, body)
    assert str(err.value.code) == str(code) and text in err.value.message and IDE not in err.value.message


@pytest.mark.parametrize("key", ["", "sk-wrong", MASTER[:-1]])
def test_other_keys_get_401(keys, monkeypatch, key):
    with pytest.raises(ProxyException) as err:
        call(monkeypatch, "/v1/models", key)
    assert str(err.value.code) == "401"


def test_public_routes_stay_public_and_the_key_file_is_reread(keys, monkeypatch):
    assert call(monkeypatch, "/health/liveliness", "").user_role is None
    keys.write_text(json.dumps({"keys": []}))
    os.utime(keys, ns=(1, 1))
    with pytest.raises(ProxyException):
        call(monkeypatch, "/v1/models", IDE)
