#!/usr/bin/env python3
"""A local fake of the Hetzner Cloud API (``/v1``), for tests (never talks to the internet).

Enough for the ``hcloud`` library and the ``hetzner.hcloud`` collection's modules (through
their ``api_endpoint`` option) to create, find and remove a stack's control server, its SSH
key and its firewall, as documented at https://docs.hetzner.cloud/:

- ``GET /v1/server_types`` (``name`` filter, ``page``/``per_page``) and ``/v1/server_types/{id}``:
  ``name, description, cores, memory, disk, architecture, cpu_type, storage_type, category,
  deprecation, locations, prices:[{location, price_hourly:{net, gross}, price_monthly:{...},
  included_traffic, price_per_tb_traffic}]`` with prices as strings (EUR), as the API sends them.
- ``GET /v1/pricing``: ``{"pricing": {currency, vat_rate, primary_ips:[{type, prices:[{location,
  price_hourly, price_monthly}]}], server_types:[{id, name, prices}], ...}}``.
- ``GET /v1/locations`` (and ``/{id}``), ``GET /v1/images`` (``name``, ``architecture``) and
  ``/{id}``.
- ``GET|POST /v1/servers``, ``GET|PUT|DELETE /v1/servers/{id}``: ``POST`` takes ``name,
  server_type, image, location, ssh_keys, firewalls:[{firewall}], labels`` and answers
  ``{"server", "action", "next_actions", "root_password"}``; servers start ``initializing`` and
  are ``running`` once their create_server action has finished (``running_delay``);
  ``POST /v1/servers/{id}/actions/poweron|poweroff|shutdown|reboot``. A deleted server leaves
  its firewalls.
- ``GET|POST /v1/ssh_keys``, ``GET|PUT|DELETE /v1/ssh_keys/{id}`` (``fingerprint`` filter; 409
  ``uniqueness_error`` for a name or a key that exists).
- ``GET|POST /v1/firewalls``, ``GET|PUT|DELETE /v1/firewalls/{id}``, ``POST
  /v1/firewalls/{id}/actions/set_rules|apply_to_resources|remove_from_resources``; a firewall
  still applied to a server cannot be deleted (422 ``resource_in_use``).
- ``GET /v1/actions/{id}``: every action is ``running`` for ``action_delay`` seconds, then
  ``success``.
- ``label_selector`` on every list (``k``, ``!k``, ``k=v``, ``k!=v``, ``k in (a,b)``,
  ``k notin (a,b)``, comma-joined); labels are validated as the API does (422 ``invalid_input``).
- Bearer auth: 401 ``{"error": {"code": "unauthorized", ...}}``; ``fail_next`` injects
  429/5xx answers (``Retry-After`` when given); errors use ``{"error": {code, message, details}}``;
  ``DELETE`` of a key or a firewall answers 204 without a body.

``server_ipv4`` sets the public address handed to created servers (tests: the loopback address
of the podman container that stands for the server). Prices here are test data (shaped like the
real list, not a price source). ``GET|POST /_control`` reads counters / changes settings.

Billing (``GET /_control`` key ``ledger``), as https://docs.hetzner.com/cloud/billing/faq says:
a server bills from its creation until its deletion whatever its status (off included), at its
type's gross hourly price at its location, every partial hour rounded up to a full one, never
more than the monthly price in one calendar month (UTC); its primary IPv4 address the same way on
a line of its own (``GET /v1/pricing`` lists its price), until the server is deleted with it. ``clock_scale`` (provider seconds per
wall second, default ``CODESTACK_CLOCK_SCALE`` or 1) and ``advance_s`` (jump the clock) drive
the billing clock as in the RunPod fake.
Standalone: ``python tests/fakes/hetzner_fake.py --port 8767``.
"""

import argparse
import base64
import binascii
import calendar
import copy
import hashlib
import json
import math
import re
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from _billing import SimClock
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

IMAGES = [
    {"id": 114690387, "name": "debian-12", "description": "Debian 12", "os_flavor": "debian",
     "os_version": "12", "architecture": "x86"},
    {"id": 114690389, "name": "debian-12", "description": "Debian 12", "os_flavor": "debian",
     "os_version": "12", "architecture": "arm"},
    {"id": 161547269, "name": "ubuntu-24.04", "description": "Ubuntu 24.04", "os_flavor": "ubuntu",
     "os_version": "24.04", "architecture": "x86"},
]

DEFAULTS = {
    "api_key": "test-token",
    "running_delay": 0.5,
    # Seconds an action (create_server, delete_server, apply_firewalls, ...) stays "running".
    "action_delay": 0.5,
    # The public IPv4 handed to created servers: TEST-NET-3 by default; a test sets the address
    # of the machine that stands for the server (127.0.0.1 for the podman control host).
    "server_ipv4": None,
    "fail_next": [],
    "server_types": DEFAULT_SERVER_TYPES,
    "clock_scale": None,
    # The primary IPv4 every created server gets (billed on its own line, deleted with the server).
    "primary_ipv4_hourly_net": 0.0008,
    "primary_ipv4_monthly_net": 0.50,
    "vat_rate": 19.0,
}

_LABEL_KEY = re.compile(r"^([a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?/)?[a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?$")
_LABEL_VALUE = re.compile(r"^([a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?)?$")
_SELECTOR = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*(?:(==|=|!=)\s*([^\s,()]*)|\s+(in|notin)\s+\(([^)]*)\))?\s*$")
_NO_CONTENT = object()


def _error(code, message, details=None):
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def bill_server(start, end, hourly, monthly):
    """(billed hours, EUR) of a server that existed from ``start`` to ``end`` (epoch seconds):
    per calendar month (UTC), its partial hours rounded up, at most the monthly price."""
    hours_total, cost = 0, 0.0
    at = start
    while at < end:
        day = time.gmtime(at)
        year, month = (day.tm_year + 1, 1) if day.tm_mon == 12 else (day.tm_year, day.tm_mon + 1)
        boundary = calendar.timegm((year, month, 1, 0, 0, 0))
        seg = min(end, boundary) - at
        hours = int(math.ceil(seg / 3600.0 - 1e-9))
        hours_total += hours
        cost += min(hours * hourly, monthly)
        at = min(end, boundary)
    return hours_total, cost


def _invalid(field, message):
    return 400 if field == "label_selector" else 422, _error(
        "invalid_input", "invalid input in field '%s'" % field,
        {"fields": [{"name": field, "messages": [message]}]})


def bad_labels(labels):
    """The message the API gives for labels it refuses, or None (keys and values as documented:
    up to 63 characters of alphanumerics, '-', '_' and '.', starting and ending alphanumeric)."""
    if labels is None:
        return None
    if not isinstance(labels, dict):
        return "labels must be an object"
    for key, value in labels.items():
        if not _LABEL_KEY.match(str(key)) or not isinstance(value, str) or not _LABEL_VALUE.match(value):
            return "invalid label %s=%s" % (key, value)
    return None


def parse_selector(text):
    """A label selector (``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
    ``k notin (a,b)``, joined by commas) as a predicate on a labels dict; ValueError if bad."""
    terms = []
    depth, current = 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    checks = []
    for term in terms:
        match = _SELECTOR.match(term)
        if not match:
            raise ValueError("invalid label selector term %r" % term)
        negate, key, op, value, set_op, values = match.groups()
        if negate and (op or set_op):
            raise ValueError("invalid label selector term %r" % term)
        if set_op:
            members = set(v.strip() for v in values.split(",") if v.strip())
            checks.append(lambda labels, k=key, m=members, o=set_op: (k in labels and labels[k] in m) == (o == "in"))
        elif op == "!=":
            checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif op:
            checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif negate:
            checks.append(lambda labels, k=key: k not in labels)
        else:
            checks.append(lambda labels, k=key: k in labels)
    return lambda labels: all(check(labels or {}) for check in checks)


def _fingerprint(public_key):
    """The MD5 fingerprint the API shows (colon-separated hex of the key's base64 blob)."""
    parts = str(public_key).split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise ValueError("invalid public key")
    try:
        blob = base64.b64decode(parts[1].encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("invalid public key")
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324  (the API's own fingerprint format)
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


RULE_PROTOCOLS = ("tcp", "udp", "icmp", "esp", "gre")


def bad_rules(rules):
    """The message the API gives for firewall rules it refuses, or None."""
    if not isinstance(rules, list):
        return "rules must be a list"
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("direction") not in ("in", "out"):
            return "direction must be in or out"
        if rule.get("protocol") not in RULE_PROTOCOLS:
            return "protocol must be one of %s" % ", ".join(RULE_PROTOCOLS)
        if rule["protocol"] in ("tcp", "udp") and not rule.get("port"):
            return "port is required for protocol %s" % rule["protocol"]
        if rule["protocol"] not in ("tcp", "udp") and rule.get("port"):
            return "port is not allowed for protocol %s" % rule["protocol"]
        ips = rule.get("source_ips") if rule["direction"] == "in" else rule.get("destination_ips")
        if not ips:
            return "%s is required for direction %s" % (
                "source_ips" if rule["direction"] == "in" else "destination_ips", rule["direction"])
    return None


class HetznerFake:
    """The fake API. Thread-safe; use as a context manager or start()/stop().

    ``on_server_create(server, public_keys)``, when given, runs as a server is created with the
    public keys it was given (what cloud-init does on the real machine): a test installs them
    on the machine that stands for the server.
    """

    def __init__(self, host="127.0.0.1", port=0, on_server_create=None, **config):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.config = copy.deepcopy(DEFAULTS)
        self.servers = {}
        self.ssh_keys = {}
        self.firewalls = {}
        self.actions = {}
        self.deleted = {"servers": [], "ssh_keys": [], "firewalls": []}
        self.next_id = 5000001
        self.on_server_create = on_server_create
        self.counters = {"requests": 0, "unauthorized": 0, "injected": {}, "paths": {}}
        self.clock = SimClock(config.pop("clock_scale", None))
        # one row per server ever created: {id, name, server_type, location, start, end}
        self.billing = []
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
            if config.get("clock_scale") is not None:
                self.clock.set_scale(config.pop("clock_scale"))
            advance = config.pop("advance_s", None)
            if advance:
                self.clock.advance(float(advance))
            for key, value in config.items():
                if key not in DEFAULTS:
                    raise ValueError("unknown fake setting %r" % key)
                self.config[key] = copy.deepcopy(value)

    def snapshot(self):
        with self.lock:
            return {"servers": [self._server_view(s) for s in self.servers.values()],
                    "live_servers": len(self.servers),
                    "ssh_keys": [copy.deepcopy(k) for k in self.ssh_keys.values()],
                    "firewalls": [self._firewall_view(f) for f in self.firewalls.values()],
                    "deleted": copy.deepcopy(self.deleted),
                    "counters": copy.deepcopy(self.counters),
                    "ledger": self.ledger()}

    def ledger(self):
        """What each server is billed up to now (EUR, gross) and the total."""
        with self.lock:
            now = self.clock.now()
            rows = []
            for row in self.billing:
                end = row["end"] if row["end"] is not None else now
                hours, cost = bill_server(row["start"], end, row["hourly"], row["monthly"])
                rows.append({"id": row["id"], "name": row["name"], "server_type": row["server_type"],
                             "location": row["location"], "live": row["end"] is None,
                             "seconds": round(end - row["start"], 3), "billed_hours": hours,
                             "cost_eur": round(cost, 6)})
            return {"currency": "EUR", "servers": rows,
                    "total_eur": round(sum(r["cost_eur"] for r in rows), 6)}

    # -------------------------------------------------------------- model
    def _new_id(self):
        value = self.next_id
        self.next_id += 1
        return value

    def _server_view(self, server):
        status = server["status"]
        if status == "initializing" and time.time() >= server["ready_at"]:
            status = server["status"] = "running"
        data = dict(server["data"], status=status)
        data["public_net"] = dict(data["public_net"], firewalls=[
            {"id": fw_id, "status": "applied"} for fw_id, fw in sorted(self.firewalls.items())
            if server["data"]["id"] in fw["servers"]])
        return data

    def _firewall_view(self, firewall):
        data = copy.deepcopy(firewall["data"])
        data["applied_to"] = [{"type": "server", "server": {"id": sid}} for sid in sorted(firewall["servers"])]
        return data

    def _action(self, command, resources, seconds=None):
        """A new action, running for ``action_delay`` seconds (GET /v1/actions/{id} polls it)."""
        action_id = self._new_id()
        seconds = float(self.config["action_delay"]) if seconds is None else seconds
        self.actions[action_id] = {"id": action_id, "command": command, "started": _now(),
                                   "resources": [{"id": rid, "type": kind} for kind, rid in resources],
                                   "error": None, "done_at": time.time() + seconds}
        return self._action_view(self.actions[action_id])

    @staticmethod
    def _action_view(action):
        done = time.time() >= action["done_at"]
        view = dict((k, v) for k, v in action.items() if k != "done_at")
        view.update(status="success" if done else "running", progress=100 if done else 50,
                    finished=_now() if done else None)
        return view

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

    def _listing(self, items, key, query):
        """GET on a collection: the ``name`` and ``label_selector`` filters, then a page."""
        name = query.get("name", [None])[0]
        if name:
            items = [i for i in items if i.get("name") == name]
        selector = query.get("label_selector", [None])[0]
        if selector:
            try:
                matches = parse_selector(selector)
            except ValueError as exc:
                return _invalid("label_selector", str(exc))
            items = [i for i in items if matches(i.get("labels"))]
        return self._page(items, key, query)

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
        if resource == "pricing" and method == "GET" and not rest:
            return 200, {"pricing": self._pricing()}
        if resource == "locations" and method == "GET":
            if rest:
                match = [loc for loc in LOCATIONS if str(loc["id"]) == rest[0]]
                if not match:
                    return 404, _error("not_found", "location not found")
                return 200, {"location": match[0]}
            items = [loc for loc in LOCATIONS if not name or loc["name"] == name]
            return self._page(items, "locations", query)
        if resource == "images" and method == "GET":
            return self._images(rest, query)
        if resource == "actions" and method == "GET" and rest:
            action = self.actions.get(int(rest[0])) if rest[0].isdigit() else None
            if action is None:
                return 404, _error("not_found", "action with ID '%s' not found" % rest[0])
            return 200, {"action": self._action_view(action)}
        if resource == "servers":
            return self._servers(method, rest, query, body)
        if resource == "ssh_keys":
            return self._ssh_keys(method, rest, query, body)
        if resource == "firewalls":
            return self._firewalls(method, rest, query, body)
        return 404, _error("not_found", "no such path")

    def _pricing(self):
        """``GET /v1/pricing``: the project's price list (strings, EUR, net and gross)."""
        vat = float(self.config["vat_rate"])
        ipv4 = [_price(loc["name"], self.config["primary_ipv4_hourly_net"],
                       self.config["primary_ipv4_monthly_net"], vat / 100.0) for loc in LOCATIONS]
        for price in ipv4:
            del price["included_traffic"], price["price_per_tb_traffic"]
        return {
            "currency": "EUR", "vat_rate": "%.2f" % vat,
            "primary_ips": [{"type": "ipv4", "prices": ipv4},
                            {"type": "ipv6", "prices": [dict(p, price_hourly={"net": "0.0000000000", "gross": "0.0000000000"},
                                                             price_monthly={"net": "0.0000000000", "gross": "0.0000000000"})
                                                        for p in ipv4]}],
            "server_types": [{"id": t["id"], "name": t["name"], "prices": t["prices"]}
                             for t in self.config["server_types"]],
            "image": {"price_per_gb_month": {"net": "0.0110000000", "gross": "0.0130900000"}},
            "volume": {"price_per_gb_month": {"net": "0.0440000000", "gross": "0.0523600000"}},
            "server_backup": {"percentage": "20.00"},
            "load_balancer_types": [],
        }

    def _images(self, rest, query):
        images = [dict(i, type="system", status="available", deprecated=None, deleted=None,
                       created="2023-06-13T06:00:02+00:00", labels={}, rapid_deploy=True,
                       image_size=None, disk_size=5, bound_to=None, created_from=None,
                       protection={"delete": False}) for i in IMAGES]
        if rest:
            match = [i for i in images if str(i["id"]) == rest[0]]
            if not match:
                return 404, _error("not_found", "image with ID '%s' not found" % rest[0])
            return 200, {"image": match[0]}
        arch = query.get("architecture", [None])[0]
        if arch:
            images = [i for i in images if i["architecture"] == arch]
        return self._listing(images, "images", query)

    def _servers(self, method, rest, query, body):
        if not rest and method == "GET":
            items = [self._server_view(s) for s in sorted(self.servers.values(), key=lambda s: s["data"]["id"])]
            return self._listing(items, "servers", query)
        if not rest and method == "POST":
            return self._create(body or {})
        server = self.servers.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if server is None:
            return 404, _error("not_found", "server with ID '%s' not found" % (rest[0] if rest else ""))
        server_id = server["data"]["id"]
        if len(rest) == 3 and rest[1] == "actions" and method == "POST":
            return self._server_action(server, rest[2])
        if len(rest) > 1:
            return 404, _error("not_found", "no such path")
        if method == "GET":
            return 200, {"server": self._server_view(server)}
        if method == "PUT":
            body = body or {}
            problem = bad_labels(body.get("labels"))
            if problem:
                return _invalid("labels", problem)
            for key in ("name", "labels"):
                if key in body:
                    server["data"][key] = body[key]
            return 200, {"server": self._server_view(server)}
        if method == "DELETE":
            if server["data"]["protection"]["delete"]:
                return 423, _error("protected", "server is delete protected")
            del self.servers[server_id]
            self.deleted["servers"].append(server_id)
            for row in self.billing:
                if row["id"] == server_id and row["end"] is None:
                    row["end"] = self.clock.now()
            # A deleted server leaves the firewalls it was in (the API removes the application).
            for firewall in self.firewalls.values():
                firewall["servers"].discard(server_id)
            return 200, {"action": self._action("delete_server", [("server", server_id)])}
        return 405, _error("method_not_allowed", "method not allowed")

    def _create(self, body):
        missing = [k for k in ("name", "server_type", "image") if not body.get(k)]
        if missing:
            return 422, _error("invalid_input", "invalid input in fields %s" % ", ".join(missing),
                               {"fields": [{"name": k, "messages": ["Missing data for required field."]}
                                           for k in missing]})
        problem = bad_labels(body.get("labels"))
        if problem:
            return _invalid("labels", problem)
        stype = next((t for t in self.config["server_types"]
                      if body["server_type"] in (t["name"], t["id"], str(t["id"]))), None)
        if stype is None:
            return 422, _error("invalid_input", "server type %s not found" % body["server_type"])
        image = next((i for i in IMAGES if body["image"] in (i["name"], i["id"], str(i["id"]))
                      and i["architecture"] == stype["architecture"]), None)
        if image is None:
            return 422, _error("invalid_input", "image %s not found" % body["image"])
        if any(s["data"]["name"] == body["name"] for s in self.servers.values()):
            return 409, _error("uniqueness_error", "server name is already used")
        keys = []
        for ref in body.get("ssh_keys") or []:
            key = next((k for k in self.ssh_keys.values() if ref in (k["name"], k["id"], str(k["id"]))), None)
            if key is None:
                return 422, _error("invalid_input", "ssh key %s not found" % ref)
            keys.append(key)
        firewall_ids = []
        for ref in body.get("firewalls") or []:
            fw_id = ref.get("firewall") if isinstance(ref, dict) else None
            if fw_id not in self.firewalls:
                return 422, _error("invalid_input", "firewall %s not found" % fw_id)
            firewall_ids.append(fw_id)
        location_name = body.get("location") or "fsn1"
        location = next((loc for loc in LOCATIONS if location_name in (loc["name"], loc["id"], str(loc["id"]))), None)
        if location is None:
            return 422, _error("invalid_input", "location %s not found" % location_name)
        server_id = self._new_id()
        address = self.config["server_ipv4"] or "203.0.113.%d" % (server_id % 250 + 1)
        data = {
            "id": server_id, "name": body["name"], "server_type": stype,
            "image": dict(image, type="system", status="available", deprecated=None),
            "datacenter": {"id": location["id"], "name": location["name"] + "-dc14",
                           "description": location["description"], "location": location,
                           "server_types": {"supported": [], "available": [], "available_for_migration": []}},
            "public_net": {"ipv4": {"id": server_id, "ip": address, "blocked": False,
                                    "dns_ptr": "static.example"},
                           "ipv6": None, "floating_ips": [], "firewalls": []},
            "private_net": [], "labels": body.get("labels") or {},
            "created": _now(),
            "protection": {"delete": False, "rebuild": False}, "volumes": [],
            "included_traffic": stype["included_traffic"], "outgoing_traffic": 0,
            "ingoing_traffic": 0, "primary_disk_size": stype["disk"], "rescue_enabled": False,
            "locked": False, "backup_window": None, "iso": None, "load_balancers": [],
            "placement_group": None,
        }
        # Running once its create_server action has finished (the API starts it after creating).
        boot = max(float(self.config["running_delay"]), float(self.config["action_delay"]))
        self.servers[server_id] = {"data": data, "created_at": time.time(), "status": "initializing",
                                   "ready_at": time.time() + boot}
        for fw_id in firewall_ids:
            self.firewalls[fw_id]["servers"].add(server_id)
        price = next(p for p in stype["prices"] if p["location"] == location["name"])
        address = next(p for p in self._pricing()["primary_ips"][0]["prices"] if p["location"] == location["name"])
        now = self.clock.now()
        self.billing.append({"id": server_id, "name": body["name"], "server_type": stype["name"],
                             "location": location["name"], "start": now, "end": None,
                             "hourly": float(price["price_hourly"]["gross"]),
                             "monthly": float(price["price_monthly"]["gross"])})
        self.billing.append({"id": server_id, "name": body["name"], "server_type": "primary_ipv4",
                             "location": location["name"], "start": now, "end": None,
                             "hourly": float(address["price_hourly"]["gross"]),
                             "monthly": float(address["price_monthly"]["gross"])})
        if self.on_server_create is not None:
            self.on_server_create(copy.deepcopy(data), [k["public_key"] for k in keys])
        next_actions = [self._action("apply_firewall", [("server", server_id), ("firewall", fw_id)])
                        for fw_id in firewall_ids]
        return 201, {"server": self._server_view(self.servers[server_id]),
                     "action": self._action("create_server", [("server", server_id)], boot),
                     "next_actions": next_actions,
                     "root_password": None if keys else "fake-root-password"}

    def _server_action(self, server, name):
        """poweron, poweroff, shutdown, reboot: the status the action leads to (at once)."""
        status = {"poweron": "running", "poweroff": "off", "shutdown": "off", "reboot": "running",
                  "reset": "running"}.get(name)
        if status is None:
            return 404, _error("not_found", "no such action")
        self._server_view(server)
        if server["status"] == "initializing":
            return 423, _error("locked", "server is locked by another action")
        server["status"] = status
        return 201, {"action": self._action("start_server" if status == "running" and name == "poweron" else
                                            "stop_server" if status == "off" else name,
                                            [("server", server["data"]["id"])])}

    def _ssh_keys(self, method, rest, query, body):
        if not rest and method == "GET":
            items = [copy.deepcopy(k) for _i, k in sorted(self.ssh_keys.items())]
            fingerprint = query.get("fingerprint", [None])[0]
            if fingerprint:
                items = [k for k in items if k["fingerprint"] == fingerprint]
            return self._listing(items, "ssh_keys", query)
        if not rest and method == "POST":
            body = body or {}
            missing = [k for k in ("name", "public_key") if not body.get(k)]
            if missing:
                return _invalid(missing[0], "Missing data for required field.")
            problem = bad_labels(body.get("labels"))
            if problem:
                return _invalid("labels", problem)
            try:
                fingerprint = _fingerprint(body["public_key"])
            except ValueError as exc:
                return _invalid("public_key", str(exc))
            if any(k["name"] == body["name"] for k in self.ssh_keys.values()):
                return 409, _error("uniqueness_error", "SSH key with the same name already exists",
                                   {"fields": [{"name": "name"}]})
            if any(k["fingerprint"] == fingerprint for k in self.ssh_keys.values()):
                return 409, _error("uniqueness_error", "SSH key with the same fingerprint already exists",
                                   {"fields": [{"name": "public_key"}]})
            key_id = self._new_id()
            self.ssh_keys[key_id] = {"id": key_id, "name": body["name"], "fingerprint": fingerprint,
                                     "public_key": body["public_key"].strip(), "labels": body.get("labels") or {},
                                     "created": _now()}
            return 201, {"ssh_key": copy.deepcopy(self.ssh_keys[key_id])}
        key = self.ssh_keys.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if key is None or len(rest) > 1:
            return 404, _error("not_found", "SSH key with ID '%s' not found" % (rest[0] if rest else ""))
        if method == "GET":
            return 200, {"ssh_key": copy.deepcopy(key)}
        if method == "PUT":
            body = body or {}
            problem = bad_labels(body.get("labels"))
            if problem:
                return _invalid("labels", problem)
            for field in ("name", "labels"):
                if field in body:
                    key[field] = body[field]
            return 200, {"ssh_key": copy.deepcopy(key)}
        if method == "DELETE":
            del self.ssh_keys[key["id"]]
            self.deleted["ssh_keys"].append(key["id"])
            return 204, _NO_CONTENT
        return 405, _error("method_not_allowed", "method not allowed")

    def _firewalls(self, method, rest, query, body):
        body = body or {}
        if not rest and method == "GET":
            items = [self._firewall_view(f) for _i, f in sorted(self.firewalls.items())]
            return self._listing(items, "firewalls", query)
        if not rest and method == "POST":
            if not body.get("name"):
                return _invalid("name", "Missing data for required field.")
            problem = bad_labels(body.get("labels"))
            if problem:
                return _invalid("labels", problem)
            problem = bad_rules(body.get("rules") or [])
            if problem:
                return _invalid("rules", problem)
            if any(f["data"]["name"] == body["name"] for f in self.firewalls.values()):
                return 409, _error("uniqueness_error", "firewall with the same name already exists")
            fw_id = self._new_id()
            self.firewalls[fw_id] = {"servers": set(), "data": {
                "id": fw_id, "name": body["name"], "labels": body.get("labels") or {},
                "rules": [self._rule(r) for r in body.get("rules") or []], "created": _now()}}
            actions = [self._action("set_firewall_rules", [("firewall", fw_id)])]
            for target in body.get("apply_to") or []:
                server_id = ((target or {}).get("server") or {}).get("id")
                if server_id not in self.servers:
                    return 422, _error("invalid_input", "server %s not found" % server_id)
                self.firewalls[fw_id]["servers"].add(server_id)
                actions.append(self._action("apply_firewall", [("server", server_id), ("firewall", fw_id)]))
            return 201, {"firewall": self._firewall_view(self.firewalls[fw_id]), "actions": actions}
        firewall = self.firewalls.get(int(rest[0])) if rest and rest[0].isdigit() else None
        if firewall is None:
            return 404, _error("not_found", "firewall with ID '%s' not found" % (rest[0] if rest else ""))
        fw_id = firewall["data"]["id"]
        if len(rest) == 3 and rest[1] == "actions" and method == "POST":
            return self._firewall_action(firewall, rest[2], body)
        if len(rest) > 1:
            return 404, _error("not_found", "no such path")
        if method == "GET":
            return 200, {"firewall": self._firewall_view(firewall)}
        if method == "PUT":
            problem = bad_labels(body.get("labels"))
            if problem:
                return _invalid("labels", problem)
            for field in ("name", "labels"):
                if field in body:
                    firewall["data"][field] = body[field]
            return 200, {"firewall": self._firewall_view(firewall)}
        if method == "DELETE":
            if firewall["servers"]:
                return 422, _error("resource_in_use", "firewall with ID '%d' is still in use" % fw_id)
            del self.firewalls[fw_id]
            self.deleted["firewalls"].append(fw_id)
            return 204, _NO_CONTENT
        return 405, _error("method_not_allowed", "method not allowed")

    @staticmethod
    def _rule(rule):
        return {"direction": rule["direction"], "protocol": rule["protocol"], "port": rule.get("port"),
                "source_ips": list(rule.get("source_ips") or []),
                "destination_ips": list(rule.get("destination_ips") or []),
                "description": rule.get("description")}

    def _firewall_action(self, firewall, name, body):
        fw_id = firewall["data"]["id"]
        if name == "set_rules":
            problem = bad_rules(body.get("rules") or [])
            if problem:
                return _invalid("rules", problem)
            firewall["data"]["rules"] = [self._rule(r) for r in body.get("rules") or []]
            return 201, {"actions": [self._action("set_firewall_rules", [("firewall", fw_id)])]}
        if name in ("apply_to_resources", "remove_from_resources"):
            actions = []
            for target in body.get("apply_to" if name == "apply_to_resources" else "remove_from") or []:
                server_id = ((target or {}).get("server") or {}).get("id")
                if server_id not in self.servers:
                    return 422, _error("invalid_input", "server %s not found" % server_id)
                if name == "apply_to_resources":
                    if server_id in firewall["servers"]:
                        return 422, _error("firewall_already_applied", "firewall already applied to server")
                    firewall["servers"].add(server_id)
                elif server_id not in firewall["servers"]:
                    return 422, _error("firewall_already_removed", "firewall not applied to server")
                else:
                    firewall["servers"].discard(server_id)
                actions.append(self._action("apply_firewall" if name == "apply_to_resources" else "remove_firewall",
                                            [("server", server_id), ("firewall", fw_id)]))
            return 201, {"actions": actions}
        return 404, _error("not_found", "no such action")


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
        if payload is _NO_CONTENT:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
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
