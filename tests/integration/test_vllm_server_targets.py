"""roles/vllm_server, Kubernetes and container targets, through real ansible-playbook runs.

Nothing here needs a cluster or a GPU: the Kubernetes manifests are written to files and
validated offline against the bundled Kubernetes 1.33 schemas (kubernetes-validate, strict).
The systemd target runs for real in the Molecule scenario roles/vllm_server/molecule/default.
"""

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.integration

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KEY = "sk-integration-vllm-key"
HF = "hf_integration_token"


def run_playbook(tmp_path, book, flags=()):
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(book))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=" + sys.executable, str(path)] + list(flags),
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = None
    return proc.returncode, proc.stdout + proc.stderr, result


def play(tmp_path, role_vars, *flags):
    """Run the role once on localhost; return rc, output, the JSON result and the facts it set."""
    book = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"ansible.builtin.include_role": {"name": "llmops.codestack.vllm_server"}, "vars": role_vars},
            {"name": "facts", "ansible.builtin.debug": {"msg": {
                "k8s": "{{ vllm_server_k8s | default(none) }}",
                "container": "{{ vllm_server_container | default(none) }}",
                "endpoint": "{{ vllm_server_endpoint | default(none) }}"}}},
        ],
    }]
    rc, output, result = run_playbook(tmp_path, book, flags)
    facts = None
    if result:
        for task in result["plays"][0]["tasks"]:
            if task["task"]["name"] == "facts":
                facts = task["hosts"]["localhost"]["msg"]
    return rc, output, result, facts


def changed(result):
    return sum(h["changed"] for h in result["stats"].values())


K8S = {
    "vllm_server_target": "kubernetes",
    "vllm_server_model": "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
    "vllm_server_served_model_name": "coder",
    "vllm_server_stack_id": "codestack-demo",
    "vllm_server_quantization": "awq_marlin",
    "vllm_server_tensor_parallel_size": 2,
    "vllm_server_max_model_len": 16384,
    "vllm_server_gpu_memory_utilization": 0.92,
    "vllm_server_api_key": KEY,
    "vllm_server_hf_token": HF,
    "vllm_server_k8s_namespace": "llm",
    "vllm_server_k8s_startup_timeout": 1205,
    "vllm_server_k8s_model_cache_pvc": "hf-cache",
    "vllm_server_k8s_node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    "vllm_server_k8s_tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def _docs(path):
    with open(path) as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def test_kubernetes_manifests_check_real_repeat_and_valid(tmp_path):
    out = tmp_path / "manifests"
    role_vars = dict(K8S, vllm_server_k8s_manifest_dir=str(out))

    rc, output, result, dummy = play(tmp_path, role_vars, "--check")
    assert rc == 0, output
    assert changed(result) > 0
    assert not out.exists()

    rc, output, result, facts = play(tmp_path, role_vars)
    assert rc == 0, output
    assert changed(result) > 0
    assert KEY not in output and HF not in output

    rc, output, result, dummy = play(tmp_path, role_vars)
    assert rc == 0, output
    assert changed(result) == 0, output

    main = out / "vllm-coder.yaml"
    secret = out / "vllm-coder-secret.yaml"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert KEY not in main.read_text() and HF not in main.read_text()
    assert main.read_text().startswith("#\n# Ansible managed")

    objects = _docs(main) + _docs(secret)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    deployment, service, sec = objects
    assert [deployment["kind"], service["kind"], sec["kind"]] == ["Deployment", "Service", "Secret"]

    labels = deployment["metadata"]["labels"]
    assert labels["codestack.llmops.io/stack"] == "codestack-demo"
    assert labels["codestack.llmops.io/role"] == "coder"
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "llm"
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true",
                                              "prometheus.io/port": "8000",
                                              "prometheus.io/path": "/metrics"}
    assert pod["spec"]["enableServiceLinks"] is False
    assert pod["spec"]["nodeSelector"] == K8S["vllm_server_k8s_node_selector"]
    assert pod["spec"]["tolerations"] == K8S["vllm_server_k8s_tolerations"]

    container = pod["spec"]["containers"][0]
    assert container["image"] == "vllm/vllm-openai:v0.32.0"
    args = container["args"]
    assert args[:2] == ["--model", K8S["vllm_server_model"]]
    for flag, value in (("--served-model-name", "coder"), ("--host", "0.0.0.0"), ("--port", "8000"),
                        ("--quantization", "awq_marlin"), ("--tensor-parallel-size", "2"),
                        ("--max-model-len", "16384"), ("--gpu-memory-utilization", "0.92")):
        assert args[args.index(flag) + 1] == value
    assert "--enable-prefix-caching" in args
    assert "--api-key" not in args
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vllm-coder-api-key", "key": "api-key"}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "hf-token"
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1205
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "hf-cache"
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"

    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert sec["stringData"] == {"api-key": KEY, "hf-token": HF}

    k8s = facts["k8s"]
    assert k8s["deployment"] == k8s["service"] == "vllm-coder"
    assert k8s["namespace"] == "llm" and k8s["port"] == 8000 and k8s["port_name"] == "http"
    assert k8s["selector"] == selector and k8s["api_key_secret"] == "vllm-coder-api-key"
    assert k8s["api_base"] == "http://vllm-coder.llm.svc.cluster.local:8000/v1"
    assert facts["endpoint"]["api_base"] == k8s["api_base"]


def test_kubernetes_keda_friendly_variant_without_key(tmp_path):
    out = tmp_path / "m"
    rc, output, dummy, facts = play(tmp_path, {
        "vllm_server_target": "kubernetes", "vllm_server_model": "/models/small",
        "vllm_server_served_model_name": "reviewer", "vllm_server_name": "vllm-rev",
        "vllm_server_k8s_manage_replicas": False, "vllm_server_k8s_gpus": 1,
        "vllm_server_k8s_labels": {"team": "x"}, "vllm_server_enable_prefix_caching": False,
        "vllm_server_k8s_manifest_dir": str(out)})
    assert rc == 0, output
    assert not (out / "vllm-rev-secret.yaml").exists()
    deployment, service = _docs(out / "vllm-rev.yaml")
    for obj in (deployment, service):
        kubernetes_validate.validate(obj, "1.33", strict=True)
    assert "replicas" not in deployment["spec"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--no-enable-prefix-caching" in container["args"]
    assert "VLLM_API_KEY" not in {e["name"] for e in container["env"]}
    assert deployment["metadata"]["labels"]["team"] == "x"
    assert facts["k8s"]["api_key_secret"] == ""


def test_container_settings_for_runpod_vast_and_serverless(tmp_path):
    rc, output, result, facts = play(tmp_path, {
        "vllm_server_target": "container", "vllm_server_model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
        "vllm_server_served_model_name": "coder", "vllm_server_quantization": "awq",
        "vllm_server_max_model_len": 8192, "vllm_server_max_num_seqs": 32, "vllm_server_api_key": KEY,
        "vllm_server_extra_args": ["--max-num-batched-tokens", "8192"]})
    assert rc == 0, output
    role_tasks = [t for t in result["plays"][0]["tasks"] if t["task"]["name"] != "facts"]
    assert KEY not in json.dumps(role_tasks)
    assert changed(result) == 0
    c = facts["container"]
    assert c["image"] == "vllm/vllm-openai:v0.32.0" and c["port"] == 8000
    assert c["args"][-2:] == ["--max-num-batched-tokens", "8192"]
    assert c["args"][c["args"].index("--max-num-seqs") + 1] == "32"
    assert c["env"] == {"VLLM_API_KEY": KEY}
    assert c["runpod_pod"]["docker_args"] == " ".join(c["args"])
    assert c["runpod_pod"]["ports"] == "8000/http"
    assert c["runpod_pod"]["env"] == [{"key": "VLLM_API_KEY", "value": KEY}]
    assert c["vast_instance"]["runtype"] == "args" and c["vast_instance"]["args"] == c["args"]
    assert c["vast_instance"]["env"]["-p 8000:8000"] == "1"
    worker = {e["key"]: e["value"] for e in c["runpod_serverless"]["env"]}
    assert worker["MODEL_NAME"] == "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
    assert worker["OPENAI_SERVED_MODEL_NAME_OVERRIDE"] == "coder"
    assert worker["QUANTIZATION"] == "awq" and worker["MAX_MODEL_LEN"] == "8192"
    assert worker["MAX_NUM_SEQS"] == "32" and worker["MAX_NUM_BATCHED_TOKENS"] == "8192"
    assert "VLLM_API_KEY" not in worker


BAD = [
    ({"vllm_server_served_model_name": "Coder Model"}, "lower-case alias"),
    ({"vllm_server_quantization": "bitsandbytes"}, "vllm_server_quantization"),
    ({"vllm_server_extra_args": ["--api-key", "x"]}, "--api-key"),
    ({"vllm_server_variant": "cpu"}, "CPU build"),
]


def test_bad_input_fails_before_anything_is_written(tmp_path):
    """Each bad setting gives one clear error and writes nothing (one playbook run for all)."""
    out = tmp_path / "m"
    tasks = []
    for overrides, dummy in BAD:
        tasks.append({"block": [{"ansible.builtin.include_role": {"name": "llmops.codestack.vllm_server"},
                                 "vars": dict(K8S, vllm_server_k8s_manifest_dir=str(out), **overrides)},
                                {"ansible.builtin.set_fact": {"errors": "{{ errors + ['no error'] }}"}}],
                      "rescue": [{"ansible.builtin.set_fact": {
                          "errors": "{{ errors + [ansible_failed_result.msg | default('') | string] }}"}}]})
    tasks.append({"name": "errors", "ansible.builtin.debug": {"msg": "{{ errors }}"}})
    rc, output, result = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False,
                                                  "vars": {"errors": []}, "tasks": tasks}])
    assert rc == 0, output
    errors = [t for t in result["plays"][0]["tasks"] if t["task"]["name"] == "errors"][0]
    errors = errors["hosts"]["localhost"]["msg"]
    assert len(errors) == len(BAD)
    for (overrides, message), error in zip(BAD, errors):
        assert message in error, (overrides, error)
    assert not out.exists()
    assert KEY not in output
