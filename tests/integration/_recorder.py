"""A recording OpenAI-compatible pass-through, put between LiteLLM and a model server.

LiteLLM reaches it at ``http://127.0.0.1:PORT/alias/<alias>/v1``: one ``api_base`` per gateway
alias, so the recorded path says which alias LiteLLM routed the request under. Each request is
appended to a JSON-lines file (alias, path, body) and forwarded unchanged to the upstream
server; the answer (streamed or not) is copied back. Run: ``python _recorder.py PORT UPSTREAM
LOGFILE [--adapt]``.

``--adapt`` fits the recorded request to a tiny local model before forwarding it (the record
keeps the request exactly as LiteLLM sent it): message content given as a list of parts becomes
plain text (llama-cpp-python's chat templates only take strings), tool definitions are dropped
(SmolLM2-135M cannot call tools and their JSON alone overflows its context) and ``max_tokens`` is
capped.
"""

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LOCK = threading.Lock()


def adapt(body, max_tokens=128):
    """Return a copy of a chat request that a small llama.cpp model can answer."""
    body = dict(body)
    messages = []
    for message in body.get("messages", []):
        message = dict(message)
        if isinstance(message.get("content"), list):
            message["content"] = "\n".join(part.get("text", "") for part in message["content"]
                                           if isinstance(part, dict))
        if message.get("role") == "tool" or message.get("tool_calls"):
            message.pop("tool_calls", None)
            message["role"] = "assistant" if message.get("role") != "tool" else "user"
            message["content"] = message.get("content") or ""
        messages.append(message)
    body["messages"] = messages
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        body.pop(key, None)
    body["max_tokens"] = min(int(body.get("max_tokens") or max_tokens), max_tokens)
    return body


class Handler(BaseHTTPRequestHandler):
    upstream = None
    logfile = None
    adapt = False

    def log_message(self, fmt, *args):  # keep stderr for errors only
        pass

    def _split(self):
        parts = self.path.split("/", 3)  # ['', 'alias', '<alias>', 'v1/...']
        if len(parts) == 4 and parts[1] == "alias":
            return parts[2], "/" + parts[3]
        return None, self.path

    def _forward(self, method, body=None):
        alias, path = self._split()
        if body is not None:
            try:
                decoded = json.loads(body or b"{}")
            except ValueError:
                decoded = {"raw": body.decode("utf-8", "replace")}
            with _LOCK, open(self.logfile, "a") as handle:
                handle.write(json.dumps({"alias": alias, "path": path, "body": decoded}) + "\n")
            if self.adapt and path.endswith("/chat/completions") and "messages" in decoded:
                body = json.dumps(adapt(decoded)).encode()
        request = urllib.request.Request(self.upstream + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            resp = urllib.request.urlopen(request, timeout=600)
        except urllib.error.HTTPError as exc:
            resp = exc
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
        self.end_headers()
        while True:
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._forward("GET")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._forward("POST", self.rfile.read(length))


def main():
    port, upstream, logfile = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
    Handler.upstream, Handler.logfile = upstream, logfile
    Handler.adapt = "--adapt" in sys.argv[4:]
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
