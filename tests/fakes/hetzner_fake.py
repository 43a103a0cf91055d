#!/usr/bin/env python3
"""A local fake of the Hetzner Cloud API (``/v1``), for tests (never talks to the internet).

Enough for the ``hcloud`` library (``hcloud.Client(token, api_endpoint=<fake>/v1)``) to list
server types and locations and to create, read, list and delete servers:

- ``GET /v1/server_types`` (``name`` filter, ``page``/``per_page``) and ``/v1/server_types/{id}``:
  ``name, description, cores, memory, disk, architecture, cpu_type, storage_type, category,
  deprecation, locations, prices:[{location, price_hourly:{net, gross}, price_monthly:{...},
  included_traffic, price_per_tb_traffic}]`` with prices as strings (EUR), as the API sends them.
- ``GET /v1/locations`` (and ``/{id}``).
- ``GET|POST /v1/servers``, ``GET|DELETE /v1/servers/{id}``: ``POST`` answers
  ``{"server", "action", "next_actions", "root_password"}``; servers start ``initializing`` and
  are ``running`` after ``running_delay`` seconds.
- Bearer auth: 401 ``{"error": {"code": "unauthorized", ...}}``; ``fail_next`` injects
  429/5xx answers (``Retry-After`` when given); errors use ``{"error": {code, message, details}}``.

Prices here are test data (shaped like the real list, not a price source).
``GET|POST /_control`` reads counters / changes settings. Standalone:
``python tests/fakes/hetzner_fake.py --port 8767``.
"""

import argparse
import copy
import json
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from _fakehttp import JsonHandler

LOCATIONS = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE",
     "city": "Falkenstein", "latitude": 50.47612, "longitude": 12.370071,
     "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE",
     "city": "Nuremberg", "latitude": 49.452102, "longitude": 11.076665,
     "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI",
     "city": "Helsinki", "latitude": 60.169855, "longitude": 24.938379,
     "network_zone": "eu-central"},
]


def _price(location, hourly_net, monthly_net, vat=0.19):
    def pair(net):
        return {"net": "%.10f" % net, "gross": "%.10f" % (net * (1 + vat))}
    return {"location": location, "price_hourly": pair(hourly_net),
            "price_monthly": pair(monthly_net), "included_traffic": 21990232555520,
            "price_per_tb_traffic": pair(1.0)}


def _server_type(type_id, name, cores, memory, disk, arch, cpu_type, hourly, monthly):
    return {
        "id": type_id, "name": name, "description": name.upper(), "category": "regular_purpose",
        "cores": cores, "memory": memory, "disk": disk, "architecture": arch,
        "cpu_type": cpu_type, "storage_type": "local", "deprecated": False, "deprecation": None,
        "included_traffic": 21990232555520,
        "prices": [_price(loc["name"], hourly, monthly) for loc in LOCATIONS],
        "locations": [{"id": loc["id"], "name": loc["name"], "deprecation": None,
                       "available": True, "recommended": True} for loc in LOCATIONS],
    }


DEFAULT_SERVER_TYPES = [
    _server_type(22, "cx22", 2, 4.0, 40, "x86", "shared", 0.006, 3.79),
    _server_type(23, "cx32", 4, 8.0, 80, "x86", "shared", 0.0109, 6.80),
    _server_type(45, "cax21", 4, 8.0, 80, "arm", "shared", 0.0104, 6.49),
    _server_type(96, "ccx33", 8, 32.0, 240, "x86", "dedicated", 0.0768, 47.99),
]

DEFAULTS = {
    "api_key": "test-token",
    "running_delay": 0.5,
    "fail_next": [],
    "server_types": DEFAULT_SERVER_TYPES,
}


def _error(code, message, details=None):
    return {"error": {"code": code, "message": message, "details": details or {}}}


class HetznerFake:
    """The fake API. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(self, host="127.0.0.1", port=0, **config):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.config = copy.deepcopy(DEFAULTS)
        self.servers = {}
        self.next_id = 5000001
        self.counters = {"requests": 0, "unauthorized": 0, "injected": {}, "paths": {}}
        self.configure(**config)
        self._server = None

    def start(self):
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        """Base URL to give ``hcloud.Client(api_endpoint=...)``."""
        return "http://%s:%d/v1" % (self.host, self.port)

    def configure(self, **config):
        with self.lock:
            for key, value in config.items():
                if key not in DEFAULTS:
                    raise ValueError("unknown fake setting %r" % key)
                self.config[key] = copy.deepcopy(value)

    def snapshot(self):
        with self.lock:
            return {"servers": [self._server_view(s) for s in self.servers.values()],
                    "live_servers": len(self.servers),
                    "counters": copy.deepcopy(self.counters)}

    # -------------------------------------------------------------- model
    def _server_view(self, server):
        status = "running" if time.time() - server["created_at"] >= self.config["running_delay"] \
            else "initializing"
        return dict(server["data"], status=status)

    @staticmethod
    def _page(items, key, query):
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["25"])[0])
        start = (page - 1) * per_page
        chunk = items[start:start + per_page]
        last = max(1, (len(items) + per_page - 1) // per_page)
        return 200, {key: chunk, "meta": {"pagination": {
            "page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None, "last_page": last,
            "total_entries": len(items)}}}

    def route(self, method, path, query, body):
        seg = [s for s in path.split("/") if s]
        if seg[:1] != ["v1"] or len(seg) < 2:
            return 404, _error("not_found", "no such path")
        resource, rest = seg[1], seg[2:]
        name = query.get("name", [None])[0]
        if resource == "server_types" and method == "GET":
            types = self.config["server_types"]
            if rest:
                match = [t for t in types if str(t["id"]) == rest[0]]
                if not match:
                    return 404, _error("not_found", "server type not found")
                return 200, {"server_type": match[0]}
            if name:
                types = [t for t in types if t["name"] == name]
            return self._page(types, "server_types", query)
        if resource == "locations" and method == "GET":
            if rest:
                match = [loc for loc in LOCATIONS if str(loc["id"]) == rest[0]]
                if not match:
                    return 404, _error("not_found", "location not found")
                return 200, {"location": match[0]}
            items = [loc for loc in LOCATIONS if not name or loc["name"] == name]
            return self._page(items, "locations", query)
        if resource == "servers":
            return self._servers(method, rest, query, body, name)
        return 404, _error("not_found", "no such path")

    def _servers(self, method, rest, query, body, name):
        if not rest and method == "GET":
            items = [self._server_view(s) for s in sorted(self.servers.values(), key=lambda s: s["data"]["id"])]
            if name:
                items = [s for s in items if s["name"] == name]
            selector = query.get("label_selector", [None])[0]
            if selector:
                key, _sep, value = selector.partition("=")
                items = [s for s in items if key in s["labels"] and (not _sep or s["labels"][key] == value)]
            return self._page(items, "servers", query)
        if not rest and method == "POST":
            return self._create(body or {})
        server = self.servers.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if server is None:
            return 404, _error("not_found", "server with ID '%s' not found" % (rest[0] if rest else ""))
        if method == "GET":
            return 200, {"server": self._server_view(server)}
        if method == "DELETE":
            del self.servers[server["data"]["id"]]
            return 200, {"action": self._action("delete_server", server["data"]["id"])}
        return 405, _error("method_not_allowed", "method not allowed")

    def _action(self, command, server_id):
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        return {"id": self.next_id, "command": command, "status": "success", "progress": 100,
                "started": now, "finished": now, "error": None,
                "resources": [{"id": server_id, "type": "server"}]}

    def _create(self, body):
        missing = [k for k in ("name", "server_type", "image") if not body.get(k)]
        if missing:
            return 422, _error("invalid_input", "invalid input in fields %s" % ", ".join(missing),
                               {"fields": [{"name": k, "messages": ["Missing data for required field."]}
                                           for k in missing]})
        stype = next((t for t in self.config["server_types"] if t["name"] == body["server_type"]), None)
        if stype is None:
            return 422, _error("invalid_input", "server type %s not found" % body["server_type"])
        if any(s["data"]["name"] == body["name"] for s in self.servers.values()):
            return 409, _error("uniqueness_error", "server name is already used")
        location = next((loc for loc in LOCATIONS if loc["name"] == body.get("location", "fsn1")), LOCATIONS[0])
        server_id = self.next_id
        self.next_id += 1
        data = {
            "id": server_id, "name": body["name"], "server_type": stype,
            "image": {"id": 114690387, "name": body["image"], "type": "system"},
            "datacenter": {"id": location["id"], "name": location["name"] + "-dc14",
                           "location": location},
            "public_net": {"ipv4": {"id": server_id, "ip": "203.0.113.%d" % (server_id % 250 + 1),
                                    "blocked": False, "dns_ptr": "static.example"},
                           "ipv6": None, "floating_ips": [], "firewalls": []},
            "private_net": [], "labels": body.get("labels") or {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "protection": {"delete": False, "rebuild": False}, "volumes": [],
            "included_traffic": stype["included_traffic"], "outgoing_traffic": 0,
            "ingoing_traffic": 0, "primary_disk_size": stype["disk"], "rescue_enabled": False,
            "locked": False, "backup_window": None, "iso": None, "load_balancers": [],
            "placement_group": None,
        }
        self.servers[server_id] = {"data": data, "created_at": time.time()}
        return 201, {"server": self._server_view(self.servers[server_id]),
                     "action": self._action("create_server", server_id), "next_actions": [],
                     "root_password": None if body.get("ssh_keys") else "fake-root-password"}


class _Handler(JsonHandler):
    def _dispatch(self, method):
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except ValueError:
            return self._send(400, _error("json_error", "invalid JSON"))
        if parts.path.rstrip("/") == "/_control":
            if method == "GET":
                return self._send(200, fake.snapshot())
            try:
                fake.configure(**(body or {}))
            except (TypeError, ValueError) as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, {"ok": True})
        with fake.lock:
            fake.counters["requests"] += 1
            key = "%s %s" % (method, parts.path)
            fake.counters["paths"][key] = fake.counters["paths"].get(key, 0) + 1
            if self.headers.get("Authorization") != "Bearer %s" % fake.config["api_key"]:
                fake.counters["unauthorized"] += 1
                return self._send(401, _error("unauthorized", "unable to authenticate"))
            if fake.config["fail_next"]:
                injected = fake.config["fail_next"].pop(0)
                status = int(injected.get("status", 503))
                fake.counters["injected"][str(status)] = fake.counters["injected"].get(str(status), 0) + 1
                headers = {}
                if injected.get("retry_after") is not None:
                    headers["Retry-After"] = str(injected["retry_after"])
                code = "rate_limit_exceeded" if status == 429 else "unavailable"
                return self._send(status, _error(code, "injected failure"), headers)
            status, payload = fake.route(method, parts.path, parse_qs(parts.query), body)
        return self._send(status, payload)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULTS["api_key"])
    args = parser.parse_args()
    fake = HetznerFake(args.host, args.port, api_key=args.api_key).start()
    print("Hetzner Cloud fake on %s (control at /_control)" % fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
