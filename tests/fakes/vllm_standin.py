#!/usr/bin/env python3
"""Stands in for vLLM's OpenAI server inside a fake rented machine (no GPU, no weights here).

Takes vLLM's command line as the container runs it and serves what vLLM would on ``--host`` /
``--port``: ``/health``, ``/v1/models`` listing ``--served-model-name`` (else ``--model``), the
``VLLM_API_KEY`` check, and over TLS when ``--ssl-certfile``/``--ssl-keyfile`` are given (vLLM
serves HTTPS only then). Completions are relayed to ``CODESTACK_FAKE_UPSTREAM`` (a real local
model server, llama.cpp). Other vLLM flags are accepted and ignored: the slow test runs the real
vLLM with the same command line, where a wrong flag fails.
"""

import argparse
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workload  # noqa: E402  pylint: disable=wrong-import-position


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", nargs="+")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    args, _ignored = parser.parse_known_args(argv)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser.error("--ssl-certfile and --ssl-keyfile go together")
    name = (args.served_model_name or [args.model])[0]
    api_key = os.environ.get("VLLM_API_KEY") or None
    upstream = os.environ.get("CODESTACK_FAKE_UPSTREAM") or None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):
            pass

        def _handle(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            _workload.serve(self, method, self.path, upstream, api_key, name, body)

        def do_GET(self):  # noqa: N802
            self._handle("GET")

        def do_POST(self):  # noqa: N802
            self._handle("POST")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    scheme = "http"
    if args.ssl_certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("vllm stand-in: serving %s on %s://%s:%d" % (name, scheme, args.host, args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
