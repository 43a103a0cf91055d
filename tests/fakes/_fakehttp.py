"""What the fakes' HTTP handlers share: one write per response, TCP_NODELAY, quiet logs, HTTP/1.1.

Real servers behind the fakes answer each response in one write with Nagle's algorithm off:
uvicorn (the LiteLLM proxy, llama-cpp-python's server, vLLM's OpenAI server) runs on asyncio
or uvloop, whose TCP transports set ``TCP_NODELAY`` on every connection (CPython
``asyncio/selector_events.py``: ``_set_nodelay``; uvloop ``handles/tcp.pyx``), and writes the
head and a small body together. ``http.server`` with its unbuffered ``wfile`` writes the head
and the body separately instead; a client then waits for a delayed ACK (about 40 ms on Linux)
before the second write leaves, which once made the gateway look 50 ms slower than it is.
``OneWriteHandler`` buffers the whole response and sends it when the handler returns (or at
each ``flush()`` of a stream), on a socket with ``TCP_NODELAY``.
"""

import json
import socket
from http.server import BaseHTTPRequestHandler


class OneWriteHandler(BaseHTTPRequestHandler):
    """Base handler: a buffered ``wfile`` (one ``send`` per flush) on a TCP_NODELAY socket."""

    protocol_version = "HTTP/1.1"
    # BaseHTTPRequestHandler flushes wfile after each request; responses up to this size leave
    # in one write (streams flush per event, as uvicorn sends one chunk per event).
    wbufsize = 1 << 20

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *_args):  # keep test output quiet
        pass


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


class JsonHandler(OneWriteHandler):
    """Base of the fakes' request handlers; ``fake`` is set on a subclass per server."""

    fake = None

    def _send(self, status, payload, headers=None):
        send_json(self, status, payload, headers)
