"""What the provider fakes' HTTP handlers share: JSON answers, quiet logs, HTTP/1.1."""

import json
from http.server import BaseHTTPRequestHandler


def send_json(handler, status, payload, headers=None):
    """Answer ``payload`` as JSON with its length (keep-alive friendly) and extra headers."""
    data = json.dumps(payload).encode("utf-8")
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


class JsonHandler(BaseHTTPRequestHandler):
    """Base of the fakes' request handlers; ``fake`` is set on a subclass per server."""

    fake = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args):  # keep test output quiet
        pass

    def _send(self, status, payload, headers=None):
        send_json(self, status, payload, headers)
