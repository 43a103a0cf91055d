"""A fake of the LiteLLM proxy's model-management API, for the ``litellm_route`` api backend.

The real endpoints need a database-backed proxy, which cannot start on these machines (Prisma
downloads its engines at start). The fake follows the documented shapes of LiteLLM 1.102:

- ``POST /model/new``     body ``{model_name, litellm_params{model,...}, model_info{id?}}``
- ``GET  /model/info``    ``{"data": [deployment, ...]}`` (``?litellm_model_id=`` filters);
  ``litellm_params.api_key`` is removed as the proxy does (remove_sensitive_info_from_deployment)
- ``POST /model/update``  body ``{model_name?, litellm_params?, model_info{id}}``: merged in
- ``POST /model/delete``  body ``{"id"}``
- every call needs ``Authorization: Bearer <master key>`` (401 otherwise)

Run standalone: ``python litellm_admin_fake.py --master-key sk-x --port 0 --port-file F``.
"""

import argparse
import copy
import json
import threading
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from _fakehttp import OneWriteHandler


class FakeState:
    def __init__(self, master_key):
        self.master_key = master_key
        self.deployments = []
        self.calls = []
        self.lock = threading.Lock()

    def find(self, rid):
        for dep in self.deployments:
            if dep["model_info"].get("id") == rid:
                return dep
        return None


def _public(dep):
    out = copy.deepcopy(dep)
    out["litellm_params"].pop("api_key", None)
    out["model_info"]["db_model"] = True
    return out


class Handler(OneWriteHandler):
    server_version = "litellm-admin-fake"

    @property
    def state(self):
        return self.server.state

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message, etype="invalid_request_error"):
        self._send(status, {"error": {"message": message, "type": etype, "param": None,
                                      "code": str(status)}})

    def _authorized(self):
        header = self.headers.get("Authorization", "")
        if header != "Bearer %s" % self.state.master_key:
            self._error(401, "Authentication Error, No api key passed in." if not header
                        else "Authentication Error, Invalid proxy server token passed.", "auth_error")
            return False
        return True

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None

    def do_GET(self):
        url = urlparse(self.path)
        if url.path in ("/health/readiness", "/health/liveliness"):
            return self._send(200, {"status": "healthy", "db": "connected"})
        if not self._authorized():
            return None
        self.state.calls.append(("GET", url.path))
        if url.path in ("/model/info", "/v1/model/info"):
            rid = parse_qs(url.query).get("litellm_model_id", [None])[0]
            with self.state.lock:
                data = [_public(d) for d in self.state.deployments
                        if rid is None or d["model_info"].get("id") == rid]
            return self._send(200, {"data": data})
        return self._error(404, "Not Found")

    def do_POST(self):
        url = urlparse(self.path)
        if not self._authorized():
            return None
        body = self._body()
        self.state.calls.append(("POST", url.path))
        if not isinstance(body, dict):
            return self._error(422, "body must be a JSON object")
        handler = {"/model/new": self._new, "/model/update": self._update,
                   "/model/delete": self._delete}.get(url.path)
        if handler is None:
            return self._error(404, "Not Found")
        with self.state.lock:
            return handler(body)

    def _new(self, body):
        params = body.get("litellm_params")
        if not body.get("model_name") or not isinstance(params, dict) or not params.get("model"):
            return self._error(422, "model_name and litellm_params.model are required")
        info = dict(body.get("model_info") or {})
        info.setdefault("id", str(uuid.uuid4()))
        if self.state.find(info["id"]) is not None:
            return self._error(400, "model with id %s already exists" % info["id"])
        dep = {"model_name": body["model_name"], "litellm_params": dict(params), "model_info": info}
        self.state.deployments.append(dep)
        return self._send(200, _public(dep))

    def _update(self, body):
        rid = (body.get("model_info") or {}).get("id")
        if not rid:
            return self._error(400, "model_info.id is required")
        dep = self.state.find(rid)
        if dep is None:
            return self._error(400, "Model with id=%s not found in db" % rid)
        if body.get("model_name"):
            dep["model_name"] = body["model_name"]
        for key, value in (body.get("litellm_params") or {}).items():
            if value is not None:
                dep["litellm_params"][key] = value
        return self._send(200, _public(dep))

    def _delete(self, body):
        dep = self.state.find(body.get("id"))
        if dep is None:
            return self._error(400, "Model with id=%s not found in db" % body.get("id"))
        self.state.deployments.remove(dep)
        return self._send(200, {"message": "Model: %s deleted successfully" % body["id"]})


class FakeLitellmAdmin:
    """``with FakeLitellmAdmin('sk-x') as fake: fake.url, fake.state``."""

    def __init__(self, master_key, host="127.0.0.1", port=0):
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.server.state = FakeState(master_key)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return "http://%s:%d" % (host, port)

    @property
    def state(self):
        return self.server.state

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master-key", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    fake = FakeLitellmAdmin(args.master_key, port=args.port)
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(fake.server.server_address[1]))
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
