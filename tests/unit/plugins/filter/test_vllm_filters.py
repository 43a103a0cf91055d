"""The vLLM argument builder: one table of settings → command line, and its refusals."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.vllm import (
    FilterModule, vllm_args, vllm_container, vllm_worker_env)

BASE = {"model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"}

ARGS_TABLE = [
    ("model only", {}, ["--model", BASE["model"]]),
    ("served name string", {"served_model_name": "coder"},
     ["--model", BASE["model"], "--served-model-name", "coder"]),
    ("served names list", {"served_model_name": ["coder", "debugger"]},
     ["--model", BASE["model"], "--served-model-name", "coder", "debugger"]),
    ("host and port as string", {"host": "0.0.0.0", "port": "8000"},
     ["--model", BASE["model"], "--host", "0.0.0.0", "--port", "8000"]),
    ("revision", {"revision": "a1b2c3d"}, ["--model", BASE["model"], "--revision", "a1b2c3d"]),
    ("revision empty", {"revision": ""}, ["--model", BASE["model"]]),
    ("tls", {"ssl_certfile": "/run/tls/cert.pem", "ssl_keyfile": "/run/tls/key.pem", "port": 8000},
     ["--model", BASE["model"], "--port", "8000", "--ssl-certfile", "/run/tls/cert.pem",
      "--ssl-keyfile", "/run/tls/key.pem"]),
    ("dtype", {"dtype": "bfloat16"}, ["--model", BASE["model"], "--dtype", "bfloat16"]),
    ("awq", {"quantization": "awq"}, ["--model", BASE["model"], "--quantization", "awq"]),
    ("awq_marlin", {"quantization": "awq_marlin"},
     ["--model", BASE["model"], "--quantization", "awq_marlin"]),
    ("gptq", {"quantization": "gptq"}, ["--model", BASE["model"], "--quantization", "gptq"]),
    ("fp8", {"quantization": "fp8"}, ["--model", BASE["model"], "--quantization", "fp8"]),
    ("no quantization spelled none", {"quantization": "none"}, ["--model", BASE["model"]]),
    ("tensor parallel", {"tensor_parallel_size": 2},
     ["--model", BASE["model"], "--tensor-parallel-size", "2"]),
    ("max model len", {"max_model_len": 16384},
     ["--model", BASE["model"], "--max-model-len", "16384"]),
    ("gpu memory utilisation", {"gpu_memory_utilization": 0.9},
     ["--model", BASE["model"], "--gpu-memory-utilization", "0.9"]),
    ("gpu memory utilisation 1", {"gpu_memory_utilization": 1},
     ["--model", BASE["model"], "--gpu-memory-utilization", "1"]),
    ("prefix caching on", {"enable_prefix_caching": True},
     ["--model", BASE["model"], "--enable-prefix-caching"]),
    ("prefix caching off", {"enable_prefix_caching": "false"},
     ["--model", BASE["model"], "--no-enable-prefix-caching"]),
    ("prefix caching unset", {"enable_prefix_caching": None}, ["--model", BASE["model"]]),
    ("enforce eager", {"enforce_eager": True}, ["--model", BASE["model"], "--enforce-eager"]),
    ("enforce eager off", {"enforce_eager": False}, ["--model", BASE["model"]]),
    ("empty values keep defaults",
     {"served_model_name": "", "dtype": "", "quantization": "", "max_model_len": "",
      "gpu_memory_utilization": None, "extra_args": []}, ["--model", BASE["model"]]),
    ("extra args appended last", {"port": 8000, "extra_args": ["--max-num-batched-tokens", "8192", "--trust-remote-code"]},
     ["--model", BASE["model"], "--port", "8000", "--max-num-batched-tokens", "8192", "--trust-remote-code"]),
    ("everything, stable order",
     {"extra_args": ["--seed=1"], "enforce_eager": True, "enable_prefix_caching": True,
      "gpu_memory_utilization": 0.85, "max_model_len": 8192, "tensor_parallel_size": 4,
      "quantization": "fp8", "dtype": "auto", "port": 9000, "host": "127.0.0.1",
      "served_model_name": "architect"},
     ["--model", BASE["model"], "--served-model-name", "architect", "--host", "127.0.0.1",
      "--port", "9000", "--dtype", "auto", "--quantization", "fp8", "--tensor-parallel-size", "4",
      "--max-model-len", "8192", "--gpu-memory-utilization", "0.85", "--enable-prefix-caching",
      "--enforce-eager", "--seed=1"]),
]


@pytest.mark.parametrize("extra,expected", [row[1:] for row in ARGS_TABLE],
                         ids=[row[0] for row in ARGS_TABLE])
def test_vllm_args_table(extra, expected):
    settings = dict(BASE, **extra)
    assert vllm_args(settings) == expected


def test_local_model_path_is_kept_verbatim():
    assert vllm_args({"model": " /srv/models/smollm2 "})[:2] == ["--model", "/srv/models/smollm2"]


REFUSED = [
    ("not a dict", ["--model", "x"], "expected a dict"),
    ("no model", {"port": 8000}, "model"),
    ("blank model", {"model": "  "}, "model"),
    ("api key", dict(BASE, api_key="sk-secret"), "VLLM_API_KEY"),
    ("typo", dict(BASE, max_model_length=10), "unknown keys max_model_length"),
    ("bad dtype", dict(BASE, dtype="int4"), "dtype must be one of"),
    ("bad quantization", dict(BASE, quantization="bitsandbytes"), "quantization must be one of"),
    ("tp zero", dict(BASE, tensor_parallel_size=0), "tensor_parallel_size"),
    ("tp fraction", dict(BASE, tensor_parallel_size=1.5), "tensor_parallel_size"),
    ("tp bool", dict(BASE, tensor_parallel_size=True), "tensor_parallel_size"),
    ("port range", dict(BASE, port=70000), "port must be an integer between 1 and 65535"),
    ("port text", dict(BASE, port="http"), "port must be an integer"),
    ("util zero", dict(BASE, gpu_memory_utilization=0), "gpu_memory_utilization"),
    ("util above one", dict(BASE, gpu_memory_utilization=1.5), "gpu_memory_utilization"),
    ("util text", dict(BASE, gpu_memory_utilization="most"), "gpu_memory_utilization"),
    ("bool text", dict(BASE, enable_prefix_caching="maybe"), "enable_prefix_caching"),
    ("served name bad", dict(BASE, served_model_name=[1]), "served_model_name"),
    ("extra args string", dict(BASE, extra_args="--foo bar"), "extra_args must be a list"),
    ("extra args api key", dict(BASE, extra_args=["--api-key", "k"]), "--api-key"),
    ("extra args api key inline", dict(BASE, extra_args=["--api-key=k"]), "--api-key"),
    ("revision with blanks", dict(BASE, revision="main; rm"), "revision must be"),
    ("cert without key", dict(BASE, ssl_certfile="/run/tls/cert.pem"), "go together"),
    ("relative cert", dict(BASE, ssl_certfile="cert.pem", ssl_keyfile="/k"), "absolute path"),
    ("extra args revision", dict(BASE, extra_args=["--revision", "x"]), "--revision is set through"),
    ("extra args duplicate setting", dict(BASE, extra_args=["--max-model-len", "4"]),
     "--max-model-len is set through its own setting"),
]


@pytest.mark.parametrize("settings,message", [row[1:] for row in REFUSED],
                         ids=[row[0] for row in REFUSED])
def test_vllm_args_refuses_bad_settings_with_one_clear_error(settings, message):
    with pytest.raises(AnsibleFilterError, match="vllm settings: .*"):
        vllm_args(settings)
    with pytest.raises(AnsibleFilterError) as err:
        vllm_args(settings)
    assert message in str(err.value)
    assert "sk-secret" not in str(err.value)


def test_worker_env_maps_the_same_settings():
    env = vllm_worker_env({
        "model": BASE["model"], "served_model_name": "coder", "host": "0.0.0.0", "port": 8000,
        "dtype": "half", "quantization": "awq", "tensor_parallel_size": 2, "max_model_len": 16384,
        "gpu_memory_utilization": 0.9, "enable_prefix_caching": True, "enforce_eager": False,
        "extra_args": ["--max-num-batched-tokens", "16384", "--trust-remote-code", "--no-enable-chunked-prefill",
                       "--kv-cache-dtype=fp8"],
    })
    assert env == {
        "MODEL_NAME": BASE["model"], "OPENAI_SERVED_MODEL_NAME_OVERRIDE": "coder",
        "DTYPE": "half", "QUANTIZATION": "awq", "TENSOR_PARALLEL_SIZE": "2",
        "MAX_MODEL_LEN": "16384", "GPU_MEMORY_UTILIZATION": "0.9",
        "ENABLE_PREFIX_CACHING": "true", "ENFORCE_EAGER": "false", "MAX_NUM_BATCHED_TOKENS": "16384",
        "TRUST_REMOTE_CODE": "true", "ENABLE_CHUNKED_PREFILL": "false", "KV_CACHE_DTYPE": "fp8",
    }
    assert all(isinstance(v, str) for v in env.values())


def test_worker_env_minimal():
    assert vllm_worker_env(BASE) == {"MODEL_NAME": BASE["model"]}


@pytest.mark.parametrize("settings,message", [
    (dict(BASE, served_model_name=["a", "b"]), "one model name"),
    (dict(BASE, extra_args=["positional"]), "cannot map 'positional'"),
    (dict(BASE, extra_args=["--seed", "1", "--seed=2"]), "SEED twice"),
    (dict(BASE, api_key="sk-secret"), "VLLM_API_KEY"),
])
def test_worker_env_refusals(settings, message):
    with pytest.raises(AnsibleFilterError) as err:
        vllm_worker_env(settings)
    assert message in str(err.value)


def test_filter_module_exports_all():
    assert set(FilterModule().filters()) == {"vllm_args", "vllm_worker_env", "vllm_container"}


CONTAINER = dict(BASE, served_model_name="coder", quantization="awq", max_model_len="16384")


def _container(**kwargs):
    options = dict(name="vllm-coder", image="vllm/vllm-openai:v1", serverless_image="runpod/worker:v2",
                   port="8000", env={"FOO": "bar baz"}, api_key="sk-stack", hf_token="hf_tok",
                   tls_script="exec \"$@\"", tls_program=["python3", "-m", "vllm.entrypoints.openai.api_server"])
    options.update(kwargs)
    return vllm_container(CONTAINER, **options)


def test_container_listens_everywhere_on_the_port_with_the_same_command_line():
    out = _container()
    assert out["args"] == vllm_args(dict(CONTAINER, host="0.0.0.0", port=8000))
    assert out["port"] == 8000 and out["model"] == "coder" and out["name"] == "vllm-coder"
    assert out["image"] == out["runpod_pod"]["image_name"] == out["vast_instance"]["image"] == "vllm/vllm-openai:v1"
    assert (out["health_path"], out["metrics_path"]) == ("/health", "/metrics")


def test_container_secrets_join_the_env_and_stand_alone():
    out = _container()
    assert out["secret_env"] == {"VLLM_API_KEY": "sk-stack", "HF_TOKEN": "hf_tok"}
    assert out["env"] == {"FOO": "bar baz", "VLLM_API_KEY": "sk-stack", "HF_TOKEN": "hf_tok"}
    assert "sk-stack" not in " ".join(out["args"])
    none = _container(api_key="", hf_token="")
    assert none["secret_env"] == {} and none["env"] == {"FOO": "bar baz"}


def test_container_provider_shapes():
    out = _container()
    pod = out["runpod_pod"]
    assert pod["ports"] == "8000/http"
    assert pod["docker_args"].startswith("--model Qwen/Qwen2.5-Coder-7B-Instruct-AWQ --served-model-name coder")
    assert {"key": "FOO", "value": "bar baz"} in pod["env"] and len(pod["env"]) == 3
    vast = out["vast_instance"]
    assert vast["runtype"] == "args" and vast["args"] == out["args"]
    assert vast["env"]["-p 8000:8000"] == "1" and vast["env"]["VLLM_API_KEY"] == "sk-stack"
    serverless = out["runpod_serverless"]
    assert serverless["image_name"] == "runpod/worker:v2"
    env = {item["key"]: item["value"] for item in serverless["env"]}
    # The worker has no API key of ours (RunPod's own key guards it); the gated weights' token it needs.
    assert env == dict(vllm_worker_env(CONTAINER), FOO="bar baz", HF_TOKEN="hf_tok")


def test_container_docker_args_are_quoted_for_a_shell():
    out = vllm_container(
        dict(BASE, extra_args=["--chat-template", "{{ messages }} x"]), name="n", image="i",
        serverless_image="s", port=8000, tls_script="", tls_program=[])
    assert out["runpod_pod"]["docker_args"].endswith("--chat-template '{{ messages }} x'")


def test_container_tls_command_runs_the_program_and_the_same_arguments():
    out = _container()
    tls = out["tls_command"]
    assert tls["entrypoint"] == "sh"
    assert tls["args"][:3] == ["-c", "exec \"$@\"", "codestack-vllm"]
    assert tls["args"][3:6] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert tls["args"][6:] == out["args"]
    assert (tls["ca_cert_env"], tls["ca_key_env"]) == ("CODESTACK_TLS_CA_CERT", "CODESTACK_TLS_CA_KEY")


@pytest.mark.parametrize("kwargs,message", [
    ({"port": "http"}, "port must be an integer"),
    ({"port": 70000}, "port must be an integer between 1 and 65535"),
    ({"env": ["FOO=bar"]}, "env must be a dict"),
])
def test_container_refusals(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        _container(**kwargs)


def test_max_num_seqs_reaches_the_command_line_and_the_worker():
    """The plan's concurrency (serving.max_num_seqs) is what vLLM is started with."""
    settings = dict(BASE, max_model_len=16384, max_num_seqs=3)
    args = vllm_args(settings)
    assert args[args.index("--max-num-seqs") + 1] == "3"
    assert vllm_worker_env(settings)["MAX_NUM_SEQS"] == "3"
    assert "--max-num-seqs" not in vllm_args(dict(BASE, max_num_seqs=""))
    with pytest.raises(AnsibleFilterError, match="max_num_seqs must be an integer"):
        vllm_args(dict(BASE, max_num_seqs=0))
