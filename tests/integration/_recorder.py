"""A recording OpenAI-compatible pass-through, put between LiteLLM and a model server.

LiteLLM reaches it at ``http://127.0.0.1:PORT/alias/<alias>/v1``: one ``api_base`` per gateway
alias, so the recorded path says which alias LiteLLM routed the request under. Each request is
appended to a JSON-lines file (alias, path, body) and forwarded unchanged to the upstream
server; the answer (streamed or not) is copied back. It changes nothing: what the model server
gets is what LiteLLM sent. Run: ``python _recorder.py PORT UPSTREAM LOGFILE``.
"""

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    upstream = None
    logfile = None

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
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
