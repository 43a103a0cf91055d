"""The per-token API fakes and the Ollama fake against the official OpenAI SDK and raw HTTP:
documented paths, streaming with usage, errors in each provider's shape, billing."""

import json
import urllib.error
import urllib.request

import openai
import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.tests.fakes.llm_api_fakes import (
    ApiFake,
    OllamaFake,
    count_tokens,
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch):
    monkeypatch.setenv("CODESTACK_CLOCK_SCALE", "200")


@pytest.fixture
def fakes(catalog):
    started = [ApiFake.from_catalog(p, catalog, balance_usd=1.0).start()
               for p in ("openrouter", "deepseek", "mistral")]
    yield dict((f.provider, f) for f in started)
    for fake in started:
        fake.stop()


def _client(fake, key="sk-test-key"):
    return openai.OpenAI(base_url=fake.api_base, api_key=key, max_retries=0, timeout=10)


def _model(catalog, provider):
    return sorted(m.model for m in catalog.api_models.values() if m.provider == provider)[0]


@pytest.mark.parametrize("provider", ["openrouter", "deepseek", "mistral"])
def test_chat_is_answered_and_billed_at_the_catalog_price(fakes, catalog, provider):
    fake = fakes[provider]
    model = _model(catalog, provider)
    messages = [{"role": "user", "content": "Write a function that returns 42."}]
    reply = _client(fake).chat.completions.create(model=model, messages=messages)
    assert reply.choices[0].message.content.startswith("[%s %s]" % (provider, model))
    usage = reply.usage
    assert usage.prompt_tokens == count_tokens("user: Write a function that returns 42.")
    entry = [m for m in catalog.api_models.values() if m.model == model][0]
    want = (usage.prompt_tokens * entry.input_usd_per_mtok
            + usage.completion_tokens * entry.output_usd_per_mtok) / 1e6
    ledger = fake.control()["ledger"]
    assert len(ledger) == 1 and ledger[0]["cost_usd"] == pytest.approx(want)
    assert fake.control()["balance_usd"] == pytest.approx(1.0 - want)
    assert [m.id for m in _client(fake).models.list()] == sorted(
        m.model for m in catalog.api_models.values() if m.provider == provider)


@pytest.mark.parametrize("provider", ["openrouter", "deepseek", "mistral"])
def test_stream_ends_with_usage(fakes, catalog, provider):
    fake = fakes[provider]
    model = _model(catalog, provider)
    stream = _client(fake).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[%s %s]" % (provider, model))
    assert chunks[-1].usage.completion_tokens == count_tokens(text)
    assert fake.control()["ledger"][0]["completion_tokens"] == count_tokens(text)


def test_errors_in_each_providers_shape(fakes, catalog):
    fake = fakes["openrouter"]
    with pytest.raises(openai.AuthenticationError):
        _client(fake, key="sk-wrong").models.list()
    with pytest.raises(openai.BadRequestError, match="is not a valid model ID"):
        _client(fake).chat.completions.create(
            model="no/such", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="Model Not Exist"):
        _client(fakes["deepseek"]).chat.completions.create(
            model="deepseek-v9", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="Invalid model"):
        _client(fakes["mistral"]).chat.completions.create(
            model="mistral-huge", messages=[{"role": "user", "content": "x"}])
    fake.fail_next(1, status=429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as info:
        _client(fake).chat.completions.create(model=_model(catalog, "openrouter"),
                                              messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["Retry-After"] == "7"
    # nothing was billed for the refused requests, every one is in the request log
    assert fake.control()["ledger"] == []
    assert [r.get("status") for r in fake.control()["requests"]] == [401, 400, 429]


def test_insufficient_credits_is_402_and_not_answered(catalog):
    fake = ApiFake.from_catalog("deepseek", catalog, balance_usd=0.0).start()
    try:
        with pytest.raises(openai.APIStatusError) as info:
            _client(fake).chat.completions.create(
                model=_model(catalog, "deepseek"), messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 402
        assert info.value.body["message"] == "Insufficient Balance"
        with urllib.request.urlopen(urllib.request.Request(
                fake.url + "/user/balance",
                headers={"Authorization": "Bearer sk-test-key"})) as resp:
            balance = json.load(resp)
        assert balance["is_available"] is False
        assert balance["balance_infos"][0]["total_balance"] == "0.00"
    finally:
        fake.stop()


def test_openrouter_credits_api_reports_the_spend(fakes, catalog):
    fake = fakes["openrouter"]
    _client(fake).chat.completions.create(model=_model(catalog, "openrouter"),
                                          messages=[{"role": "user", "content": "x"}])
    with urllib.request.urlopen(urllib.request.Request(
            fake.api_base + "/credits", headers={"Authorization": "Bearer sk-test-key"})) as resp:
        credits = json.load(resp)["data"]
    assert credits["total_credits"] == pytest.approx(1.0)
    assert credits["total_usage"] == pytest.approx(fake.control()["ledger"][0]["cost_usd"], abs=1e-6)


def _post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read().decode()


def test_ollama_native_and_openai_endpoints(catalog):
    fake = OllamaFake.from_catalog(catalog).start()
    try:
        tag = sorted(catalog.ollama_models)[0]
        with urllib.request.urlopen(fake.url + "/api/tags") as resp:
            tags = json.load(resp)["models"]
        assert tag in [t["name"] for t in tags]
        # /api/chat streams NDJSON by default, the last object carries the counts
        lines = [json.loads(line) for line in _post(fake.url + "/api/chat", {
            "model": tag, "messages": [{"role": "user", "content": "hi"}]}).splitlines()]
        assert not lines[0]["done"] and lines[-1]["done"]
        text = "".join(line["message"]["content"] for line in lines)
        assert text.startswith("[ollama %s]" % tag)
        assert lines[-1]["eval_count"] == count_tokens(text)
        whole = json.loads(_post(fake.url + "/api/generate",
                                 {"model": tag, "prompt": "hi", "stream": False}))
        assert whole["done"] and whole["response"].startswith("[ollama")
        reply = openai.OpenAI(base_url=fake.url + "/v1", api_key="ollama", max_retries=0) \
            .chat.completions.create(model=tag, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content.startswith("[ollama %s]" % tag)
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(fake.url + "/api/chat", {"model": "nope:1b", "messages": []})
        assert info.value.code == 404
        assert json.load(info.value)["error"] == \
            'model "nope:1b" not found, try pulling it first'
        assert len(fake.control()["ledger"]) == 3
    finally:
        fake.stop()


def test_fakes_are_never_faster_than_the_catalog(catalog, monkeypatch):
    import time
    monkeypatch.setenv("CODESTACK_CLOCK_SCALE", "10")
    fake = ApiFake.from_catalog("mistral", catalog).start()
    try:
        entry = catalog.api_models["mistral:codestral-latest"]
        started = time.monotonic()
        reply = _client(fake).chat.completions.create(
            model=entry.model, messages=[{"role": "user", "content": "x"}])
        took = time.monotonic() - started
        floor = (entry.ttft_s + reply.usage.completion_tokens / entry.output_tok_s) / 10
        assert took >= floor
    finally:
        fake.stop()
