"""A minimal OpenAI-compatible model server that answers instantly.

Used where the model's answer does not matter but the request path does: the ``litellm_route``
file backend test (route added -> request served) and the gateway benchmark (gateway overhead
without model latency). Answers ``/v1/models`` and ``/v1/chat/completions`` (also streaming);
the reply text names the backend (``--name``) and the requested model so tests can tell
deployments apart. With ``--api-key`` set, calls without ``Bearer <key>`` get 401.

Run: ``python openai_backend_fake.py --port 0 --port-file F --name primary``.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
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

    def _authorized(self):
        key = self.server.api_key
        if key and self.headers.get("Authorization") != "Bearer %s" % key:
            self._send(401, {"error": {"message": "invalid api key", "type": "auth_error"}})
            return False
        return True

    def do_GET(self):
        if not self._authorized():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [
                {"id": self.server.name, "object": "model", "owned_by": "fake"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._authorized():
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._send(404, {"error": {"message": "not found"}})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"error": {"message": "bad json"}})
        with self.server.lock:
            self.server.requests += 1
        model = body.get("model", "")
        text = "hello from %s (%s)" % (self.server.name, model)
        created = int(time.time())
        if body.get("stream"):
            return self._stream(model, text, created)
        self._send(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})

    def _stream(self, model, text, created):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        words = text.split(" ")
        for i, word in enumerate(words):
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [{"index": 0, "finish_reason": None, "delta": {
                         "role": "assistant", "content": word + (" " if i < len(words) - 1 else "")}}]}
            self.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode())
        end = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
               "model": model, "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]}
        self.wfile.write(("data: %s\n\ndata: [DONE]\n\n" % json.dumps(end)).encode())
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmark opens 100 connections at once


class FakeOpenAIBackend:
    """``with FakeOpenAIBackend('primary') as backend: backend.url`` (``.../v1``)."""

    def __init__(self, name="fake", api_key=None, host="127.0.0.1", port=0):
        self.server = _Server((host, port), Handler)
        self.server.name = name
        self.server.api_key = api_key
        self.server.requests = 0
        self.server.lock = threading.Lock()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d/v1" % self.server.server_address[1]

    @property
    def requests(self):
        return self.server.requests

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="fake")
    parser.add_argument("--api-key")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    backend = FakeOpenAIBackend(args.name, args.api_key, port=args.port)
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(backend.server.server_address[1]))
    backend.server.serve_forever()


if __name__ == "__main__":
    main()
