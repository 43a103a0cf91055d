# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""codestack waker: scale rented GPUs to zero between bursts, between the gateway and the GPUs.

The LiteLLM gateway routes each idle_stop deployment to ``http://HOST:PORT/d/<deployment>/v1``.
The waker relays every request to the deployment's model server and keeps an idle clock per
deployment: after ``idle_timeout_s`` without a request it stops the pod (RunPod ``podStop``) or
instance (Vast.ai ``{"state": "stopped"}``); the next request resumes it. Per ``wake_policy``
that request either waits for the wake (bounded by ``wake_timeout_s``; a streaming request gets
its SSE head at once and a comment line every few seconds, so no client times out) or is
answered 503 at once, so that the gateway's fallback answers while the GPU wakes. Concurrent
first requests share one wake. A resume that RunPod refuses because the host has no free GPU
deploys a fresh pod (same GPU type first, then the plan's alternatives with the same model),
recorded in the state file before the old pod is terminated: never an orphan.

Clock: ``CODESTACK_CLOCK_SCALE`` (default 1) provider seconds per wall second, for tests that
simulate a working day in a minute; every duration in the configuration is in provider seconds.

Usage: codestack_waker.py --config CONFIG.json --credentials CREDENTIALS.json
(credentials: 0600, the provider keys and the model servers' key; never logged).
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import time

import aiohttp
from aiohttp import web

try:   # a faster event loop where it is installed (waker_pip_packages); asyncio's otherwise
    import uvloop
except ImportError:   # pragma: no cover - depends on the virtual environment
    uvloop = None

LOG = logging.getLogger("codestack.waker")
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length"}
RUNNING, STOPPING, STOPPED, WAKING = "running", "stopping", "stopped", "waking"


class Clock:
    """Provider seconds (``scale`` per wall second), monotonic."""

    def __init__(self, scale=1.0):
        self.scale = float(scale)
        if self.scale <= 0:
            raise ValueError("CODESTACK_CLOCK_SCALE must be positive")

    def now(self):
        return time.monotonic() * self.scale

    async def sleep(self, seconds):
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    def wall(self, seconds):
        return max(0.0, seconds) / self.scale


class WakeError(Exception):
    """The deployment could not be woken (the message says why)."""


class Deployment:
    """The idle clock and wake state machine of one deployment.

    ``ops`` does the provider work (blocking calls run in a thread): ``stop(dep)``,
    ``resume(dep)`` (raises ``CapacityError``-like exceptions with ``capacity = True`` when the
    host has no free GPU), ``replace(dep)`` and ``ready(dep)`` (True once the model answers).
    """

    def __init__(self, name, conf, clock, ops, events=None):
        self.name = name
        self.conf = conf
        self.clock = clock
        self.ops = ops
        self.events = events if events is not None else []
        self.state = RUNNING
        self.inflight = 0
        self.last_activity = clock.now()
        self.stopped_at = None
        self.wake_task = None
        self.stop_task = None
        self.wakes = 0
        self.stops = 0
        self.next_probe = 0.0

    # ------------------------------------------------------------ requests
    def begin(self):
        self.inflight += 1
        self.last_activity = self.clock.now()

    def end(self):
        self.inflight = max(0, self.inflight - 1)
        self.last_activity = self.clock.now()

    @property
    def awake(self):
        return self.state == RUNNING

    def ensure_wake(self, reason):
        """The one wake of this deployment (started now unless one runs already)."""
        if self.state == RUNNING:
            return None
        if self.wake_task is None or self.wake_task.done():
            self.wake_task = asyncio.ensure_future(self._wake(reason))
            # Its failure is logged and answered to the waiting requests; nobody else reads it.
            self.wake_task.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self.wake_task

    async def wait_awake(self, reason):
        """Wake (or join the running wake) and wait for it, bounded by ``wake_timeout_s``."""
        task = self.ensure_wake(reason)
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self.clock.wall(self.conf["wake_timeout_s"]))
        except asyncio.TimeoutError:
            raise WakeError("%s did not wake within %ss" % (self.name, self.conf["wake_timeout_s"]))

    # ------------------------------------------------------------ idle clock
    def idle_for(self):
        return self.clock.now() - self.last_activity

    def should_stop(self):
        return (self.state == RUNNING and self.inflight == 0
                and self.idle_for() >= self.conf["idle_timeout_s"])

    def tick(self):
        """Start the stop of an idle deployment (returns its task, or None)."""
        if not self.should_stop():
            return None
        self.state = STOPPING
        self.stop_task = asyncio.ensure_future(self._stop("idle for %.0fs (idle_timeout_s %s)"
                                                          % (self.idle_for(), self.conf["idle_timeout_s"])))
        return self.stop_task

    def probe_due(self):
        """A stopped machine is checked now and then: something else (a re-run of the provision
        stage) may have started it, and it would then bill with no idle clock."""
        if self.state != STOPPED or self.wake_task is not None and not self.wake_task.done():
            return False
        now = self.clock.now()
        if now < self.next_probe:
            return False
        self.next_probe = now + self.conf["idle_timeout_s"]
        return True

    async def probe(self):
        if await self.ops.ready(self) and self.state == STOPPED:
            self.state = RUNNING
            self.last_activity = self.clock.now()
            self._log("found_running", "the model server answers: started outside the waker", self.clock.now())

    async def _stop(self, reason):
        started = self.clock.now()
        try:
            await self.ops.stop(self)
        except Exception as exc:  # pylint: disable=broad-except
            # Still billed: try again at the next tick.
            self.state = RUNNING
            self._log("stop_failed", reason, started, error=str(exc))
            return
        self.state = STOPPED
        self.stopped_at = self.clock.now()
        self.stops += 1
        self._log("stopped", reason, started)

    async def _wake(self, reason):
        if self.stop_task is not None and not self.stop_task.done():
            await asyncio.shield(self.stop_task)
        if self.state == RUNNING:
            return
        self.state = WAKING
        started = self.clock.now()
        how = "resumed"
        try:
            try:
                await self.ops.resume(self)
            except Exception as exc:  # pylint: disable=broad-except
                if not getattr(exc, "capacity", False):
                    raise
                self._log("resume_refused", str(exc), started)
                await self.ops.replace(self)
                how = "replaced"
            deadline = started + self.conf["wake_timeout_s"]
            while not await self.ops.ready(self):
                if self.clock.now() >= deadline:
                    raise WakeError("%s: the model server did not answer within %ss after the %s"
                                    % (self.name, self.conf["wake_timeout_s"], how))
                await self.clock.sleep(self.conf.get("poll_interval_s", 5))
        except Exception as exc:
            self.state = STOPPED
            self._log("wake_failed", reason, started, error=str(exc))
            raise WakeError(str(exc))
        self.state = RUNNING
        self.wakes += 1
        self.last_activity = self.clock.now()
        self._log("woken", "%s (%s)" % (reason, how), started)

    def _log(self, event, reason, started, **extra):
        record = dict({"event": event, "deployment": self.name, "reason": reason,
                       "duration_s": round(self.clock.now() - started, 3),
                       "wall_s": round(self.clock.wall(self.clock.now() - started), 3),
                       "at": time.time()}, **extra)
        self.events.append(record)
        LOG.info(json.dumps(record, sort_keys=True))


# ---------------------------------------------------------------- provider work
class ProviderOps:
    """Stop, resume, replace and readiness through the collection's provider clients."""

    def __init__(self, conf, creds, session, clients):
        self.conf = conf
        self.creds = creds
        self.session = session
        self.clients = clients  # {"runpod": RunPodClient, "vast": VastClient}
        self.ssl = {}

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def stop(self, dep):
        c = dep.conf
        if c["provider"] == "runpod":
            await self._call(self.clients["runpod"].stop_pod, c["resource_id"])
        else:
            await self._call(self.clients["vast"].set_state, c["resource_id"], "stopped")
        await self._call(self._record, dep, "stopped")

    async def resume(self, dep):
        c = dep.conf
        try:
            if c["provider"] == "runpod":
                await self._call(self.clients["runpod"].resume_pod, c["resource_id"], c["gpu_count"], c.get("bid_per_gpu"))
            else:
                await self._call(self.clients["vast"].set_state, c["resource_id"], "running")
        except Exception as exc:
            if type(exc).__name__ == "CapacityError":
                exc.capacity = True
            raise
        await self._call(self._record, dep, "present")

    async def replace(self, dep):
        if dep.conf["provider"] != "runpod":
            raise WakeError("%s: a refused start on %s is not replaced by the waker" % (dep.name, dep.conf["provider"]))
        await self._call(self._replace_runpod, dep)

    def _replace_runpod(self, dep):
        from ansible_collections.llmops.codestack.plugins.module_utils._runpod import CapacityError
        client = self.clients["runpod"]
        c = dep.conf
        old_id = c["resource_id"]
        old = client.get_pod(old_id) or {}
        if not old.get("imageName"):
            raise WakeError("%s: cannot read the stopped pod %s to deploy a fresh one" % (dep.name, old_id))
        env = []
        for item in old.get("env") or []:
            key, _sep, value = item.partition("=")
            env.append({"key": key, "value": value})
        tried = []
        for option in c.get("replacements") or []:
            spec = {"name": old.get("name"), "imageName": old["imageName"], "gpuTypeId": option["gpu_type_id"],
                    "gpuCount": option["gpu_count"], "cloudType": self.conf.get("runpod_cloud_type", "ALL"),
                    "containerDiskInGb": old.get("containerDiskInGb"), "volumeInGb": int(old.get("volumeInGb") or 0),
                    "volumeMountPath": old.get("volumeMountPath"), "dockerArgs": old.get("dockerArgs") or "",
                    "ports": old.get("ports") or "", "supportPublicIp": True, "startSsh": False, "env": env}
            if option.get("region"):
                spec["dataCenterId"] = option["region"]
            if option.get("interruptible"):
                spec["bidPerGpu"] = float(option["price_per_hour_usd"]) / option["gpu_count"]
            try:
                new = client.deploy_pod(spec, interruptible=bool(option.get("interruptible")))
            except CapacityError as exc:
                tried.append("%s: %s" % (option.get("offer_id"), exc))
                continue
            port = (old.get("ports") or "8000/http").split("/")[0]
            url = self.creds["runpod"]["proxy_url_template"].format(pod_id=new["id"], port=port) + "/v1"
            # Recorded before the old pod goes: a crash in between leaves both in state.json.
            self._record_new(dep, new, option, url)
            client.terminate_pod(old_id)
            self._remove(dep, old_id)
            c.update(resource_id=new["id"], upstream=url, gpu_count=option["gpu_count"])
            dep.events.append({"event": "replaced", "deployment": dep.name, "old": old_id, "new": new["id"],
                               "offer_id": option.get("offer_id"), "at": time.time()})
            return
        raise WakeError("%s: no fresh pod could be deployed (%s)" % (dep.name, "; ".join(tried) or "no replacement options"))

    def _key(self, dep, resource_id=None):
        c = dep.conf
        return (c["provider"], c["kind"], resource_id or c["resource_id"])

    def _record(self, dep, state):
        from ansible_collections.llmops.codestack.plugins.module_utils import _statefile
        path, stack_id = self.conf["state_file"], self.conf["stack_id"]
        if not path:
            return
        key = self._key(dep)
        if state == "stopped":
            _statefile.update(path, stack_id, "stopped", key)
            return

        def resumed(current):
            if current is None:
                raise _statefile.StateFileError("%s/%s/%s is not in the state file" % key)
            entry = dict(current)
            attrs = dict(entry.get("attributes") or {})
            if entry.get("stopped_at"):
                # the stop becomes an interval: the budget guard and teardown bill running hours only
                entry["stopped_intervals"] = list(entry.get("stopped_intervals") or []) + [
                    [entry["stopped_at"], _statefile.now()]]
                stopped = _parse(entry.pop("stopped_at"))
                attrs["stopped_s"] = round(float(attrs.get("stopped_s") or 0) + max(0.0, time.time() - stopped), 1)
            entry["attributes"] = attrs
            return entry
        _statefile.update(path, stack_id, "present", key, resumed)

    def _record_new(self, dep, pod, option, url):
        from ansible_collections.llmops.codestack.plugins.module_utils import _statefile
        path, stack_id = self.conf["state_file"], self.conf["stack_id"]
        with _statefile.locked(path):   # the guard's teardown may rewrite the same copy meanwhile
            doc = _statefile.read(path, stack_id)
            _index, old = _statefile.find(doc, self._key(dep))
            attrs = dict((old or {}).get("attributes") or {})
            attrs.update(endpoint_url=url, offer_id=option.get("offer_id"), gpu=option.get("gpu") or attrs.get("gpu"),
                         replaces=dep.conf["resource_id"], stopped_s=0)
            entry = _statefile.entry("runpod", "pod", pod["id"], (old or {}).get("name") or dep.name,
                                     pod.get("costPerHr") or option.get("price_per_hour_usd") or 0, attrs)
            _statefile.apply(doc, "present", ("runpod", "pod", pod["id"]), entry)
            _statefile.write(path, doc)

    def _remove(self, dep, resource_id):
        from ansible_collections.llmops.codestack.plugins.module_utils import _statefile
        _statefile.update(self.conf["state_file"], self.conf["stack_id"], "absent", self._key(dep, resource_id))

    def ssl_for(self, dep):
        # The authority itself (ca_pem, as the controller read it: a control host other than the
        # controller has no copy of its file), else the file, else the system's trust store.
        pem, ca = dep.conf.get("ca_pem") or "", dep.conf.get("ca_file") or ""
        if not dep.conf["upstream"].startswith("https"):
            return None
        key = pem or ca
        if key not in self.ssl:
            if pem:
                self.ssl[key] = ssl.create_default_context(cadata=pem)
            else:
                self.ssl[key] = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        return self.ssl[key]

    async def ready(self, dep):
        url = dep.conf["upstream"].rstrip("/") + "/models"
        headers = {"Authorization": "Bearer %s" % self.creds.get("vllm_api_key", "")}
        try:
            async with self.session.get(url, headers=headers, ssl=self.ssl_for(dep),
                                        timeout=aiohttp.ClientTimeout(total=10)) as answer:
                await answer.read()
                return answer.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False


def _parse(stamp):
    import calendar
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


# ---------------------------------------------------------------- HTTP
class Waker:
    def __init__(self, conf, creds, clock, ops_factory):
        self.conf = conf
        self.creds = creds
        self.clock = clock
        self.events = []
        self.session = None
        self.ops_factory = ops_factory
        self.ops = None
        self.deployments = {}
        self.ticker = None

    async def start(self, app):
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                             timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
        self.ops = self.ops_factory(self.conf, self.creds, self.session)
        for name, dconf in sorted(self.conf["deployments"].items()):
            dconf.setdefault("poll_interval_s", self.conf.get("poll_interval_s", 5))
            self.deployments[name] = Deployment(name, dconf, self.clock, self.ops, self.events)
        self._sync_from_state()
        self.ticker = asyncio.ensure_future(self._tick_loop())
        LOG.info(json.dumps({"event": "started", "deployments": sorted(self.deployments),
                             "clock_scale": self.clock.scale,
                             "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0]}))

    def _sync_from_state(self):
        """After a restart: the machine the state file lists now for each deployment (a
        replacement may have changed it) and whether the waker had stopped it."""
        path = self.conf.get("state_file")
        if not path or not os.path.exists(path):
            return
        with open(path) as handle:
            doc = json.load(handle)
        for res in doc.get("resources") or []:
            attrs = res.get("attributes") or {}
            dep = self.deployments.get(attrs.get("deployment"))
            if dep is None or res.get("provider") != dep.conf["provider"]:
                continue
            dep.conf["resource_id"] = str(res["id"])
            if attrs.get("endpoint_url"):
                dep.conf["upstream"] = attrs["endpoint_url"]
            if res.get("stopped_at"):
                dep.state = STOPPED

    async def close(self, app):
        if self.ticker:
            self.ticker.cancel()
        if self.session:
            await self.session.close()

    async def _tick_loop(self):
        shortest = min([d.conf["idle_timeout_s"] for d in self.deployments.values()] or [60])
        interval = max(0.02, min(1.0, self.clock.wall(shortest) / 20))
        while True:
            await asyncio.sleep(interval)
            for dep in self.deployments.values():
                try:
                    dep.tick()
                    if dep.probe_due():
                        asyncio.ensure_future(dep.probe())
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("idle check of %s failed", dep.name)

    async def status(self, request):
        return web.json_response({"deployments": dict(
            (n, {"state": d.state, "inflight": d.inflight, "idle_s": round(d.idle_for(), 1), "wakes": d.wakes,
                 "stops": d.stops, "resource_id": d.conf["resource_id"], "provider": d.conf["provider"]})
            for n, d in self.deployments.items()), "events": self.events[-200:], "clock_scale": self.clock.scale})

    async def relay(self, request):
        dep = self.deployments.get(request.match_info["deployment"])
        if dep is None:
            return web.json_response({"error": {"message": "unknown deployment", "type": "not_found"}}, status=404)
        body = await request.read()
        dep.begin()
        try:
            if not dep.awake:
                if dep.conf["wake_policy"] == "fallback":
                    dep.ensure_wake("request (fallback while waking)")
                    return web.json_response(
                        {"error": {"message": "%s is waking its GPU (stopped when idle); the gateway's fallback answers"
                                              % dep.name, "type": "service_unavailable", "code": "waking"}},
                        status=503)
                if _wants_stream(body):
                    return await self._wait_streaming(request, dep, body)
                try:
                    await dep.wait_awake("request")
                except WakeError as exc:
                    return web.json_response({"error": {"message": str(exc), "type": "service_unavailable"}},
                                             status=503)
            return await self._forward(request, dep, body)
        finally:
            dep.end()

    async def _wait_streaming(self, request, dep, body):
        answer = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                         "Cache-Control": "no-cache"})
        await answer.prepare(request)
        task = dep.ensure_wake("streaming request")
        deadline = time.monotonic() + self.clock.wall(dep.conf["wake_timeout_s"])
        keepalive = float(self.conf.get("keepalive_s", 5))
        error = None
        while task is not None and not task.done():
            left = deadline - time.monotonic()
            if left <= 0:
                error = "%s did not wake within %ss" % (dep.name, dep.conf["wake_timeout_s"])
                break
            await asyncio.wait([asyncio.shield(task)], timeout=min(keepalive, left))
            if not task.done():
                # An SSE comment: clients and the gateway ignore it, the connection stays alive.
                await answer.write(b": waking the GPU\n\n")
        if task is not None and task.done() and task.exception() is not None:
            error = str(task.exception())
        if error is None:
            try:
                async with self._upstream(request, dep, body) as upstream:
                    async for chunk in upstream.content.iter_any():
                        await answer.write(chunk)
                await answer.write_eof()
                return answer
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = "%s: %s" % (dep.name, exc)
        await answer.write(b"data: " + json.dumps({"error": {"message": error, "type": "service_unavailable"}}).encode()
                           + b"\n\n")
        await answer.write_eof()
        return answer

    def _upstream(self, request, dep, body):
        rest = request.match_info.get("rest", "")
        url = dep.conf["upstream"].rstrip("/") + "/" + rest
        if request.query_string:
            url += "?" + request.query_string
        headers = dict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS)
        return self.session.request(request.method, url, data=body or None, headers=headers,
                                    ssl=self.ops.ssl_for(dep))

    async def _forward(self, request, dep, body):
        try:
            async with self._upstream(request, dep, body) as upstream:
                headers = dict((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS)
                if upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
                    answer = web.StreamResponse(status=upstream.status, headers=headers)
                    await answer.prepare(request)
                    async for chunk in upstream.content.iter_any():
                        await answer.write(chunk)
                    await answer.write_eof()
                    return answer
                return web.Response(status=upstream.status, body=await upstream.read(), headers=headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return web.json_response({"error": {"message": "%s: model server unreachable: %s" % (dep.name, exc),
                                                "type": "service_unavailable"}}, status=503)


def _wants_stream(body):
    if b'"stream"' not in body:
        return False
    try:
        return bool(json.loads(body).get("stream"))
    except (ValueError, AttributeError):
        return False


def make_app(conf, creds, clock, ops_factory):
    waker = Waker(conf, creds, clock, ops_factory)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(waker.start)
    app.on_cleanup.append(waker.close)
    app.router.add_get("/_status", waker.status)
    app.router.add_route("*", "/d/{deployment}/v1/{rest:.*}", waker.relay)
    app["waker"] = waker
    return app


def provider_ops(conf, creds, session):
    from ansible_collections.llmops.codestack.plugins.module_utils._runpod import RunPodClient
    from ansible_collections.llmops.codestack.plugins.module_utils._vast import VastClient
    clients = {}
    if creds.get("runpod", {}).get("api_key"):
        clients["runpod"] = RunPodClient(creds["runpod"]["api_key"], creds["runpod"].get("api_endpoint") or None)
    if creds.get("vast", {}).get("api_key"):
        clients["vast"] = VastClient(creds["vast"]["api_key"], creds["vast"].get("api_endpoint") or None)
    return ProviderOps(conf, creds, session, clients)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--credentials", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
    with open(args.config) as handle:
        conf = json.load(handle)
    with open(args.credentials) as handle:
        creds = json.load(handle)
    clock = Clock(float(os.environ.get("CODESTACK_CLOCK_SCALE") or conf.get("clock_scale") or 1))
    app = make_app(conf, creds, clock, provider_ops)
    loop = uvloop.new_event_loop() if uvloop is not None and not os.environ.get("CODESTACK_WAKER_NO_UVLOOP") else None
    web.run_app(app, host=conf["listen"]["host"], port=int(conf["listen"]["port"]), print=None,
                access_log=None, handle_signals=True, loop=loop)


if __name__ == "__main__":
    main()
