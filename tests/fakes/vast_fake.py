#!/usr/bin/env python3
"""A local fake of the Vast.ai REST API, for tests (never talks to the internet).

Follows the wire format in ``shared/provider-apis.md`` and what the official ``vastai`` client
sends (point it here with ``VAST_URL``):

- ``POST /api/v0/bundles/``: offer search. Every key of the body except ``order``, ``limit``,
  ``type`` and the client's pricing hints (``allocated_storage`` ...) is a field filter
  ``{"op": value}`` with ``eq neq gt gte lt lte in nin notin``; ``order`` is
  ``[[field, "asc"|"desc"], ...]``; ``type`` is ``on-demand``, ``bid`` or ``reserved``.
  ``geolocation`` filters also match the country code after the comma ("Oslo, NO" is in
  ``["NO"]``). Offers rented by an instance are ``rented: true`` (and ``rentable: false``).
- ``PUT /api/v0/asks/{offer_id}/``: rent an offer. A ``price`` makes an interruptible bid.
  Answers ``{"success": true, "new_contract": id}``; a rented or unknown offer answers
  ``{"success": false, "error": "no_such_ask", "msg": "Instance type by id N is not available."}``.
- ``GET /api/v0/instances/{id}/?owner=me`` → ``{"instances": {...}}`` (``null`` when unknown);
  ``GET /api/v0/instances/`` (old list) and ``GET /api/v1/instances/`` (paginated: ``limit``,
  ``after_token``, ``select_filters``, ``order_by``; JSON-encoded query values as the client
  sends them) → ``{"instances", "next_token", "total_instances"}``.
- ``PUT /api/v0/instances/{id}/`` with ``{"label"}`` or ``{"state": "running"|"stopped"}``;
  ``DELETE /api/v0/instances/{id}/``; unknown ids answer 404 ``no_such_instance``. The bulk
  forms (``/api/v0/instances/`` with ``ids`` / ``instance_ids``) work too.
- Bearer auth (401 ``{"success": false, "error": "auth_error"}`` on a wrong key).

State machine: a new (or restarted) instance is ``created`` for ``created_delay`` seconds,
``loading`` for ``running_delay`` seconds, then ``running`` with ``public_ipaddr`` and its port
mappings (env keys ``-p HOST:CONTAINER`` expose ports, as on Vast).

Behaviour switchable per test (constructor keywords, :meth:`VastFake.configure`, or
``POST /_control`` with the same keys as JSON):

- ``created_delay`` / ``running_delay``: seconds per phase (``delay_by_image`` per image).
- ``never_running`` / ``never_running_images``: instances stay ``loading`` forever.
- ``steal_offers``: offer ids rented by "someone else" right after they were found, i.e. the
  next create on them fails as the real API does (capacity).
- ``fail_next``: ``[{"status": 429|500|502|503|504, "retry_after": s, "path": "/api/..."}]``
  consumed by the next matching API requests (rate limiting, 5xx injection).
- ``preempt``: an instance id or ``"all"``: running bid instances are outbid (``actual_status``
  ``exited`` while ``intended_status`` stays ``running``); ``preempt_after``: seconds after
  reaching running at which bid instances get outbid automatically (null: never).
- ``offers``: replace the offer table; ``api_key``: the accepted bearer key.
- ``clock_scale``: provider seconds per wall second (default: ``CODESTACK_CLOCK_SCALE`` or 1;
  see _billing.py): billing and every delay above run on that clock.
- ``resume_delay``: seconds a restarted (``{"state": "running"}``) instance loads before its
  ports answer (null: ``running_delay``).
- ``catalog_prices``: a catalog directory (or true: the collection's ``catalog/``): every
  offer's ``dph_total`` becomes ``num_gpus`` times the catalog's on-demand price for its GPU
  (the offer of its country, else the dearest for any region), ``min_bid`` its bid price and
  ``storage_cost`` its ``scaling`` entry's, so the ledger bills what the plan was priced at.
- ``advance_s``: jump the clock forward (a gap in which nothing runs, billed as it stands).

Billing ledger (``GET /_control`` key ``ledger``; _billing.py), as Vast.ai bills: per second at
``dph_total`` (storage included) while the instance runs, ``disk`` GB times the offer's
``storage_cost`` (USD per GB-month) while it is stopped, nothing after ``DELETE``. ``events``
logs created/stopped/started/destroyed.

``GET /_control`` returns live instances, counters, request times and the accumulated running
cost (USD, ``dph_total`` times running seconds) for teardown tests.

Standalone: ``python tests/fakes/vast_fake.py --port 8766 [--api-key KEY]``.
"""

import argparse
import copy
import json
import os
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import _workload
from _billing import HOURS_PER_MONTH, Ledger, SimClock, catalog_offers, catalog_price
from _fakehttp import JsonHandler

OUTBID_MESSAGE = "Instance stopped: outbid by a higher bid (interruptible instance preempted)"

DEFAULT_OFFERS = [
    {"id": 1001, "machine_id": 501, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564,
     "dph_total": 0.42, "min_bid": 0.28, "storage_cost": 0.15, "reliability": 0.995,
     "verified": True, "inet_down": 850.0, "cuda_max_good": 12.4,
     "geolocation": "Oslo, NO", "cpu_cores_effective": 16, "cpu_ram": 64000,
     "disk_space": 200.0, "score": 210.0},
    {"id": 1002, "machine_id": 502, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564,
     "dph_total": 0.35, "min_bid": 0.22, "storage_cost": 0.2, "reliability": 0.97,
     "verified": True, "inet_down": 500.0, "cuda_max_good": 12.2,
     "geolocation": "Warsaw, PL", "cpu_cores_effective": 12, "cpu_ram": 48000,
     "disk_space": 150.0, "score": 190.0},
    {"id": 1003, "machine_id": 503, "gpu_name": "RTX 4090", "num_gpus": 2, "gpu_ram": 24564,
     "dph_total": 0.80, "min_bid": 0.55, "storage_cost": 0.15, "reliability": 0.99,
     "verified": True, "inet_down": 900.0, "cuda_max_good": 12.4,
     "geolocation": "Texas, US", "cpu_cores_effective": 32, "cpu_ram": 128000,
     "disk_space": 400.0, "score": 320.0},
    {"id": 1004, "machine_id": 504, "gpu_name": "RTX 4090", "num_gpus": 1, "gpu_ram": 24564,
     "dph_total": 0.31, "min_bid": 0.19, "storage_cost": 0.1, "reliability": 0.91,
     "verified": False, "inet_down": 200.0, "cuda_max_good": 11.8,
     "geolocation": "Quebec, CA", "cpu_cores_effective": 8, "cpu_ram": 32000,
     "disk_space": 100.0, "score": 120.0},
    {"id": 2001, "machine_id": 601, "gpu_name": "A100 SXM4", "num_gpus": 1, "gpu_ram": 81920,
     "dph_total": 1.10, "min_bid": 0.78, "storage_cost": 0.2, "reliability": 0.998,
     "verified": True, "inet_down": 2000.0, "cuda_max_good": 12.4,
     "geolocation": "Frankfurt, DE", "cpu_cores_effective": 32, "cpu_ram": 256000,
     "disk_space": 500.0, "score": 500.0},
    {"id": 3001, "machine_id": 701, "gpu_name": "H100 SXM", "num_gpus": 1, "gpu_ram": 81559,
     "dph_total": 2.20, "min_bid": 1.85, "storage_cost": 0.25, "reliability": 0.999,
     "verified": True, "inet_down": 5000.0, "cuda_max_good": 12.6,
     "geolocation": "Amsterdam, NL", "cpu_cores_effective": 26, "cpu_ram": 240000,
     "disk_space": 800.0, "score": 900.0},
]

DEFAULTS = {
    "api_key": "test-key",
    "created_delay": 0.5,
    "running_delay": 2.0,
    "delay_by_image": {},
    "never_running": False,
    "never_running_images": [],
    "steal_offers": [],
    "fail_next": [],
    "preempt_after": None,
    "public_ip": "127.0.0.1",
    "offers": DEFAULT_OFFERS,
    # Listen on a free local port for each exposed port of a running instance (its HostPort),
    # relaying to ``upstream``, a real OpenAI-compatible server standing in for the instance's
    # vLLM (see _workload.py). Off: the ports are only reported, as before.
    "serve_ports": False,
    "upstream": None,
    # An instance created with an entrypoint override (run type "args" with "onstart", what
    # gpu_provision sends) runs its container command on this host once it is running, as the
    # real machine would (see _workload.MachineProcess); its public port relays bytes to it.
    # vllm_command: argv standing in for the image's vLLM program (default: the stand-in that
    # relays to ``upstream``; the real CPU build in the slow test); model_dir: local weights for
    # --model; machine_env: extra environment (e.g. VLLM_CPU_KVCACHE_SPACE); machine_dir: where
    # the machines' files go (default: a temporary directory).
    "vllm_command": None,
    "model_dir": None,
    "machine_env": {},
    "machine_dir": None,
    "clock_scale": None,
    "resume_delay": None,
    "catalog_prices": None,
}


def offers_from_catalog(rows, catalog):
    """The offer table at the catalog's prices (see ``catalog_prices``)."""
    offers, scaling = catalog_offers(catalog)
    storage = (scaling.get("vast") or {}).get("storage_stopped_usd_per_gb_month")
    out = []
    for row in rows:
        row = dict(row)
        country = (row.get("geolocation") or "").rpartition(",")[2].strip() or None
        for pricing, field in (("on_demand", "dph_total"), ("bid", "min_bid")):
            price = catalog_price(offers, "vast", row["gpu_name"], pricing, country, row["num_gpus"])
            if price is not None:
                row[field] = round(price * row["num_gpus"], 4)
        if storage is not None:
            row["storage_cost"] = float(storage)
        out.append(row)
    return out


# Body keys of an offer search that are hints to the pricing engine, not field filters.
SEARCH_META = ("order", "limit", "type", "allocated_storage", "disable_bundling",
               "target_reliability", "extra_ids", "has_avx", "gpu_option",
               "show_incompatible", "sort_option", "template_id")


def _coerce(value, arg):
    """Coerce a filter argument to the field's type (the CLI sends numbers as strings)."""
    if isinstance(arg, list):
        return [_coerce(value, a) for a in arg]
    if isinstance(arg, str) and isinstance(value, bool):
        return arg.lower() in ("true", "1", "yes")
    if isinstance(arg, str) and isinstance(value, (int, float)):
        try:
            return float(arg)
        except ValueError:
            return arg
    return arg


def _match(value, op, arg, field):
    arg = _coerce(value, arg)
    if field == "geolocation" and op in ("in", "nin", "notin", "eq", "neq") and value:
        country = value.rsplit(",", 1)[-1].strip()
        candidates = {value, country}
        hit = bool(candidates & set(arg if isinstance(arg, list) else [arg]))
        return hit if op in ("in", "eq") else not hit
    if op == "eq":
        return value == arg
    if op == "neq":
        return value != arg
    if op == "in":
        return value in arg
    if op in ("nin", "notin"):
        return value not in arg
    if value is None:
        return False
    try:
        if op == "gt":
            return value > arg
        if op == "gte":
            return value >= arg
        if op == "lt":
            return value < arg
        if op == "lte":
            return value <= arg
    except TypeError:
        return False
    raise ValueError("unknown operator %r for field %r" % (op, field))


def _filter(rows, filters):
    out = []
    for row in rows:
        ok = True
        for field, ops in filters.items():
            if not isinstance(ops, dict):
                ops = {"eq": ops}
            for op, arg in ops.items():
                if arg is None or arg == "any":  # the client's "field=any" drops a filter
                    continue
                if not _match(row.get(field), op, arg, field):
                    ok = False
        if ok:
            out.append(row)
    return out


def _order(rows, order):
    for field, direction in reversed(order or []):
        rows = sorted(rows, key=lambda r, f=field: (r.get(f) is None, r.get(f)),
                      reverse=str(direction).lower() == "desc")
    return rows


def _ports_from_env(env):
    ports = []
    for key in (env or {}):
        if key.startswith("-p "):
            spec = key[3:].strip()
            container = spec.split(":")[-1]
            if "/" not in container:
                container += "/tcp"
            ports.append(container)
    return ports


class VastFake:
    """The fake API. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(self, host="127.0.0.1", port=0, **config):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.config = copy.deepcopy(DEFAULTS)
        self.instances = {}
        self.rented = set()
        self.next_id = 9000001
        self.destroyed_cost = 0.0
        self.listeners = {}
        self.machines = {}
        self.boot_log = []
        self.counters = {"requests": 0, "unauthorized": 0, "injected": {}, "operations": {},
                         "capacity_failures": 0}
        self.request_times = []
        self.request_log = []
        self.events = []
        self.clock = SimClock(config.pop("clock_scale", None))
        self.ledger = Ledger(self.clock)
        self.configure(**config)
        self._server = None
        self._thread = None

    # -------------------------------------------------------------- lifecycle
    def start(self):
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        with self.lock:
            listeners, self.listeners = list(self.listeners.values()), {}
            machines, self.machines = list(self.machines.values()), {}
        for listener in listeners:
            listener.close()
        for machine in machines:
            machine.stop()
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
        return "http://%s:%d" % (self.host, self.port)

    # -------------------------------------------------------------- control
    def configure(self, **config):
        with self.lock:
            preempt = config.pop("preempt", None)
            scale = config.pop("clock_scale", None)
            if scale is not None:
                self.clock.set_scale(scale)
                self.config["clock_scale"] = self.clock.scale
            advance = config.pop("advance_s", None)
            if advance:
                self.clock.advance(advance)
            for key, value in config.items():
                if key not in DEFAULTS:
                    raise ValueError("unknown fake setting %r" % key)
                self.config[key] = copy.deepcopy(value)
            if config.get("catalog_prices"):
                self.config["offers"] = offers_from_catalog(self.config["offers"],
                                                            config["catalog_prices"])
            if preempt:
                self.preempt(preempt)

    def preempt(self, instance_id="all"):
        """Outbid running bid instances (one id or ``"all"``). Returns the ids preempted."""
        done = []
        with self.lock:
            now = self.clock.now()
            for inst in self.instances.values():
                if not inst["is_bid"] or self._phase(inst, now) not in ("running", "loading", "created"):
                    continue
                if instance_id in ("all", inst["id"], str(inst["id"])):
                    self._outbid(inst, now)
                    done.append(inst["id"])
        return done

    def _outbid(self, inst, now):
        self._account(inst, now)
        self._halt(inst)
        inst["stopped"] = True
        self._bill_stopped(inst, now)
        inst["preempted"] = True
        inst["status_msg"] = OUTBID_MESSAGE
        # intended_status stays "running": the user wants it, the market took it.

    def snapshot(self):
        """Live resources, counters and cost, as returned by ``GET /_control``."""
        with self.lock:
            now = self.clock.now()
            views = []
            live_cost = 0.0
            for inst in self.instances.values():
                self._tick(inst, now)
                view = self._view(inst, now)
                cost = inst["cost_accum"] + self._running_seconds(inst, now) * inst["dph_total"] / 3600.0
                live_cost += cost
                view["accumulated_cost_usd"] = round(cost, 6)
                view["preempted"] = inst["preempted"]  # fake-only: Vast has no such field
                machine = self.machines.get(inst["id"])
                view["boots"] = copy.deepcopy(inst["boots"])  # fake-only: what each start ran
                view["machine_log"] = machine.log_tail() if machine is not None else []
                view["machine_running"] = machine is not None and machine.running()
                views.append(view)
            return {
                "instances": views,
                "live_instances": len(views),
                "rented_offers": sorted(self.rented),
                "dph_running": round(sum(v["dph_total"] for v in views
                                         if v["actual_status"] == "running"), 6),
                "accumulated_cost_usd": round(live_cost + self.destroyed_cost, 6),
                "counters": copy.deepcopy(self.counters),
                "request_times": list(self.request_times),
                "request_log": list(self.request_log),
                "boots": copy.deepcopy(self.boot_log),  # every container start, destroyed ones too
                "events": list(self.events),
                "ledger": self.ledger.view(),
                "clock_scale": self.clock.scale,
            }

    # -------------------------------------------------------------- model
    def _count(self, op):
        ops = self.counters["operations"]
        ops[op] = ops.get(op, 0) + 1

    def _bill_stopped(self, inst, now):
        rate = float(inst["disk"] or 0) * float(inst["offer"].get("storage_cost") or 0) / HOURS_PER_MONTH
        self.ledger.start(inst["id"], "storage", rate, now)
        self.events.append({"event": "stopped", "instance": inst["id"], "at": now})

    def _delay(self, inst):
        if inst.get("resumed") and self.config["resume_delay"] is not None:
            return self.config["resume_delay"]
        return self.config["delay_by_image"].get(inst["image"], self.config["running_delay"])

    def _never(self, inst):
        return self.config["never_running"] or inst["image"] in self.config["never_running_images"]

    def _phase(self, inst, now):
        if inst["stopped"]:
            return "exited"
        age = now - inst["started_at"]
        if age < inst["created_phase"]:
            return "created"
        if self._never(inst) or age < inst["created_phase"] + self._delay(inst):
            return "loading"
        return "running"

    def _listener(self, inst_id):
        """The local port that serves an instance's model port (one per instance)."""
        listener = self.listeners.get(inst_id)
        if listener is None and self.instances[inst_id].get("entrypoint"):
            model_port = int(self.instances[inst_id]["ports"][0].split("/")[0])

            def target():
                with self.lock:
                    # The machine boots its container when it runs, whether or not anyone reads
                    # the instance through the API (a restarted instance too).
                    inst = self.instances.get(inst_id)
                    if inst is not None and self._phase(inst, self.clock.now()) == "running":
                        self._boot(inst)
                    machine = self.machines.get(inst_id)
                    return machine.target(model_port) if machine is not None and machine.running() else None
            listener = self.listeners[inst_id] = _workload.TcpForward(self.host, target)
        elif listener is None:
            def describe():
                with self.lock:
                    inst = self.instances.get(inst_id)
                    running = inst is not None and self._phase(inst, self.clock.now()) == "running"
                    api_key = _workload.env_value(inst["env"], "VLLM_API_KEY") if inst else None
                    name = _workload.served_model_name(inst["args"], inst["label"]) if inst else ""
                    return running, self.config["upstream"], api_key, name
            listener = self.listeners[inst_id] = _workload.PortServer(self.host, describe)
        return listener

    def _boot(self, inst):
        """Run the container command of a running instance that has one (once per start)."""
        if not (self.config["serve_ports"] and inst.get("entrypoint")) or inst["id"] in self.machines:
            return
        listener = self._listener(inst["id"])
        root = self.config["machine_dir"] or tempfile.mkdtemp(prefix="vast-fake-machines-")
        self.config["machine_dir"] = root
        machine = _workload.MachineProcess(
            os.path.join(root, "%d-%d" % (inst["id"], len(inst["boots"]))), inst["entrypoint"],
            inst["args"], inst["env"], self.config["public_ip"],
            dict((int(spec.split("/")[0]), listener.port) for spec in inst["ports"]),
            vllm_command=self.config["vllm_command"], model_dir=self.config["model_dir"],
            upstream=self.config["upstream"], extra_env=self.config["machine_env"])
        self.machines[inst["id"]] = machine
        boot = {"instance": inst["id"], "argv": machine.argv, "substitutions": machine.substitutions,
                "log": machine.log_path, "entrypoint": inst["entrypoint"], "args": list(inst["args"] or [])}
        inst["boots"].append(boot)
        self.boot_log.append(boot)
        machine.start()

    def _halt(self, inst):
        machine = self.machines.pop(inst["id"], None)
        if machine is not None:
            machine.stop()

    def _tick(self, inst, now):
        """Automatic preemption of bid instances after ``preempt_after`` seconds of running."""
        after = self.config["preempt_after"]
        if after is None or not inst["is_bid"] or inst["stopped"]:
            return
        run_from = inst["started_at"] + inst["created_phase"] + self._delay(inst)
        if not self._never(inst) and now >= run_from + float(after):
            self._outbid(inst, run_from + float(after))

    def _running_seconds(self, inst, now):
        if inst["stopped"]:
            return 0.0
        return max(0.0, now - inst["started_at"])

    def _account(self, inst, now):
        inst["cost_accum"] += self._running_seconds(inst, now) * inst["dph_total"] / 3600.0
        inst["started_at"] = now

    def _view(self, inst, now):
        phase = self._phase(inst, now)
        running = phase == "running"
        ports = {}
        if running:
            self._boot(inst)
            base = 40000 + (inst["id"] % 1000) * 10
            for i, spec in enumerate(["22/tcp"] + inst["ports"]):
                host_port = base + i
                if self.config["serve_ports"] and spec != "22/tcp":
                    host_port = self._listener(inst["id"]).port
                ports[spec] = [{"HostIp": "0.0.0.0", "HostPort": str(host_port)}]
        offer = inst["offer"]
        return {
            "id": inst["id"], "machine_id": offer.get("machine_id"), "label": inst["label"],
            "image_uuid": inst["image"], "image_args": inst["args"], "onstart": inst["onstart"],
            "actual_status": phase, "intended_status": inst["intended_status"],
            "cur_state": "stopped" if inst["stopped"] else "running",
            "next_state": "stopped" if inst["stopped"] else "running",
            # Vast.ai reports the image pull in status_msg while an instance loads.
            "status_msg": inst["status_msg"] or ("Pulling image %s" % inst["image"] if phase == "loading" else ""),
            "dph_total": inst["dph_total"], "is_bid": inst["is_bid"],
            "min_bid": offer.get("min_bid"), "gpu_name": offer.get("gpu_name"),
            "num_gpus": offer.get("num_gpus"), "gpu_ram": offer.get("gpu_ram"),
            "geolocation": offer.get("geolocation"), "reliability2": offer.get("reliability"),
            "disk_space": inst["disk"], "cuda_max_good": offer.get("cuda_max_good"),
            "public_ipaddr": self.config["public_ip"] if running else None,
            "ports": ports,
            "ssh_host": "ssh%d.vast.example" % (inst["id"] % 10) if running else None,
            "ssh_port": (40000 + (inst["id"] % 1000) * 10) if running else None,
            "start_date": inst["created_at"],
            "extra_env": [[k, v] for k, v in sorted(inst["env"].items())],
        }

    def _offers_view(self):
        rows = []
        for offer in self.config["offers"]:
            row = dict(offer)
            row.setdefault("rentable", True)
            row.setdefault("external", False)
            row["rented"] = offer["id"] in self.rented
            if row["rented"]:
                row["rentable"] = False
            rows.append(row)
        return rows

    # -------------------------------------------------------------- operations
    def search(self, body):
        self._count("search")
        if not isinstance(body, dict):
            return 400, {"success": False, "error": "invalid_args", "msg": "body must be an object"}
        kind = body.get("type", "on-demand")
        if kind not in ("on-demand", "bid", "reserved"):
            return 400, {"success": False, "error": "invalid_args",
                         "msg": "type must be on-demand, bid or reserved"}
        filters = dict((k, v) for k, v in body.items() if k not in SEARCH_META)
        try:
            rows = _filter(self._offers_view(), filters)
        except ValueError as exc:
            return 400, {"success": False, "error": "invalid_args", "msg": str(exc)}
        rows = _order(rows, body.get("order") or [["score", "desc"]])
        limit = body.get("limit")
        if limit:
            rows = rows[:int(limit)]
        if kind == "bid":
            rows = [dict(r, dph_total=r["min_bid"], is_bid=True) for r in rows]
        # A stolen offer is found by the search, then taken before the create arrives.
        for offer_id in list(self.config["steal_offers"]):
            if any(r["id"] == offer_id for r in rows):
                self.rented.add(offer_id)
                self.config["steal_offers"].remove(offer_id)
        return 200, {"offers": rows}

    def create(self, offer_id, body):
        self._count("create")
        offer = next((o for o in self.config["offers"] if o["id"] == offer_id), None)
        if offer is None or offer_id in self.rented:
            self.counters["capacity_failures"] += 1
            return 200, {"success": False, "error": "no_such_ask",
                         "msg": "Instance type by id %s is not available." % offer_id}
        if not isinstance(body, dict) or not body.get("image"):
            return 400, {"success": False, "error": "invalid_args", "msg": "image is required"}
        price = body.get("price")
        if price is not None and float(price) < float(offer.get("min_bid") or 0):
            return 200, {"success": False, "error": "invalid_args",
                         "msg": "bid price %.4f is below the minimum bid %.4f for offer %s"
                                % (float(price), float(offer["min_bid"]), offer_id)}
        now = self.clock.now()
        inst_id = self.next_id
        self.next_id += 1
        env = dict(body.get("env") or {})
        self.instances[inst_id] = {
            "id": inst_id, "offer": dict(offer), "label": body.get("label"),
            "image": body["image"], "env": env, "args": body.get("args"),
            "onstart": body.get("onstart"), "disk": body.get("disk") or 10,
            # run type args: onstart replaces the image's entrypoint (as the official client sends it)
            "entrypoint": body.get("onstart") if body.get("runtype") == "args" else None,
            "boots": [],
            "ports": _ports_from_env(env), "is_bid": price is not None,
            "dph_total": float(price) if price is not None else float(offer["dph_total"]),
            "intended_status": "running", "stopped": False, "preempted": False,
            "status_msg": "", "created_at": now, "started_at": now,
            "created_phase": self.config["created_delay"], "cost_accum": 0.0,
        }
        self.rented.add(offer_id)
        self.ledger.start(inst_id, "gpu", self.instances[inst_id]["dph_total"], now)
        self.events.append({"event": "created", "instance": inst_id, "at": now})
        return 200, {"success": True, "new_contract": inst_id}

    def _find(self, inst_id):
        try:
            return self.instances.get(int(inst_id))
        except (TypeError, ValueError):
            return None

    def show(self, inst_id):
        self._count("show")
        inst = self._find(inst_id)
        if inst is None:
            return 200, {"instances": None}
        now = self.clock.now()
        self._tick(inst, now)
        return 200, {"instances": self._view(inst, now)}

    def list_v0(self):
        self._count("list_v0")
        now = self.clock.now()
        for inst in self.instances.values():
            self._tick(inst, now)
        return 200, {"instances": [self._view(i, now) for i in sorted(self.instances.values(),
                                                                      key=lambda x: x["id"])]}

    def list_v1(self, query):
        self._count("list_v1")

        def arg(name, default=None):
            raw = query.get(name, [None])[0]
            if raw is None:
                return default
            try:
                return json.loads(raw)
            except ValueError:
                return raw

        now = self.clock.now()
        for inst in self.instances.values():
            self._tick(inst, now)
        rows = [self._view(i, now) for i in self.instances.values()]
        try:
            rows = _filter(rows, arg("select_filters", {}) or {})
        except ValueError as exc:
            return 400, {"success": False, "error": "invalid_args", "msg": str(exc)}
        order = [[o["col"], o.get("dir", "asc")] for o in (arg("order_by") or [{"col": "id"}])]
        rows = _order(rows, order)
        total = len(rows)
        after = arg("after_token")
        if after:
            start = int(str(after).lstrip("t"))
            rows = [r for r in rows if r["id"] > start]
        limit = int(arg("limit", 25) or 25)
        page = rows[:limit]
        token = ("t%d" % page[-1]["id"]) if len(rows) > limit else None
        return 200, {"instances": page, "next_token": token, "total_instances": total}

    def update(self, inst_id, body):
        inst = self._find(inst_id)
        if inst is None:
            return 404, {"success": False, "error": "no_such_instance",
                         "msg": "Instance %s not found." % inst_id}
        body = body or {}
        now = self.clock.now()
        self._tick(inst, now)
        if "label" in body:
            self._count("label")
            inst["label"] = body["label"]
        state = body.get("state")
        if state == "stopped":
            self._count("stop")
            if not inst["stopped"]:
                self._account(inst, now)
                self._halt(inst)
                inst["stopped"] = True
                self._bill_stopped(inst, now)
            inst["intended_status"] = "stopped"
            inst["status_msg"] = "stopped by user"
        elif state == "running":
            self._count("start")
            inst["intended_status"] = "running"
            if inst["stopped"]:
                if inst["offer"]["id"] in self.rented and inst["preempted"] and inst["is_bid"]:
                    pass  # an outbid machine can be re-bid on: the fake lets it run again
                inst["stopped"] = False
                inst["preempted"] = False
                inst["status_msg"] = ""
                inst["started_at"] = now
                inst["created_phase"] = 0.0
                inst["resumed"] = True
                self.ledger.start(inst["id"], "gpu", inst["dph_total"], now)
                self.events.append({"event": "started", "instance": inst["id"], "at": now})
        elif state is not None:
            return 400, {"success": False, "error": "invalid_args",
                         "msg": "state must be running or stopped"}
        return 200, {"success": True}

    def destroy(self, inst_id):
        self._count("destroy")
        inst = self._find(inst_id)
        if inst is None:
            return 404, {"success": False, "error": "no_such_instance",
                         "msg": "Instance %s not found." % inst_id}
        now = self.clock.now()
        self._account(inst, now)
        self.ledger.stop(inst["id"], now)
        self.events.append({"event": "destroyed", "instance": inst["id"], "at": now})
        self.destroyed_cost += inst["cost_accum"]
        self.rented.discard(inst["offer"]["id"])
        del self.instances[inst["id"]]
        self._halt(inst)
        listener = self.listeners.pop(inst["id"], None)
        if listener is not None:
            listener.close()
        return 200, {"success": True}


class _Handler(JsonHandler):
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            return None

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method):
        fake = self.fake
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") + "/"
        body = self._body()
        if path == "/_control/":
            if method == "GET":
                return self._send(200, fake.snapshot())
            try:
                fake.configure(**(body or {}))
            except (TypeError, ValueError) as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, {"ok": True})
        if not path.startswith("/api/"):
            return self._send(404, {"success": False, "error": "not_found", "msg": "no such path"})
        with fake.lock:
            fake.counters["requests"] += 1
            fake.request_times.append(time.time())
            fake.request_log.append("%s %s" % (method, parts.path))
            if self.headers.get("Authorization") != "Bearer %s" % fake.config["api_key"]:
                fake.counters["unauthorized"] += 1
                return self._send(401, {"success": False, "error": "auth_error",
                                        "msg": "Invalid user key"})
            injected = None
            for i, item in enumerate(fake.config["fail_next"]):
                if not item.get("path") or parts.path.startswith(item["path"]):
                    injected = fake.config["fail_next"].pop(i)
                    break
            if injected:
                status = int(injected.get("status", 503))
                fake.counters["injected"][str(status)] = fake.counters["injected"].get(str(status), 0) + 1
            else:
                status, payload = self._route(method, path, parse_qs(parts.query), body)
        if injected:
            headers = {}
            if injected.get("retry_after") is not None:
                headers["Retry-After"] = str(injected["retry_after"])
            message = "Too Many Requests" if status == 429 else "Service Unavailable"
            return self._send(status, {"success": False, "error": message}, headers)
        return self._send(status, payload)

    def _route(self, method, path, query, body):
        fake = self.fake
        seg = [s for s in path.split("/") if s]
        if body is None:
            return 400, {"success": False, "error": "invalid_args", "msg": "body is not valid JSON"}
        if seg[:3] == ["api", "v0", "bundles"] and method == "POST":
            return fake.search(body)
        if seg[:3] == ["api", "v0", "asks"] and len(seg) == 4 and method == "PUT":
            try:
                offer_id = int(seg[3])
            except ValueError:
                return 400, {"success": False, "error": "invalid_args", "msg": "bad offer id"}
            return fake.create(offer_id, body)
        if seg[:3] == ["api", "v1", "instances"] and method == "GET":
            return fake.list_v1(query)
        if seg[:3] == ["api", "v0", "instances"]:
            if len(seg) == 3:
                if method == "GET":
                    return fake.list_v0()
                ids = body.get("ids") or body.get("instance_ids") or []
                results = [fake.destroy(i) if method == "DELETE" else fake.update(i, body)
                           for i in ids]
                return 200, {"success": all(r[0] == 200 for r in results),
                             "results": [r[1] for r in results]}
            if len(seg) == 4:
                if method == "GET":
                    return fake.show(seg[3])
                if method == "PUT":
                    return fake.update(seg[3], body)
                if method == "DELETE":
                    return fake.destroy(seg[3])
        return 404, {"success": False, "error": "not_found", "msg": "no such path"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULTS["api_key"])
    parser.add_argument("--running-delay", type=float, default=5.0)
    args = parser.parse_args()
    fake = VastFake(args.host, args.port, api_key=args.api_key,
                    running_delay=args.running_delay).start()
    print("Vast.ai fake on %s (API under /api, control at /_control)" % fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
