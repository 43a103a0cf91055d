"""Small helpers the integration tests share: free ports, waiting for HTTP, a real LiteLLM proxy.

Every process started here runs in its own session so that ``stop`` ends it and its children;
callers stop it in a fixture finalizer.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, timeout=60.0, headers=None, expect=(200,), proc=None, log_path=None):
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
        time.sleep(0.3)
    raise TimeoutError("%s did not answer %s within %ss (last: %r)\n%s"
                       % (url, expect, timeout, last, _tail(log_path)))


def _tail(path, lines=30):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as handle:
        return "".join(handle.readlines()[-lines:])


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
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    finally:
        log.close()


def start_litellm(config_path, port=None, env=None, log_path=None, timeout=120.0):
    """Start the real LiteLLM proxy on 127.0.0.1 and wait for ``/health/readiness``."""
    port = port or free_port()
    log_path = log_path or str(config_path) + ".log"
    full_env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    full_env.update(env or {})
    argv = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(config_path),
            "--host", "127.0.0.1", "--port", str(port)]
    proc = start_process(argv, log_path, env=full_env)
    service = Service(proc, "http://127.0.0.1:%d" % port, log_path)
    try:
        wait_http(service.url + "/health/readiness", timeout=timeout, proc=proc, log_path=log_path)
    except Exception:
        service.stop()
        raise
    return service
