#!/usr/bin/env python3
"""A local fake of Exoscale's API v2 (``/v2`` of one zone), for tests (never talks to the internet).

Enough for Exoscale's own SDK (``exoscale.api.v2.Client(key, secret, url=fake.url)``) to
create, find and remove a stack's control server, its SSH key and its security group. The
wire format is that of the OpenAPI document the SDK ships (``exoscale/openapi.json``, 0.16.4):

- Every request is signed ``Authorization: EXO2-HMAC-SHA256 credential=KEY[,signed-query-args=
  a;b],expires=TS,signature=B64``: HMAC-SHA256 with the secret over ``"METHOD PATH\\nBODY\\n
  QUERY-VALUES\\n\\nEXPIRES"`` (the values of the signed query arguments in that order), as
  ``requests-exoscale-auth``'s ``ExoscaleV2Auth`` signs. An unknown key, a wrong signature or an
  expired one: 403 ``{"message": ...}``.
- Writes answer an operation ``{"id", "state": "pending", "reference": {"id", "link",
  "command"}}``, ``GET /operation/{id}`` is ``pending`` for ``operation_delay`` seconds, then
  ``success``.
- ``GET|POST /ssh-key``, ``GET|DELETE /ssh-key/{name}`` (``{name, fingerprint}``; 409 for a
  name that exists).
- ``GET|POST /security-group``, ``GET|DELETE /security-group/{id}``, ``POST
  /security-group/{id}/rules``, ``DELETE /security-group/{id}/rules/{rule-id}``; a group an
  instance uses cannot be deleted (409).
- ``GET /instance-type`` (``{id, family, size, cpus, memory, gpus, authorized, zones}``),
  ``GET /template`` (``visibility``), ``GET|POST /instance``, ``GET|DELETE /instance/{id}``:
  ``POST`` needs ``instance-type``, ``template`` and ``disk-size`` (400 otherwise), takes
  ``name, labels, ssh-keys, security-groups, public-ip-assignment``; an instance is
  ``starting`` for ``running_delay`` seconds, then ``running``, with ``public-ip``
  (``server_ipv4``). Instance types and templates are referenced by ``{id}`` only, as the API
  returns them in an instance.
- Errors: ``{"message": ...}`` with 400, 403, 404, 409; ``fail_next`` injects 429/5xx answers
  (``Retry-After`` when given).

Billing (``ledger``): an instance is billed per second from its creation to its deletion at the
hourly price of ``catalog/control_servers.yml`` (type, plus its disk per GB-hour) in USD at the
catalog's EUR rate, so a cost report compares with what the catalog says Exoscale bills.
``GET|POST /_control`` reads a snapshot / changes settings.
Standalone: ``python tests/fakes/exoscale_fake.py --port 8768``.
"""

import argparse
import base64
import copy
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

from _billing import CATALOG_DIR, Ledger, SimClock
from _fakehttp import JsonHandler

DEFAULTS = {
    "api_key": "EXOtest0000000000000000000",
    "api_secret": "exoscale-test-secret",
    "zone": "ch-gva-2",
    "operation_delay": 0.2,
    "running_delay": 0.5,
    "server_ipv4": "127.0.0.1",
    "fail_next": [],
}

TEMPLATES = [
    {"id": "7f7a5d52-0000-4000-8000-00000000d012", "name": "Linux Debian 12 (Bookworm) 64-bit",
     "family": "debian", "default-user": "debian", "ssh-key-enabled": True, "password-enabled": False,
     "boot-mode": "legacy", "maintainer": "Exoscale", "size": 10737418240, "created-at": "2026-10-01T00:00:00Z"},
    {"id": "7f7a5d52-0000-4000-8000-00000000d011", "name": "Linux Debian 11 (Bullseye) 64-bit",
     "family": "debian", "default-user": "debian", "ssh-key-enabled": True, "password-enabled": False,
     "boot-mode": "legacy", "maintainer": "Exoscale", "size": 10737418240, "created-at": "2025-10-01T00:00:00Z"},
]


def _catalog():
    """The catalog's Exoscale control server types, and USD per unit of their currency."""
    with open(os.path.join(CATALOG_DIR, "control_servers.yml")) as handle:
        types = [e for e in yaml.safe_load(handle)["control_servers"] if e["provider"] == "exoscale"]
    with open(os.path.join(CATALOG_DIR, "cost-model.yml")) as handle:
        currencies = dict((c["id"], c["usd_per_unit"]) for c in yaml.safe_load(handle)["currencies"])
    return types, float(currencies[types[0]["currency"]])


def _fingerprint(public_key):
    try:
        blob = base64.b64decode(public_key.split()[1])
    except (IndexError, ValueError):
        return None
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - the API's fingerprint format
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _error(message):
    return {"message": message}


class ExoscaleFake:
    """The fake API. Thread-safe; use as a context manager or start()/stop().

    ``on_instance_create(instance, public_keys)`` runs as an instance is created with the
    public keys it was given (what cloud-init does on the real machine).
    """

    def __init__(self, host="127.0.0.1", port=0, on_instance_create=None, clock=None, **config):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.config = copy.deepcopy(DEFAULTS)
        self.clock = clock or SimClock(1.0)
        self.ledger = Ledger(self.clock)
        self.catalog, self.usd_per_eur = _catalog()
        self.instance_types = [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "exoscale-type:" + t["name"])),
             "family": t["name"].split(".", 1)[0], "size": t["name"].split(".", 1)[1], "cpus": t["cpus"],
             "memory": int(t["memory_gib"] * 1024 ** 3), "authorized": True,
             "zones": [self.config["zone"]]} for t in self.catalog]
        self.ssh_keys = {}
        self.groups = {}
        self.instances = {}
        self.operations = {}
        self.deleted = {"instances": [], "security_groups": [], "ssh_keys": []}
        self.on_instance_create = on_instance_create
        self.counters = {"requests": 0, "forbidden": 0, "injected": {}, "paths": {}}
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
        """Base URL to give ``exoscale.api.v2.Client(key, secret, url=...)``."""
        return "http://%s:%d/v2" % (self.host, self.port)

    def configure(self, **config):
        with self.lock:
            for key, value in config.items():
                if key not in DEFAULTS:
                    raise ValueError("unknown fake setting %r" % key)
                self.config[key] = copy.deepcopy(value)

    def price_per_hour_usd(self, type_name, disk_size):
        entry = next(t for t in self.catalog if t["name"] == type_name)
        eur = float(entry["price_per_hour"]) + float(entry["disk_price_per_gb_hour"]) * int(disk_size)
        return eur * self.usd_per_eur

    def snapshot(self):
        with self.lock:
            return {"instances": [self._instance_view(i) for i in self.instances.values()],
                    "ssh_keys": [dict((f, v) for f, v in k.items() if f != "_public_key") for k in self.ssh_keys.values()],
                    "security_groups": [self._group_view(g) for g in self.groups.values()],
                    "deleted": copy.deepcopy(self.deleted), "ledger": self.ledger.view(),
                    "counters": copy.deepcopy(self.counters)}

    # -------------------------------------------------------------- model
    def _operation(self, command, ref_id, link):
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {"id": op_id, "done_at": time.time() + float(self.config["operation_delay"]),
                                  "reference": {"id": ref_id, "link": "/v2/%s/%s" % (link, ref_id), "command": command}}
        return self._operation_view(self.operations[op_id])

    @staticmethod
    def _operation_view(op):
        state = "success" if time.time() >= op["done_at"] else "pending"
        return {"id": op["id"], "state": state, "reference": dict(op["reference"])}

    def _instance_view(self, inst):
        data = copy.deepcopy(inst["data"])
        if data["state"] == "starting" and time.time() >= inst["running_at"]:
            inst["data"]["state"] = data["state"] = "running"
        return data

    @staticmethod
    def _group_view(group):
        return copy.deepcopy(group)

    def route(self, method, path, query, body):  # pylint: disable=too-many-return-statements,too-many-branches
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "v2":
            return 404, _error("not found")
        parts = parts[1:]
        head = parts[0] if parts else ""
        if head == "operation" and len(parts) == 2 and method == "GET":
            op = self.operations.get(parts[1])
            return (200, self._operation_view(op)) if op else (404, _error("Operation not found"))
        if head == "instance-type" and method == "GET":
            if len(parts) == 1:
                return 200, {"instance-types": copy.deepcopy(self.instance_types)}
            found = next((t for t in self.instance_types if t["id"] == parts[1]), None)
            return (200, copy.deepcopy(found)) if found else (404, _error("Instance type not found"))
        if head == "template" and method == "GET" and len(parts) == 1:
            visibility = (query.get("visibility") or ["public"])[0]
            return 200, {"templates": copy.deepcopy(TEMPLATES) if visibility == "public" else []}
        if head == "ssh-key":
            return self._ssh_key(method, parts[1:], body)
        if head == "security-group":
            return self._group(method, parts[1:], body)
        if head == "instance":
            return self._instance(method, parts[1:], body)
        return 404, _error("no such endpoint: %s %s" % (method, path))

    def _ssh_key(self, method, rest, body):
        if not rest:
            if method == "GET":
                return 200, {"ssh-keys": [{"name": k["name"], "fingerprint": k["fingerprint"]}
                                          for k in self.ssh_keys.values()]}
            if method == "POST":
                name, public_key = (body or {}).get("name"), (body or {}).get("public-key")
                if not name or not public_key:
                    return 400, _error("Invalid request: name and public-key are required")
                if name in self.ssh_keys:
                    return 409, _error("SSH key %s already exists" % name)
                fingerprint = _fingerprint(public_key)
                if fingerprint is None:
                    return 400, _error("Invalid request: public-key is not an SSH public key")
                self.ssh_keys[name] = {"name": name, "fingerprint": fingerprint, "_public_key": public_key}
                return 200, self._operation("get-ssh-key", name, "ssh-key")
        elif len(rest) == 1:
            key = self.ssh_keys.get(rest[0])
            if key is None:
                return 404, _error("SSH key not found")
            if method == "GET":
                return 200, {"name": key["name"], "fingerprint": key["fingerprint"]}
            if method == "DELETE":
                del self.ssh_keys[rest[0]]
                self.deleted["ssh_keys"].append(rest[0])
                return 200, self._operation("get-ssh-key", rest[0], "ssh-key")
        return 404, _error("no such endpoint")

    def _group(self, method, rest, body):
        if not rest:
            if method == "GET":
                return 200, {"security-groups": [{"id": g["id"], "name": g["name"], "description": g["description"]}
                                                 for g in self.groups.values()]}
            if method == "POST":
                name = (body or {}).get("name")
                if not name:
                    return 400, _error("Invalid request: name is required")
                if any(g["name"] == name for g in self.groups.values()):
                    return 409, _error("Security Group %s already exists" % name)
                group_id = str(uuid.uuid4())
                self.groups[group_id] = {"id": group_id, "name": name, "description": body.get("description") or "",
                                         "rules": []}
                return 200, self._operation("get-security-group", group_id, "security-group")
            return 404, _error("no such endpoint")
        group = self.groups.get(rest[0])
        if group is None:
            return 404, _error("Security Group not found")
        if len(rest) == 1:
            if method == "GET":
                return 200, self._group_view(group)
            if method == "DELETE":
                users = [i["data"]["name"] for i in self.instances.values()
                         if any(g["id"] == group["id"] for g in i["data"]["security-groups"])]
                if users:
                    return 409, _error("Security Group is in use by instance(s) %s" % ", ".join(users))
                del self.groups[rest[0]]
                self.deleted["security_groups"].append(rest[0])
                return 200, self._operation("get-security-group", rest[0], "security-group")
        if rest[1:] == ["rules"] and method == "POST":
            rule = body or {}
            if rule.get("flow-direction") not in ("ingress", "egress") or not rule.get("protocol"):
                return 400, _error("Invalid request: flow-direction and protocol are required")
            if rule.get("protocol") in ("tcp", "udp") and not (1 <= int(rule.get("start-port") or 0)
                                                               <= int(rule.get("end-port") or 0) <= 65535):
                return 400, _error("Invalid request: start-port and end-port must be 1-65535")
            kept = dict((k, rule[k]) for k in ("flow-direction", "protocol", "start-port", "end-port", "network",
                                               "description") if k in rule)
            group["rules"].append(dict(kept, id=str(uuid.uuid4())))
            return 200, self._operation("get-security-group", group["id"], "security-group")
        if len(rest) == 3 and rest[1] == "rules" and method == "DELETE":
            before = len(group["rules"])
            group["rules"] = [r for r in group["rules"] if r["id"] != rest[2]]
            if len(group["rules"]) == before:
                return 404, _error("Security Group rule not found")
            return 200, self._operation("get-security-group", group["id"], "security-group")
        return 404, _error("no such endpoint")

    def _instance(self, method, rest, body):
        if not rest:
            if method == "GET":
                return 200, {"instances": [self._instance_view(i) for i in self.instances.values()]}
            if method == "POST":
                return self._create_instance(body or {})
            return 404, _error("no such endpoint")
        inst = self.instances.get(rest[0])
        if inst is None or len(rest) != 1:
            return 404, _error("Instance not found")
        if method == "GET":
            return 200, self._instance_view(inst)
        if method == "DELETE":
            del self.instances[rest[0]]
            self.ledger.stop(rest[0])
            self.deleted["instances"].append(rest[0])
            return 200, self._operation("get-instance", rest[0], "instance")
        return 404, _error("no such endpoint")

    def _create_instance(self, body):
        missing = [k for k in ("instance-type", "template", "disk-size") if k not in body]
        if missing:
            return 400, _error("Invalid request: missing %s" % ", ".join(missing))
        itype = next((t for t in self.instance_types if t["id"] == (body["instance-type"] or {}).get("id")), None)
        template = next((t for t in TEMPLATES if t["id"] == (body["template"] or {}).get("id")), None)
        if itype is None or template is None:
            return 400, _error("Invalid request: %s not found" % ("instance type" if itype is None else "template"))
        if not 10 <= int(body["disk-size"]) <= 51200:
            return 400, _error("Invalid request: disk-size must be 10-51200")
        keys = [(k or {}).get("name") for k in body.get("ssh-keys") or []]
        groups = [(g or {}).get("id") for g in body.get("security-groups") or []]
        unknown = [k for k in keys if k not in self.ssh_keys] + [g for g in groups if g not in self.groups]
        if unknown:
            return 400, _error("Invalid request: not found: %s" % ", ".join(map(str, unknown)))
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            return 400, _error("Invalid request: labels must map strings to strings")
        inst_id = str(uuid.uuid4())
        ip = self.config["server_ipv4"] if body.get("public-ip-assignment", "inet4") != "none" else None
        data = {"id": inst_id, "name": body.get("name") or "instance-" + inst_id[:8], "state": "starting",
                "labels": dict(labels), "instance-type": {"id": itype["id"]}, "template": {"id": template["id"]},
                "disk-size": int(body["disk-size"]), "ssh-keys": [{"name": k} for k in keys],
                "security-groups": [{"id": g} for g in groups], "public-ip": ip,
                "public-ip-assignment": body.get("public-ip-assignment", "inet4"),
                "created-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.instances[inst_id] = {"data": data, "running_at": time.time() + float(self.config["running_delay"])}
        type_name = "%s.%s" % (itype["family"], itype["size"])
        self.ledger.start(inst_id, "control", self.price_per_hour_usd(type_name, data["disk-size"]))
        if self.on_instance_create is not None:
            self.on_instance_create(copy.deepcopy(data), [self.ssh_keys[k]["_public_key"] for k in keys])
        return 200, self._operation("get-instance", inst_id, "instance")

    # -------------------------------------------------------------- auth
    def check_signature(self, method, path, query_string, body, header):
        """None when ``header`` signs this request with the fake's key; else why not."""
        if not header or not header.startswith("EXO2-HMAC-SHA256 "):
            return "missing EXO2-HMAC-SHA256 Authorization header"
        fields = {}
        for part in header[len("EXO2-HMAC-SHA256 "):].split(","):
            name, _sep, value = part.partition("=")
            fields[name.strip()] = value
        if fields.get("credential") != self.config["api_key"]:
            return "invalid API key"
        try:
            expires = int(fields.get("expires", ""))
        except ValueError:
            return "invalid expires"
        if expires < time.time():
            return "request expired"
        signed = [a for a in (fields.get("signed-query-args") or "").split(";") if a]
        params = parse_qs(query_string)
        values = "".join(params[a][0] for a in signed if len(params.get(a, [])) == 1)
        message = b"\n".join([("%s %s" % (method, path)).encode("utf-8"), body or b"", values.encode("utf-8"), b"",
                              str(expires).encode("utf-8")])
        expected = base64.standard_b64encode(hmac.new(self.config["api_secret"].encode("utf-8"), message,
                                                      hashlib.sha256).digest()).decode("ascii")
        if not hmac.compare_digest(expected, fields.get("signature") or ""):
            return "invalid request signature"
        if sorted(params) != sorted(signed):
            return "unsigned query arguments"
        return None


class _Handler(JsonHandler):
    def _dispatch(self, method):
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8") or "null")
        except ValueError:
            return self._send(400, _error("Invalid request: invalid JSON"))
        if parts.path.rstrip("/") == "/_control":
            if method == "GET":
                return self._send(200, fake.snapshot())
            try:
                fake.configure(**(body or {}))
            except (TypeError, ValueError) as exc:
                return self._send(400, _error(str(exc)))
            return self._send(200, {"ok": True})
        with fake.lock:
            fake.counters["requests"] += 1
            key = "%s %s" % (method, parts.path)
            fake.counters["paths"][key] = fake.counters["paths"].get(key, 0) + 1
            why = fake.check_signature(method, parts.path, parts.query, raw, self.headers.get("Authorization"))
            if why is not None:
                fake.counters["forbidden"] += 1
                return self._send(403, _error(why))
            if fake.config["fail_next"]:
                injected = fake.config["fail_next"].pop(0)
                status = int(injected.get("status", 503))
                fake.counters["injected"][str(status)] = fake.counters["injected"].get(str(status), 0) + 1
                headers = {}
                if injected.get("retry_after") is not None:
                    headers["Retry-After"] = str(injected["retry_after"])
                return self._send(status, _error("Too many requests" if status == 429 else "Service unavailable"),
                                  headers)
            status, payload = fake.route(method, parts.path, parse_qs(parts.query), body)
        return self._send(status, payload)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    fake = ExoscaleFake(host=args.host, port=args.port).start()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
