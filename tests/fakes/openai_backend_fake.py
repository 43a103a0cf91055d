"""A minimal OpenAI-compatible model server that answers instantly, on the wire like uvicorn.

Used where the model's answer does not matter but the request path does: the ``litellm_route``
file backend test (route added -> request served), the gateway benchmark (gateway overhead
without model latency) and the site benchmark. Answers ``/v1/models`` and
``/v1/chat/completions`` (also streaming); the reply text names the backend (``--name``) and the
requested model so tests can tell deployments apart. With ``--api-key`` set, calls without
``Bearer <key>`` get 401. With ``--tokens N`` every answer is N tokens (N stream chunks).

On the wire it behaves like the real model servers it stands for (llama-cpp-python's server and
vLLM's both run on uvicorn): TCP_NODELAY, one write per response, keep-alive, and a stream sent
with chunked transfer encoding, one chunk (one write) per server-sent event.

Run: ``python openai_backend_fake.py --port 0 --port-file F --name primary``.
"""

import argparse
import json
import threading
import time
from http.server import ThreadingHTTPServer

from _fakehttp import OneWriteHandler


class Handler(OneWriteHandler):

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

    def do_GET(self):  # noqa: N802 - http.server's naming
        if not self._authorized():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [
                {"id": self.server.name, "object": "model", "owned_by": "fake"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._authorized():
            return None
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._send(404, {"error": {"message": "not found"}})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(400, {"error": {"message": "bad json"}})
        with self.server.lock:
            self.server.requests += 1
        model = body.get("model", "")
        if self.server.tokens:
            words = ["tok"] * self.server.tokens
        else:
            words = ("hello from %s (%s)" % (self.server.name, model)).split(" ")
        pieces = [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]
        created = int(time.time())
        if body.get("stream"):
            return self._stream(model, pieces, created)
        return self._send(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "".join(pieces)}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(pieces),
                      "total_tokens": 5 + len(pieces)}})

    def _event(self, payload):
        data = ("data: %s\n\n" % (payload if isinstance(payload, str) else json.dumps(payload))).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _stream(self, model, pieces, created):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, piece in enumerate(pieces):
            delta = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            self._event({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                         "model": model, "choices": [{"index": 0, "finish_reason": None, "delta": delta}]})
        self._event({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]})
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the benchmark opens 100 connections at once


class FakeOpenAIBackend:
    """``with FakeOpenAIBackend('primary') as backend: backend.url`` (``.../v1``)."""

    def __init__(self, name="fake", api_key=None, host="127.0.0.1", port=0, tokens=0):
        self.server = _Server((host, port), Handler)
        self.server.name = name
        self.server.api_key = api_key
        self.server.tokens = tokens
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
    parser.add_argument("--tokens", type=int, default=0, help="tokens per answer (0: the name text)")
    args = parser.parse_args()
    backend = FakeOpenAIBackend(args.name, args.api_key, port=args.port, tokens=args.tokens)
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(backend.server.server_address[1]))
    backend.server.serve_forever()


if __name__ == "__main__":
    main()
