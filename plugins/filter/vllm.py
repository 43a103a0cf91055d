# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn one set of vLLM settings into a command line or a worker environment.

``vllm_args`` is the single source of truth for the vLLM command line: the systemd unit, the
container arguments (RunPod pod, Vast.ai instance) and the Kubernetes Deployment all call it.
``vllm_worker_env`` maps the same settings onto the environment variables read by RunPod's
serverless vLLM worker, which takes no command line. ``vllm_container`` builds, from the same
settings, everything a rented container needs (image, arguments, environment, ports, the shapes
each provider module takes) in one call instead of a long Jinja expression.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
QUANTIZATIONS = ("awq", "awq_marlin", "gptq", "fp8")

# Settings in the order they appear on the command line.
KNOWN = ("model", "revision", "served_model_name", "host", "port", "dtype", "quantization",
         "tensor_parallel_size", "max_model_len", "max_num_seqs", "gpu_memory_utilization",
         "enable_prefix_caching", "enforce_eager", "ssl_certfile", "ssl_keyfile", "extra_args")

_FLAG_RE = re.compile(r"^--[a-z0-9][a-z0-9-]*(=.*)?$")
_SECRET_FLAGS = ("--api-key", "--hf-token")


def _fail(msg):
    raise AnsibleFilterError("vllm settings: %s" % msg)


def _int(settings, key, minimum, maximum=None):
    value = settings.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        _fail("%s must be an integer, got %r" % (key, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        _fail("%s must be an integer, got %r" % (key, value))
    if number != float(value) or number < minimum or (maximum is not None and number > maximum):
        bounds = ">= %d" % minimum if maximum is None else "between %d and %d" % (minimum, maximum)
        _fail("%s must be an integer %s, got %r" % (key, bounds, value))
    return number


def _bool(settings, key):
    value = settings.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = to_text(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    _fail("%s must be a boolean, got %r" % (key, value))


def _normalize(settings):
    """Validate the settings and return them with canonical types (None = leave vLLM's default)."""
    if not isinstance(settings, dict):
        _fail("expected a dict, got %s" % type(settings).__name__)
    unknown = sorted(set(settings) - set(KNOWN))
    if "api_key" in unknown:
        _fail("api_key never goes on the command line (it would show in the process list): "
              "pass it in the VLLM_API_KEY environment variable")
    if unknown:
        _fail("unknown keys %s (known: %s)" % (", ".join(unknown), ", ".join(KNOWN)))

    out = {}
    model = settings.get("model")
    if not isinstance(model, str) or not model.strip():
        _fail("model (a Hugging Face id or a local directory) is required")
    out["model"] = model.strip()
    revision = settings.get("revision")
    if revision in (None, ""):
        out["revision"] = None
    elif not isinstance(revision, str) or not re.match(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$", revision):
        _fail("revision must be a branch, tag or commit of the model repository, got %r" % (revision,))
    else:
        out["revision"] = revision

    served = settings.get("served_model_name")
    if served is None or served == "" or served == []:
        out["served_model_name"] = []
    elif isinstance(served, str):
        out["served_model_name"] = [served]
    elif isinstance(served, (list, tuple)) and all(isinstance(s, str) and s for s in served):
        out["served_model_name"] = list(served)
    else:
        _fail("served_model_name must be a string or a list of strings, got %r" % (served,))

    host = settings.get("host")
    out["host"] = to_text(host) if host not in (None, "") else None
    out["port"] = _int(settings, "port", 1, 65535)

    dtype = settings.get("dtype")
    if dtype in (None, ""):
        out["dtype"] = None
    elif dtype not in DTYPES:
        _fail("dtype must be one of %s, got %r" % (", ".join(DTYPES), dtype))
    else:
        out["dtype"] = dtype

    quant = settings.get("quantization")
    if quant in (None, "", "none"):
        out["quantization"] = None
    elif quant not in QUANTIZATIONS:
        _fail("quantization must be one of %s (or empty), got %r" % (", ".join(QUANTIZATIONS), quant))
    else:
        out["quantization"] = quant

    out["tensor_parallel_size"] = _int(settings, "tensor_parallel_size", 1)
    out["max_model_len"] = _int(settings, "max_model_len", 1)
    out["max_num_seqs"] = _int(settings, "max_num_seqs", 1)

    util = settings.get("gpu_memory_utilization")
    if util in (None, ""):
        out["gpu_memory_utilization"] = None
    else:
        try:
            util = float(util)
        except (TypeError, ValueError):
            _fail("gpu_memory_utilization must be a number, got %r" % (util,))
        if not 0.0 < util <= 1.0:
            _fail("gpu_memory_utilization must be in (0, 1], got %r" % util)
        out["gpu_memory_utilization"] = util

    for key in ("ssl_certfile", "ssl_keyfile"):
        value = settings.get(key)
        if value in (None, ""):
            out[key] = None
        elif not isinstance(value, str) or not value.startswith("/"):
            _fail("%s must be an absolute path inside the server's machine, got %r" % (key, value))
        else:
            out[key] = value
    if (out["ssl_certfile"] is None) != (out["ssl_keyfile"] is None):
        _fail("ssl_certfile and ssl_keyfile go together (vLLM serves TLS with both, plain HTTP with neither)")
    out["enable_prefix_caching"] = _bool(settings, "enable_prefix_caching")
    out["enforce_eager"] = _bool(settings, "enforce_eager")

    extra = settings.get("extra_args") or []
    if isinstance(extra, str) or not isinstance(extra, (list, tuple)):
        _fail("extra_args must be a list of strings (one element per argument), got %r" % (extra,))
    extra = [to_text(a) for a in extra]
    for arg in extra:
        if arg.split("=", 1)[0] in _SECRET_FLAGS:
            _fail("%s in extra_args would show the secret in the process list: use the "
                  "environment instead" % arg.split("=", 1)[0])
    managed = set("--" + k.replace("_", "-") for k in KNOWN if k != "extra_args")
    managed.update(("--no-enable-prefix-caching", "--no-enforce-eager"))
    for arg in extra:
        if arg.split("=", 1)[0] in managed:
            _fail("%s is set through its own setting, not extra_args" % arg.split("=", 1)[0])
    out["extra_args"] = extra
    return out


def _number(value):
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def vllm_args(settings):
    """Return the vLLM OpenAI server argument list (without the program) for ``settings``."""
    s = _normalize(settings)
    args = ["--model", s["model"]]
    if s["revision"] is not None:
        args += ["--revision", s["revision"]]
    if s["served_model_name"]:
        args += ["--served-model-name"] + s["served_model_name"]
    if s["host"] is not None:
        args += ["--host", s["host"]]
    if s["port"] is not None:
        args += ["--port", str(s["port"])]
    if s["dtype"] is not None:
        args += ["--dtype", s["dtype"]]
    if s["quantization"] is not None:
        args += ["--quantization", s["quantization"]]
    if s["tensor_parallel_size"] is not None:
        args += ["--tensor-parallel-size", str(s["tensor_parallel_size"])]
    if s["max_model_len"] is not None:
        args += ["--max-model-len", str(s["max_model_len"])]
    if s["max_num_seqs"] is not None:
        args += ["--max-num-seqs", str(s["max_num_seqs"])]
    if s["gpu_memory_utilization"] is not None:
        args += ["--gpu-memory-utilization", _number(s["gpu_memory_utilization"])]
    if s["enable_prefix_caching"] is True:
        args.append("--enable-prefix-caching")
    elif s["enable_prefix_caching"] is False:
        args.append("--no-enable-prefix-caching")
    if s["enforce_eager"]:
        args.append("--enforce-eager")
    if s["ssl_certfile"] is not None:
        args += ["--ssl-certfile", s["ssl_certfile"], "--ssl-keyfile", s["ssl_keyfile"]]
    return args + s["extra_args"]


def _extra_to_env(extra):
    env = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not _FLAG_RE.match(arg):
            _fail("extra_args: cannot map %r to a worker environment variable "
                  "(expected --name, --name=value or --name value)" % arg)
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
            i += 1
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            name, value = arg[2:], extra[i + 1]
            i += 2
        elif arg.startswith("--no-"):
            name, value = arg[5:], "false"
            i += 1
        else:
            name, value = arg[2:], "true"
            i += 1
        key = name.replace("-", "_").upper()
        if key in env:
            _fail("extra_args sets %s twice" % key)
        env[key] = value
    return env


def vllm_worker_env(settings):
    """Return the environment of RunPod's serverless vLLM worker (worker-vllm) for ``settings``.

    The worker reads engine settings from upper-case variables named after vLLM's engine
    arguments; host and port belong to the worker itself and are not mapped.
    """
    s = _normalize(settings)
    if s["ssl_certfile"] is not None:
        _fail("the serverless worker is reached through RunPod's HTTPS API: ssl_certfile does not apply")
    env = {"MODEL_NAME": s["model"]}
    if s["revision"] is not None:
        env["MODEL_REVISION"] = s["revision"]
    if s["served_model_name"]:
        if len(s["served_model_name"]) > 1:
            _fail("the serverless worker serves one model name, got %s" % s["served_model_name"])
        env["OPENAI_SERVED_MODEL_NAME_OVERRIDE"] = s["served_model_name"][0]
    if s["dtype"] is not None:
        env["DTYPE"] = s["dtype"]
    if s["quantization"] is not None:
        env["QUANTIZATION"] = s["quantization"]
    if s["tensor_parallel_size"] is not None:
        env["TENSOR_PARALLEL_SIZE"] = str(s["tensor_parallel_size"])
    if s["max_model_len"] is not None:
        env["MAX_MODEL_LEN"] = str(s["max_model_len"])
    if s["max_num_seqs"] is not None:
        env["MAX_NUM_SEQS"] = str(s["max_num_seqs"])
    if s["gpu_memory_utilization"] is not None:
        env["GPU_MEMORY_UTILIZATION"] = _number(s["gpu_memory_utilization"])
    if s["enable_prefix_caching"] is not None:
        env["ENABLE_PREFIX_CACHING"] = "true" if s["enable_prefix_caching"] else "false"
    if s["enforce_eager"] is not None:
        env["ENFORCE_EAGER"] = "true" if s["enforce_eager"] else "false"
    for key, value in _extra_to_env(s["extra_args"]).items():
        if key in env:
            _fail("extra_args sets %s twice" % key)
        env[key] = value
    return env


def vllm_container(settings, name, image, serverless_image, port, env=None, api_key="", hf_token="",
                   tls_script="", tls_program=None):
    """Return the container settings of a rented pod, instance or serverless worker.

    ``settings`` are those of ``vllm_args`` (without host and port: the container listens on
    every address at ``port``). ``env`` is the plain environment; the API key and the Hugging
    Face token join it and are also returned on their own (``secret_env``) for modules that
    keep them out of logs. ``tls_script`` and ``tls_program`` make the entrypoint of a
    container that serves TLS itself: ``sh -c SCRIPT codestack-vllm PROGRAM... ARGS...``.
    """
    try:
        port = int(port)
    except (TypeError, ValueError):
        _fail("port must be an integer, got %r" % (port,))
    if not isinstance(settings, dict):
        _fail("expected a dict, got %s" % type(settings).__name__)
    if env is None:
        env = {}
    if not isinstance(env, dict):
        _fail("env must be a dict, got %s" % type(env).__name__)
    args = vllm_args(dict(settings, host="0.0.0.0", port=port))
    secrets = {}
    if api_key:
        secrets["VLLM_API_KEY"] = to_text(api_key)
    if hf_token:
        secrets["HF_TOKEN"] = to_text(hf_token)
    full_env = dict(env, **secrets)
    worker_env = dict(env, **vllm_worker_env(settings))
    if hf_token:
        worker_env["HF_TOKEN"] = to_text(hf_token)
    program = [to_text(p) for p in (tls_program or [])]

    def items(mapping):
        return [{"key": k, "value": v} for k, v in mapping.items()]

    return {
        "name": to_text(name),
        "model": (settings.get("served_model_name") or ""),
        "image": to_text(image),
        "args": args,
        "env": full_env,
        "secret_env": secrets,
        "port": port,
        "health_path": "/health",
        "metrics_path": "/metrics",
        "runpod_pod": {
            "image_name": to_text(image),
            "docker_args": " ".join(shlex.quote(a) for a in args),
            "ports": "%d/http" % port,
            "env": items(full_env),
        },
        "vast_instance": {
            "image": to_text(image),
            "runtype": "args",
            "args": args,
            "env": dict(full_env, **{"-p %d:%d" % (port, port): "1"}),
        },
        "tls_command": {
            "entrypoint": "sh",
            "args": ["-c", to_text(tls_script), "codestack-vllm"] + program + args,
            "ca_cert_env": "CODESTACK_TLS_CA_CERT",
            "ca_key_env": "CODESTACK_TLS_CA_KEY",
        },
        "runpod_serverless": {
            "image_name": to_text(serverless_image),
            "env": items(worker_env),
        },
    }


class FilterModule:
    """vLLM command line and worker environment builders."""

    def filters(self):
        return {
            "vllm_args": vllm_args,
            "vllm_worker_env": vllm_worker_env,
            "vllm_container": vllm_container,
        }
