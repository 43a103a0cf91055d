"""Start and stop the real services integration tests talk to (all on 127.0.0.1).

``free_port`` binds port 0 and reads the port back; ``wait_http`` polls a URL with a deadline;
``start_litellm`` runs the real LiteLLM proxy from a config mapping. Every ``Service`` must be
stopped by the caller (use it from a fixture with a finalizer).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, timeout=60.0, proc=None, headers=None, ok=(200,)):
    """Poll ``url`` until it answers one of ``ok``; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before %s answered" % (proc.returncode, url))
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as resp:
                if resp.status in ok:
                    return resp.status
                last = resp.status
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return exc.code
            last = exc.code
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError("%s did not answer within %.0fs (last: %s)" % (url, timeout, last))


class Service:
    """A started process with its base URL and log file."""

    def __init__(self, name, proc, url, log):
        self.name, self.proc, self.url, self.log = name, proc, url, log

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)

    def log_tail(self, chars=3000):
        try:
            with open(self.log, "r", errors="replace") as handle:
                return handle.read()[-chars:]
        except OSError:
            return ""


def start_process(name, argv, workdir, url, health_path="/", env=None, timeout=60.0,
                  headers=None, ok=(200,)):
    """Start ``argv`` in its own process group, logging to ``workdir/<name>.log``."""
    log = os.path.join(str(workdir), "%s.log" % name)
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=str(workdir),
                                env=env, start_new_session=True)
    service = Service(name, proc, url, log)
    try:
        wait_http(url + health_path, timeout=timeout, proc=proc, headers=headers, ok=ok)
    except Exception as exc:
        service.stop()
        raise RuntimeError("%s did not start: %s\n%s" % (name, exc, service.log_tail()))
    return service


def start_litellm(config, workdir, port=None, timeout=90.0, env=None):
    """Run ``litellm --config`` for ``config`` (a mapping); returns a ``Service`` (url without /v1)."""
    port = port or free_port()
    path = os.path.join(str(workdir), "litellm-config.json")
    with open(path, "w") as handle:
        json.dump(config, handle)  # JSON is YAML: LiteLLM reads it as its config file
    litellm = shutil.which("litellm") or os.path.join(os.path.dirname(sys.executable), "litellm")
    full_env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR",
                    NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    full_env.update(env or {})
    url = "http://127.0.0.1:%d" % port
    return start_process("litellm", [litellm, "--config", path, "--host", "127.0.0.1",
                                     "--port", str(port)],
                         workdir, url, health_path="/health/liveliness", env=full_env,
                         timeout=timeout)
