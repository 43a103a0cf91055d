# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted OpenAI-compatible chat server (stdlib only) to put behind a real LiteLLM proxy.

Each ``POST /v1/chat/completions`` takes the next entry of the script; when the script is
empty the default answer is used. An entry is either a string (the assistant's content) or a
dict: ``{"content": str, "finish_reason": "stop"|"length"}`` or ``{"status": 503,
"message": "..."}`` for an error. With ``reject_json_schema`` the server behaves like
llama-cpp-python's: a ``response_format`` of type ``json_schema`` gets HTTP 500 with its
pydantic message (stateless, so proxy-side retries do not consume the script).

In tests::

    server = ScriptedChatServer(default="hello").start()
    server.script(["not json", '{"tasks": [...]}'])
    ... requests go to server.url + "/v1" ...
    server.requests   # the JSON bodies received, in order
    server.stop()

Standalone: ``python openai_chat.py --port 0 --default 'hello'`` prints the URL it serves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import threading
import time
from http.server import ThreadingHTTPServer

try:
    from ._fakehttp import OneWriteHandler
except ImportError:  # run as a script: python openai_chat.py
    from _fakehttp import OneWriteHandler

LLAMACPP_JSON_SCHEMA_ERROR = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
    "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}")


class ScriptedChatServer:
    def __init__(self, default="OK", models=("intent",), reject_json_schema=False):
        self.default = default
        self.models = list(models)
        self.reject_json_schema = reject_json_schema
        self.requests = []
        self._script = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # -- control ------------------------------------------------------------------------------
    def script(self, entries, default=None, reject_json_schema=None):
        """Replace the script (and clear the request log)."""
        with self._lock:
            self._script = list(entries)
            self.requests = []
            if default is not None:
                self.default = default
            if reject_json_schema is not None:
                self.reject_json_schema = reject_json_schema
        return self

    def _next(self):
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def start(self, port=0):
        server = self

        class Handler(OneWriteHandler):
            def _send(self, status, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "owned_by": "fake"} for m in server.models]})
                elif self.path.startswith("/health"):
                    self._send(200, {"status": "ok"})
                else:
                    self._send(404, {"error": {"message": "not found: %s" % self.path}})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found: %s" % self.path}})
                    return
                with server._lock:
                    server.requests.append(body)
                fmt = body.get("response_format") or {}
                if server.reject_json_schema and fmt.get("type") == "json_schema":
                    self._send(500, {"error": {"message": LLAMACPP_JSON_SCHEMA_ERROR,
                                               "type": "internal_server_error"}})
                    return
                entry = server._next()
                if isinstance(entry, str):
                    entry = {"content": entry}
                if "status" in entry:
                    self._send(entry["status"], {"error": {
                        "message": entry.get("message", "scripted error"), "type": "fake"}})
                    return
                self._answer(body, entry)

            def _answer(self, body, entry):
                content = entry.get("content", "")
                finish = entry.get("finish_reason", "stop")
                model = body.get("model", "intent")
                prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
                usage = {"prompt_tokens": max(1, prompt // 4),
                         "completion_tokens": max(1, len(content) // 4)}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                ident = "chatcmpl-fake-%d" % len(server.requests)
                if body.get("stream"):
                    chunks = [{"id": ident, "object": "chat.completion.chunk",
                               "created": int(time.time()), "model": model,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]}
                              for delta, fr in (({"role": "assistant", "content": content}, None),
                                                ({}, finish))]
                    data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
                    self._send(200, data + b"data: [DONE]\n\n", "text/event-stream")
                    return
                self._send(200, {
                    "id": ident, "object": "chat.completion", "created": int(time.time()),
                    "model": model, "usage": usage,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}]})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._httpd.server_address[1]

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--default", default="OK", help="content of every answer")
    parser.add_argument("--reject-json-schema", action="store_true")
    args = parser.parse_args()
    server = ScriptedChatServer(default=args.default, reject_json_schema=args.reject_json_schema)
    server.start(args.port)
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
