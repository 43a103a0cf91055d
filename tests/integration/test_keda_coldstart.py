"""The first request after scale-to-zero, for real: REAL LiteLLM proxy -> interceptor shim -> backend.

The proxy's routes are the ``keda_gateway_config`` fragment and the shim's hosts and timeouts
are the rendered HTTPScaledObjects (``keda_targets``/``keda_manifests``, the code the role runs).
Each backend is asleep until its first request; it then starts for real after a wake delay
(llama.cpp with SmolLM2 when installed, else a tiny OpenAI-compatible server):

- cold start within the estimate: the client waits and gets the model's answer, no retry;
- cold start longer than the interceptor holds the request: 502, the gateway retries, answer;
- fallback configured, cold start far longer than ``after_s``: the fallback group answers
  (``x-litellm-attempted-fallbacks: 1``), also when streaming; once the model has loaded, the
  same alias is answered by the scaled-up deployment again.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _coldstart import Interceptor, TinyOpenAI, Workload  # noqa: E402
from _services import start_litellm  # noqa: E402

from ansible_collections.llmops.codestack.plugins.filter import keda  # noqa: E402

pytestmark = pytest.mark.integration

MASTER = "sk-coldstart-test-master-key"
TARGETS = [
    # estimate 20 s x 1.5 = 30 s held: a real model load after a 3 s wake fits
    {"name": "fits", "aliases": ["coder"], "cold_start_s": 20},
    # estimate 2 s, held 3 s (x 1.5), real cold start ~3.5 s + start: the gateway retries
    {"name": "underestimated", "aliases": ["debugger"], "cold_start_s": 2},
    # a big model: 60 s estimate, but the fallback answers after 3 s
    {"name": "big", "aliases": ["architect"], "cold_start_s": 60,
     "fallback": {"group": "architect-fallback", "after_s": 3}},
]
WAKE_DELAY_S = {"fits": 3, "underestimated": 3.5, "big": 6}


def chat(url, model, stream=False, timeout=300):
    body = {"model": model, "max_tokens": 8, "stream": stream,
            "messages": [{"role": "user", "content": "Say hi."}]}
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + MASTER,
                                          "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read().decode()
            headers = {k.lower(): v for k, v in resp.headers.items()}
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, headers, status = exc.read().decode(), {}, exc.code
    elapsed = time.monotonic() - started
    if status == 200 and stream:
        chunks = [json.loads(line[6:]) for line in raw.splitlines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
        text = "".join((c["choices"][0].get("delta") or {}).get("content") or ""
                       for c in chunks if c.get("choices"))
    elif status == 200:
        text = json.loads(raw)["choices"][0]["message"]["content"]
    else:
        text = raw
    return status, text, headers, elapsed


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coldstart")
    with Interceptor() as interceptor, TinyOpenAI("fallback") as fallback:
        settings = {"interceptor_url": interceptor.url, "cold_start_margin": 1.5,
                    "response_timeout_s": 120, "gateway_retries": 3}
        targets = keda.keda_targets({}, [dict(t, fallback=dict(t["fallback"], litellm_params={
            "model": "openai/fallback", "api_base": fallback.url + "/v1", "api_key": "none"}))
            if "fallback" in t else t for t in TARGETS], settings)
        objects = keda.keda_manifests(targets, settings, namespaces=False)
        workloads = {}
        for target in targets:
            (httpso,) = [o for o in objects if o["kind"] == "HTTPScaledObject"
                         and o["metadata"]["name"] == target["name"]]
            # the served name the gateway asks for is the alias; the retry case needs a
            # backend whose start time is known, so it gets the tiny server
            workload = Workload(target["name"], WAKE_DELAY_S[target["name"]], str(tmp),
                                model=target["aliases"][0], tiny=target["name"] == "underestimated")
            interceptor.add(httpso, workload)
            workloads[target["name"]] = workload
        gateway = keda.keda_gateway_config(targets, settings)
        config = dict(gateway, general_settings={"master_key": MASTER})
        config_path = tmp / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        proxy = start_litellm(config_path, log_path=str(tmp / "litellm.log"))
        try:
            yield {"proxy": proxy, "interceptor": interceptor, "workloads": workloads,
                   "targets": {t["name"]: t for t in targets}}
        finally:
            proxy.stop()


def test_cold_start_within_the_estimate_is_answered(stack):
    target = stack["targets"]["fits"]
    workload = stack["workloads"]["fits"]
    assert not workload.ready.is_set()
    status, text, headers, elapsed = chat(stack["proxy"].url, "coder")
    assert status == 200, text
    assert text
    assert workload.error is None
    assert workload.starts == 1 and workload.forwarded == 1
    assert headers["x-litellm-attempted-fallbacks"] == "0"
    # the request really waited for the wake-up, and stayed inside the configured budget
    assert WAKE_DELAY_S["fits"] <= elapsed < target["gateway_timeout_s"]
    assert target["host"] in stack["interceptor"].hosts_seen   # the Host header got through
    # warm now: the next request goes straight through
    status, _text, _headers, warm = chat(stack["proxy"].url, "coder")
    assert status == 200 and workload.starts == 1 and warm < elapsed
    print("\ncold (%s backend, wake %.1f s): %.1f s; warm: %.2f s"
          % (workload.kind, WAKE_DELAY_S["fits"], elapsed, warm))


def test_cold_start_longer_than_held_is_retried(stack):
    target = stack["targets"]["underestimated"]
    workload = stack["workloads"]["underestimated"]
    status, text, headers, elapsed = chat(stack["proxy"].url, "debugger")
    assert status == 200, text
    assert workload.rejected >= 1, "the interceptor never gave up: nothing was retried"
    assert workload.forwarded == 1 and workload.starts == 1
    assert int(headers["x-litellm-attempted-retries"]) == workload.rejected
    assert elapsed < (target["gateway_retries"] + 1) * target["gateway_timeout_s"]
    print("\nunderestimated cold start: %.1f s, %d gateway retries" % (elapsed, workload.rejected))


def test_fallback_answers_while_the_model_loads(stack):
    target = stack["targets"]["big"]
    workload = stack["workloads"]["big"]
    status, text, headers, elapsed = chat(stack["proxy"].url, "architect")
    assert status == 200, text
    assert text == "hello from fallback"
    assert headers["x-litellm-attempted-fallbacks"] == "1"
    assert workload.forwarded == 0 and workload.rejected == 1
    # held for after_s by the interceptor, then the fallback: well inside the gateway timeout
    assert target["condition_wait_s"] <= elapsed < target["gateway_timeout_s"]
    print("\nfallback answer after %.1f s (after_s %d)" % (elapsed, target["condition_wait_s"]))
    # streaming clients (IDEs) get the fallback too: the 502 comes before any chunk
    status, text, headers, _elapsed = chat(stack["proxy"].url, "architect", stream=True)
    assert status == 200 and text == "hello from fallback"
    assert headers["x-litellm-attempted-fallbacks"] == "1"
    # the first request woke the deployment: once loaded, the alias is the GPU model's again
    assert workload.ready.wait(120), workload.error
    deadline = time.monotonic() + 60
    while True:
        status, text, headers, _elapsed = chat(stack["proxy"].url, "architect")
        if headers.get("x-litellm-attempted-fallbacks") == "0" or time.monotonic() > deadline:
            break
        time.sleep(2)  # the gateway may keep the deployment in cooldown for a few seconds
    assert status == 200 and headers["x-litellm-attempted-fallbacks"] == "0", text
    assert headers["x-litellm-model-group"] == "architect"
    assert workload.forwarded >= 1 and workload.starts == 1
