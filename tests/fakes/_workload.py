"""What runs inside a fake rented machine: an OpenAI-compatible model server.

The provider fakes rent no GPU, so the model server a real pod or instance would start (vLLM,
from the image and its arguments) is stood in for by a real local one (llama.cpp, or any
OpenAI-compatible server) given as ``upstream``. Requests that reach the machine's exposed
port are relayed to it, streaming included, after the check vLLM itself makes: when the
machine's environment holds ``VLLM_API_KEY``, every ``/v1`` request needs
``Authorization: Bearer <that key>`` (401 otherwise), while ``/health`` needs none.

``/v1/models`` lists the served model name from the machine's arguments
(``--served-model-name``, else ``--model``), as vLLM does, and ``/health`` answers 200; without
an upstream every other path answers the model list too (provisioning tests need no more).
"""

import http.client
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from _fakehttp import OneWriteHandler, send_json

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "content-length"}


def env_value(env, key):
    """A variable of a machine's environment, given as ["K=V", ...], [{"key", "value"}] or a dict."""
    if isinstance(env, dict):
        return env.get(key)
    for item in env or []:
        if isinstance(item, dict):
            if item.get("key") == key:
                return item.get("value")
        elif isinstance(item, str) and item.startswith(key + "="):
            return item.split("=", 1)[1]
    return None


def served_model_name(args, default):
    """What vLLM lists in /v1/models: --served-model-name, else --model, from the machine's args."""
    argv = args.split() if isinstance(args, str) else list(args or [])
    for flag in ("--served-model-name", "--model"):
        for index, arg in enumerate(argv):
            if arg == flag and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return default


def serve(handler, method, path, upstream, api_key, model_name, body=None):
    """Answer one request that reached the machine's model port (``path`` starts with /)."""
    if not path.startswith("/"):
        path = "/" + path
    bare = path.split("?", 1)[0].rstrip("/")
    if api_key and bare.startswith("/v1"):
        if (handler.headers.get("Authorization") or "") != "Bearer %s" % api_key:
            return send_json(handler, 401, {"error": {"message": "Unauthorized", "type": "invalid_request_error",
                                                      "code": 401}})
    # The model list and the health check are the machine's own (vLLM's), whatever serves it.
    if bare == "/health" or (not upstream and bare == ""):
        return send_json(handler, 200, {})
    if bare == "/v1/models" or not upstream:
        return send_json(handler, 200, {"object": "list", "data": [
            {"id": model_name, "object": "model", "owned_by": "vllm", "root": model_name}]})
    return relay(handler, method, upstream, path, body)


def relay(handler, method, upstream, path, body):
    """Relay the request to ``upstream`` (a base URL) and stream its answer back."""
    target = urlsplit(upstream)
    prefix = target.path.rstrip("/")
    conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=600)
    headers = dict((k, v) for k, v in handler.headers.items() if k.lower() not in HOP_HEADERS
                   and k.lower() != "authorization")
    try:
        conn.request(method, prefix + path, body=body, headers=headers)
        answer = conn.getresponse()
    except OSError as exc:
        return send_json(handler, 502, {"error": "model server unreachable: %s" % exc})
    try:
        handler.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_HEADERS:
                handler.send_header(key, value)
        length = answer.getheader("Content-Length")
        if length is not None:
            handler.send_header("Content-Length", length)
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        while True:
            chunk = answer.read1(65536)
            if not chunk:
                break
            handler.wfile.write(chunk)
            handler.wfile.flush()
    finally:
        conn.close()
    return None


class PortServer:
    """One exposed port of a fake machine: an HTTP listener on a free local port."""

    def __init__(self, host, describe):
        """``describe()`` returns (running, upstream, api_key, model_name) at request time."""
        server_self = self

        class Handler(OneWriteHandler):
            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                running, upstream, api_key, model_name = server_self.describe()
                if not running:
                    return send_json(self, 502, {"error": "instance not running"})
                return serve(self, method, self.path, upstream, api_key, model_name, body)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

        self.describe = describe
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
