# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-token APIs and Ollama through the real LiteLLM proxy, configured by the product.

The planner plans a blueprint with one sensitive feature (its role goes to Ollama, the others to
per-token APIs); ``stack_endpoints`` and ``litellm_config`` build the proxy's config, pointed at
the fakes through a user catalog (``api_providers[].api_base``), the way a user points the
catalog at a proxy of their own. Then, through the real proxy:

- the sensitive role's own route fails (Ollama answers 500) and no API fake ever sees a request;
- the sensitive role is answered by Ollama once it recovers;
- a non-sensitive role is answered and billed by its API fake (LiteLLM's cost = the fake's bill);
- on 429 (with Retry-After) from its API it falls back to its plan alternative.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import urllib.error
import urllib.request

import pytest

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config
from ansible_collections.llmops.codestack.plugins.module_utils import _stack
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan
from ansible_collections.llmops.codestack.tests.fakes.llm_api_fakes import ApiFake, OllamaFake
from ansible_collections.llmops.codestack.tests.integration._services import (
    start_litellm_proxy,
    stop_process,
)

pytestmark = pytest.mark.integration

ROLES = ("architect", "coder", "debugger", "reviewer")
APIS = ("openrouter", "deepseek", "mistral")
SCALE = "50"   # fakes' latency at 1/50 (CODESTACK_CLOCK_SCALE)

BLUEPRINT = {
    "project": {"name": "shop", "description": "A small web shop."},
    "features": [
        {"name": "catalogue", "description": "Product pages.", "priority": "must"},
        {"name": "payments", "description": "Card data handling.", "priority": "must",
         "sensitive": True},
    ],
    "constraints": {"budget_usd": 20, "deadline_hours": 24, "quality": "standard",
                    "providers": list(APIS) + ["ollama"]},
}


def _task(role, feature, tin, tout):
    return {"role": role, "feature": feature, "title": "%s %s" % (role, feature),
            "complexity": "medium", "input_tokens": tin, "output_tokens": tout}


def _ask(url, key, alias):
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps({"model": alias, "max_tokens": 32,
                         "messages": [{"role": "user", "content": "Write hello world."}]}).encode(),
        headers={"Authorization": "Bearer %s" % key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.load(resp), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def _chat_posts(fake):
    return [r for r in fake.control()["requests"] if r["method"] == "POST"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    os.environ["CODESTACK_CLOCK_SCALE"] = SCALE   # the in-process fakes read it per request
    bundled = load_catalog()
    fakes = dict((p, ApiFake.from_catalog(p, bundled, api_key="sk-fake-%s" % p,
                                          balance_usd=5.0).start()) for p in APIS)
    fakes["ollama"] = OllamaFake.from_catalog(bundled).start()
    providers = []
    for pid, fake in fakes.items():
        entry = bundled.api_providers[pid].model_dump(mode="json")
        entry["api_base"] = fake.api_base
        providers.append(entry)
    catalog = load_catalog(data=[{"api_providers": providers}])
    tasks = [_task(r, "catalogue", 300000, 40000) for r in ROLES]
    tasks.append(_task("coder", "payments", 50000, 8000))
    plan = build_plan(BLUEPRINT, {"source": "file", "tasks": tasks}, catalog,
                      generated_at="2026-12-01T00:00:00Z")
    config = litellm_config(plan, _stack.stack_endpoints(plan, {"resources": []}))
    env = dict(("%s" % name, "sk-fake-%s" % pid) for pid, name in
               ((p, catalog.api_providers[p].key_env) for p in APIS)
               if name in _stack.api_key_envs(plan))
    env["CODESTACK_CLOCK_SCALE"] = SCALE
    url, key, proc = start_litellm_proxy(config, workdir=str(tmp_path_factory.mktemp("gw")),
                                         env=env)
    try:
        yield {"plan": plan, "fakes": fakes, "url": url, "key": key, "config": config}
    finally:
        stop_process(proc)
        for fake in fakes.values():
            fake.stop()
        os.environ.pop("CODESTACK_CLOCK_SCALE", None)


def _deployment(plan, role):
    return [d for d in plan["deployments"] if d["name"] == plan["roles"][role]["deployment"]][0]


def test_the_plan_splits_sensitive_and_other_roles(stack):
    plan = stack["plan"]
    assert plan["roles"]["coder"]["sensitive"] and not plan["roles"]["architect"]["sensitive"]
    assert _deployment(plan, "coder")["provider"] == "ollama"
    assert _deployment(plan, "architect")["provider"] in APIS
    routes = dict((r["model_name"], r["litellm_params"]) for r in stack["config"]["model_list"])
    assert routes["coder"]["model"].startswith("ollama_chat/")
    assert routes["architect"]["api_key"].startswith("os.environ/")


def test_sensitive_role_never_reaches_an_api_even_when_its_route_fails(stack):
    fakes = stack["fakes"]
    fakes["ollama"].fail_next(50, status=500)
    try:
        status, body, _headers = _ask(stack["url"], stack["key"], "coder")
    finally:
        fakes["ollama"].clear_failures()
    assert status >= 500, body
    assert _chat_posts(fakes["ollama"]), "the sensitive role's own route was tried"
    for pid in APIS:
        assert _chat_posts(fakes[pid]) == [], pid
    status, body, _headers = _ask(stack["url"], stack["key"], "coder")
    assert status == 200, body
    assert body["choices"][0]["message"]["content"].startswith("[ollama ")
    # the role's context reaches Ollama (its default would silently truncate long prompts)
    served = _chat_posts(fakes["ollama"])[-1]
    assert served["path"] == "/api/chat"
    assert served["options"]["num_ctx"] == _deployment(stack["plan"], "coder")["serving"]["max_model_len"]
    for pid in APIS:
        assert _chat_posts(fakes[pid]) == [], pid


def test_other_role_is_answered_and_billed_by_its_api(stack):
    dep = _deployment(stack["plan"], "architect")
    fake = stack["fakes"][dep["provider"]]
    before = len(fake.control()["ledger"])
    status, body, headers = _ask(stack["url"], stack["key"], "architect")
    assert status == 200, body
    assert body["choices"][0]["message"]["content"].startswith(
        "[%s %s]" % (dep["provider"], dep["api"]["model"]))
    ledger = fake.control()["ledger"][before:]
    assert len(ledger) == 1
    assert ledger[0]["prompt_tokens"] == body["usage"]["prompt_tokens"]
    # LiteLLM prices the answer with the plan's per-token prices: the same as the fake's bill
    cost = float(headers.get("x-litellm-response-cost") or 0)
    assert cost == pytest.approx(ledger[0]["cost_usd"], rel=1e-3)


def test_other_role_falls_back_on_429(stack):
    plan = stack["plan"]
    dep = _deployment(plan, "architect")
    fake = stack["fakes"][dep["provider"]]
    alt = dep["alternatives"][0]
    fake.fail_next(20, status=429, retry_after=1, model=dep["api"]["model"])
    try:
        status, body, headers = _ask(stack["url"], stack["key"], "architect")
    finally:
        fake.clear_failures()
    assert status == 200, body
    assert body["choices"][0]["message"]["content"].startswith(
        "[%s %s]" % (alt["provider"], alt["api"]["model"]))
    refused = [r for r in _chat_posts(fake) if r.get("status") == 429]
    assert refused and all(r["model"] == dep["api"]["model"] for r in refused)
    assert stack["fakes"][alt["provider"]].control()["ledger"][-1]["model"] == alt["api"]["model"]
