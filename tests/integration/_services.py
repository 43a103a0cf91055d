# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real local services for integration tests: free ports, HTTP readiness, a LiteLLM proxy.

Shared by every integration test module. Typical use in a module-scoped fixture::

    url, key, proc = start_litellm(config_dict, tmp_dir)
    try:
        yield url, key
    finally:
        stop_process(proc)

Everything binds 127.0.0.1 on ports chosen by the kernel, and every process started here is
stopped by ``stop_process`` (terminate, then kill). Logs go to files next to the config so a
failing start shows the proxy's own last lines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, timeout=60.0, headers=None, expect=(200,), proc=None, interval=0.2):
    """Poll ``url`` until it answers with a status in ``expect``; return that status.

    Raises ``TimeoutError`` after ``timeout`` seconds, or ``RuntimeError`` at once when
    ``proc`` (the server being waited for) has exited.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before %s answered" % (proc.returncode, url))
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            status, last = None, exc
        if status in expect:
            return status
        if status is not None:
            last = "HTTP %s" % status
        if time.monotonic() >= deadline:
            raise TimeoutError("%s did not answer %s within %.0f s (last: %s)"
                               % (url, expect, timeout, last))
        time.sleep(interval)


def log_tail(path, lines=30):
    try:
        with open(path, "r", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def start_process(argv, log_path, env=None):
    """Start ``argv`` in its own process group with stdout+stderr to ``log_path``."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    proc.log_path = log_path
    return proc


def stop_process(proc, timeout=10.0):
    """Stop a process started by ``start_process``: SIGTERM, then SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def start_litellm(config, workdir=None, timeout=90.0, env=None):
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
