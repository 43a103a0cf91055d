"""The serverless side of the RunPod fake: the OpenAI-compatible route, workers, billing.

What RunPod documents for an endpoint running the vLLM worker, and what this fake does:

- ``/v2/{endpoint_id}/openai/v1/...`` (``https://api.runpod.ai`` in real life) answers
  OpenAI-style requests, authenticated by the account's RunPod API key
  (``Authorization: Bearer <key>``; 401 otherwise, whatever the model server's own key is).
  Unknown endpoint: 404.
- Requests wait in the endpoint's queue while a worker starts: the first request after the
  endpoint scaled to zero waits ``serverless_cold_start_s`` (the worker's cold start); the
  requests arriving meanwhile wait for the same worker (one start). A started worker serves
  every request until it has been idle for the endpoint's ``idleTimeout`` seconds, then it
  scales down (down to ``workersMin`` started workers; the product sets ``workersMin: 0``, and
  the fake does not start ``workersMin`` workers before the first request).
- Billing per worker-second from a worker's start (its cold start included) to its stop,
  each worker run rounded up to a whole second, at the flex price of the endpoint's first GPU
  pool (``serverless_prices``, USD per second; a pool not listed is billed at the dearest
  listed price, so that the fake never makes a plan look cheaper than RunPod would be).
- ``GET /v2/{endpoint_id}/health`` reports ``jobs`` and ``workers`` counts.
- ``GET /v2/billing/serverless`` answers REST v2's serverless billing history
  (``{"records": [{totalAmount, serverlessId, startTime, gpuTypeId, timeBilledMs}]}``, query
  ``bucketSize`` hour|day, ``serverlessId``, ``startTime``/``endTime``; docs.runpod.io
  api-reference-v2 "Get serverless billing history": ``totalAmount``/``serverlessId``/
  ``startTime`` as its clients read them, ``timeBilledMs`` kept from v1, unverified there);
  ``GET /v1/billing/endpoints`` the retired REST v1 shape
  (``[{amount, diskSpaceBilledGb, endpointId, gpuTypeId, podId, time, timeBilledMs}]``, query
  ``endpointId``); ``GET /_control`` shows the ledger under ``serverless``.

Time runs ``CODESTACK_CLOCK_SCALE`` times faster than the wall clock (env, default 1; fake
setting ``clock_scale`` overrides it): cold starts and idle timeouts are simulated seconds,
waited for ``1 / scale`` as long, and billed seconds are simulated seconds. Scale-down is
computed from the timestamps when anything looks (no background thread): a worker idle longer
than its timeout stopped exactly ``idleTimeout`` after its last request.
"""

import math
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

import _workload
from _fakehttp import send_json

# RunPod serverless flex prices, USD per worker-second (https://www.runpod.io/pricing,
# serverless section, as transcribed 2026-12-01; the catalog's runpod_serverless offers carry
# the same figures per hour).
FLEX_PRICES = {"AMPERE_16": 0.00016, "AMPERE_24": 0.00019, "ADA_24": 0.00031,
               "AMPERE_48": 0.00034, "ADA_48_PRO": 0.00053, "AMPERE_80": 0.00076,
               "ADA_80_PRO": 0.00116, "HOPPER_80": 0.00116, "HOPPER_141": 0.00155}

DEFAULTS = {
    "serverless_cold_start_s": 2.0,
    "serverless_prices": FLEX_PRICES,
    "clock_scale": None,          # None: CODESTACK_CLOCK_SCALE (default 1)
    "serverless_wait_timeout_s": 600.0,   # longest a queued request waits (simulated)
}


def clock_scale(config):
    value = config.get("clock_scale")
    if value is None:
        value = os.environ.get("CODESTACK_CLOCK_SCALE") or 1.0
    value = float(value)
    if value <= 0:
        raise ValueError("clock scale must be > 0")
    return value


class Serverless:
    """Workers and ledger of every endpoint of one RunPod fake (shares the fake's lock)."""

    def __init__(self, fake):
        self.fake = fake
        self.workers = {}     # endpoint id -> [worker]
        self.runs = []        # finished worker runs: {endpointId, gpuTypeId, start, stop, ...}
        self.jobs = {}        # endpoint id -> {completed, failed, inProgress, inQueue}
        self.ready = threading.Condition(fake.lock)

    # ------------------------------------------------------------------ clock and ledger
    def _scale(self):
        return clock_scale(self.fake.config)

    def _price(self, endpoint):
        prices = self.fake.config["serverless_prices"]
        pool = (endpoint.get("gpuIds") or "").split(",")[0].strip()
        return prices.get(pool, max(prices.values())), pool

    def _settle(self, endpoint_id, now):
        """Stop the workers whose idle time is past the endpoint's idleTimeout (at the moment
        it ran out) and move their runs to the ledger."""
        endpoint = self.fake.endpoints.get(endpoint_id) or {}
        idle_real = float(endpoint.get("idleTimeout") or 0) / self._scale()
        keep = int(endpoint.get("workersMin") or 0)
        workers = self.workers.get(endpoint_id, [])
        alive = list(workers)
        for worker in sorted(workers, key=lambda w: w["last_done"] or 0.0):
            stop = worker["last_done"] + idle_real if worker["last_done"] else None
            if worker["busy"] == 0 and stop is not None and stop <= now and len(alive) > keep:
                alive.remove(worker)
                self._finish(endpoint_id, worker, stop)
        self.workers[endpoint_id] = alive

    def _finish(self, endpoint_id, worker, stop):
        endpoint = self.fake.endpoints.get(endpoint_id) or {}
        price, pool = self._price(endpoint)
        seconds = math.ceil((stop - worker["start"]) * self._scale() - 1e-9)
        self.runs.append({"endpointId": endpoint_id, "gpuTypeId": pool, "podId": worker["id"],
                          "start": worker["start"], "stop": stop, "billed_s": seconds,
                          "amount": seconds * price})
        self.fake.history.append({"event": "worker_stopped", "endpoint": endpoint_id,
                                  "worker": worker["id"], "at": stop, "billed_s": seconds})

    def settle_all(self, now=None):
        now = time.time() if now is None else now
        for endpoint_id in list(self.workers):
            self._settle(endpoint_id, now)

    def forget(self, endpoint_id, now=None):
        """The endpoint is deleted: its workers stop now (billed up to this moment)."""
        now = time.time() if now is None else now
        self._settle(endpoint_id, now)
        for worker in self.workers.pop(endpoint_id, []):
            self._finish(endpoint_id, worker, now)

    def ledger(self, now=None):
        """Per endpoint: billed worker-seconds and USD, finished and running workers."""
        now = time.time() if now is None else now
        self.settle_all(now)
        out = {}
        for run in self.runs:
            entry = out.setdefault(run["endpointId"], {"billed_s": 0, "amount_usd": 0.0,
                                                       "worker_runs": 0, "running_workers": 0})
            entry["billed_s"] += run["billed_s"]
            entry["amount_usd"] += run["amount"]
            entry["worker_runs"] += 1
        for endpoint_id, workers in self.workers.items():
            endpoint = self.fake.endpoints.get(endpoint_id) or {}
            price, _pool = self._price(endpoint)
            entry = out.setdefault(endpoint_id, {"billed_s": 0, "amount_usd": 0.0,
                                                 "worker_runs": 0, "running_workers": 0})
            for worker in workers:
                seconds = math.ceil((now - worker["start"]) * self._scale() - 1e-9)
                entry["billed_s"] += seconds
                entry["amount_usd"] += seconds * price
                entry["running_workers"] += 1
        for entry in out.values():
            entry["amount_usd"] = round(entry["amount_usd"], 6)
        return {"endpoints": out, "clock_scale": self._scale(),
                "amount_usd": round(sum(e["amount_usd"] for e in out.values()), 6)}

    def billing_records(self, query, now=None):
        """RunPod's serverless billing history: one record per endpoint per time bucket."""
        now = time.time() if now is None else now
        self.settle_all(now)
        bucket = {"hour": 3600, "day": 86400}.get((query.get("bucketSize") or ["day"])[0])
        if bucket is None:
            raise ValueError("bucketSize must be hour or day here")
        wanted = (query.get("endpointId") or [None])[0]
        start = _parse_time((query.get("startTime") or [None])[0], 0.0)
        end = _parse_time((query.get("endTime") or [None])[0], float("inf"))
        runs = list(self.runs)
        for endpoint_id, workers in self.workers.items():
            endpoint = self.fake.endpoints.get(endpoint_id) or {}
            price, pool = self._price(endpoint)
            for worker in workers:
                seconds = math.ceil((now - worker["start"]) * self._scale() - 1e-9)
                runs.append({"endpointId": endpoint_id, "gpuTypeId": pool, "podId": worker["id"],
                             "start": worker["start"], "billed_s": seconds,
                             "amount": seconds * price})
        records = {}
        for run in runs:
            if wanted and run["endpointId"] != wanted or not start <= run["start"] < end:
                continue
            at = math.floor(run["start"] / bucket) * bucket
            key = (run["endpointId"], at)
            rec = records.setdefault(key, {"amount": 0.0, "diskSpaceBilledGb": 0,
                                           "endpointId": run["endpointId"],
                                           "gpuTypeId": run["gpuTypeId"], "podId": None,
                                           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime(at)),
                                           "timeBilledMs": 0})
            rec["amount"] += run["amount"]
            rec["timeBilledMs"] += run["billed_s"] * 1000
        out = [records[k] for k in sorted(records)]
        for rec in out:
            rec["amount"] = round(rec["amount"], 6)
        return out

    # ------------------------------------------------------------------ workers
    def health(self, endpoint_id, now=None):
        now = time.time() if now is None else now
        self._settle(endpoint_id, now)
        workers = self.workers.get(endpoint_id, [])
        jobs = dict(self.jobs.get(endpoint_id) or {"completed": 0, "failed": 0,
                                                   "inProgress": 0, "inQueue": 0, "retried": 0})
        return {"jobs": jobs, "workers": {
            "idle": sum(1 for w in workers if w["ready_at"] <= now and w["busy"] == 0),
            "running": sum(1 for w in workers if w["ready_at"] <= now and w["busy"] > 0),
            "initializing": sum(1 for w in workers if w["ready_at"] > now),
            "ready": sum(1 for w in workers if w["ready_at"] <= now),
            "throttled": 0, "unhealthy": 0}}

    def acquire(self, endpoint_id):
        """Queue one request until a worker is ready; start one when none runs. Returns the
        worker, or None when the wait timed out."""
        with self.ready:
            now = time.time()
            self._settle(endpoint_id, now)
            jobs = self.jobs.setdefault(endpoint_id, {"completed": 0, "failed": 0,
                                                      "inProgress": 0, "inQueue": 0,
                                                      "retried": 0})
            workers = self.workers.setdefault(endpoint_id, [])
            if not workers:
                cold = float(self.fake.config["serverless_cold_start_s"]) / self._scale()
                worker = {"id": "worker-%s-%d" % (endpoint_id, len(self.runs) + 1),
                          "start": now, "ready_at": now + cold, "busy": 0, "last_done": None}
                workers.append(worker)
                self.fake.history.append({"event": "worker_started", "endpoint": endpoint_id,
                                          "worker": worker["id"], "at": now,
                                          "ready_at": worker["ready_at"]})
            worker = min(workers, key=lambda w: w["ready_at"])
            worker["busy"] += 1   # held from now: an idle timeout cannot stop a queued job
            jobs["inQueue"] += 1
            deadline = now + float(self.fake.config["serverless_wait_timeout_s"]) / self._scale()
            while time.time() < worker["ready_at"]:
                if time.time() >= deadline:
                    worker["busy"] -= 1
                    jobs["inQueue"] -= 1
                    jobs["failed"] += 1
                    return None
                self.ready.wait(min(worker["ready_at"], deadline) - time.time())
            jobs["inQueue"] -= 1
            jobs["inProgress"] += 1
            return worker

    def release(self, endpoint_id, worker, ok=True):
        with self.ready:
            worker["busy"] -= 1
            worker["last_done"] = time.time()
            jobs = self.jobs[endpoint_id]
            jobs["inProgress"] -= 1
            jobs["completed" if ok else "failed"] += 1
            self.ready.notify_all()


def _parse_time(text, default):
    if not text:
        return default
    return float(time.mktime(time.strptime(text.replace("Z", ""), "%Y-%m-%dT%H:%M:%S"))
                 - time.timezone)


def _served_name(fake, endpoint):
    template = fake.templates.get(endpoint.get("templateId")) or {}
    env = template.get("env") or []
    return (_workload.env_value(env, "OPENAI_SERVED_MODEL_NAME_OVERRIDE")
            or _workload.env_value(env, "MODEL_NAME") or endpoint.get("name") or "")


def handle(handler, fake, body):
    """Answer a ``/v2/...`` or ``/v1/billing/...`` request of the fake; False if not ours."""
    path = urlsplit(handler.path)
    parts = path.path.split("/")
    auth = handler.headers.get("Authorization") or ""
    billing = path.path.rstrip("/") in ("/v1/billing/endpoints", "/v2/billing/serverless")
    if billing and handler.command == "GET":
        if auth != "Bearer %s" % fake.config["api_key"]:
            send_json(handler, 401, {"error": "Unauthorized"})
            return True
        query = parse_qs(path.query)
        v2 = path.path.rstrip("/").startswith("/v2/")
        if v2 and "serverlessId" in query:
            query["endpointId"] = query.pop("serverlessId")
        with fake.lock:
            try:
                records = fake.serverless.billing_records(query)
            except ValueError as exc:
                send_json(handler, 400, {"error": str(exc)})
                return True
        if v2:
            records = {"records": [
                {"totalAmount": r["amount"], "serverlessId": r["endpointId"], "startTime": r["time"],
                 "gpuTypeId": r["gpuTypeId"], "timeBilledMs": r["timeBilledMs"]} for r in records]}
        send_json(handler, 200, records)
        return True
    if len(parts) < 4 or parts[1] != "v2":
        return False
    endpoint_id, rest = parts[2], "/" + "/".join(parts[3:])
    if auth != "Bearer %s" % fake.config["api_key"]:
        with fake.lock:
            fake.counters["unauthorized"] += 1
        send_json(handler, 401, {"error": "Unauthorized"})
        return True
    with fake.lock:
        endpoint = fake.endpoints.get(endpoint_id)
        name = _served_name(fake, endpoint) if endpoint else ""
        upstream = fake.config["upstream"]
    if endpoint is None:
        send_json(handler, 404, {"error": "endpoint %s not found" % endpoint_id})
        return True
    if rest.rstrip("/") == "/health":
        with fake.lock:
            send_json(handler, 200, fake.serverless.health(endpoint_id))
        return True
    if not rest.startswith("/openai/"):
        send_json(handler, 404, {"error": "not found"})
        return True
    worker = fake.serverless.acquire(endpoint_id)
    if worker is None:
        send_json(handler, 504, {"error": "request timed out in the endpoint queue"})
        return True
    ok = True
    try:
        # the worker itself has no key of its own: RunPod authenticated the request at its edge
        _workload.serve(handler, handler.command, rest[len("/openai"):], upstream, None, name,
                        body)
    except OSError:
        ok = False
        raise
    finally:
        fake.serverless.release(endpoint_id, worker, ok)
    return True
