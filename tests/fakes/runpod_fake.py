#!/usr/bin/env python3
"""A local fake of the RunPod GraphQL API, for tests (never talks to the internet).

Follows the wire format in ``shared/provider-apis.md``: ``POST /graphql`` with a bearer key,
errors as HTTP 200 ``{"errors": [{"message", "extensions": {"code"}}]}``, 401 on a bad key.
Queries are parsed and executed by ``graphql-core`` against the SDL below, so both
``variables`` (what llmops.codestack sends) and inline values (what the official ``runpod``
SDK sends) work, and a malformed query fails the way a real GraphQL server fails.

Behaviour switchable per test (constructor keywords, :meth:`RunPodFake.configure`, or
``POST /_control`` with the same keys as JSON):

- ``created_delay`` / ``running_delay``: seconds a new or resumed pod stays ``CREATED``, then
  ``RUNNING`` with ``runtime: null`` (loading), before ``runtime.ports`` appear;
  ``delay_by_image``: ``{image: running_delay}`` and ``delay_by_name``:
  ``{substring of the pod name: running_delay}`` override it per pod.
- ``never_running``: pods stay loading forever (``never_running_images`` per image).
- ``capacity``: ``{gpuTypeId: free GPUs}``; a deploy/resume that does not fit gets the
  documented ``SUPPLY_CONSTRAINT`` error. Unlisted types have unlimited capacity.
- ``fail_next``: a list of ``{"status": 429|500|502|503, "retry_after": seconds}`` consumed by
  the next ``/graphql`` requests (rate limiting and 5xx injection); with
  ``"after_processing": true`` the request takes effect and only its answer is lost; with
  ``"operation": "<top-level field>"`` only requests of that operation are hit.
- ``preempt``: a pod id (or ``"all"``): interruptible pods are stopped by the "provider".
- ``api_key``: the accepted bearer key.
- ``clock_scale``: provider seconds per wall second (default: ``CODESTACK_CLOCK_SCALE`` or 1;
  see _billing.py): billing and every delay above run on that clock.
- ``resume_delay``: seconds a resumed pod loads before its ports answer (null: ``running_delay``).
- ``resume_refused``: pod ids, name fragments or ``"all"``: ``podResume``/``podBidResume`` of a
  stopped pod fails as RunPod's does when the host machine has no free GPU any more ("There are
  not enough free GPUs on the host machine to start this pod.", runpod-python issue 168), while
  new pods of the same GPU type still deploy elsewhere.
- ``volume_usd_per_gb_month_stopped`` / ``disk_usd_per_gb_month_running``: what RunPod bills for
  a pod's disks (USD per GB-month): the volume while stopped; volume and container disk while
  running, on top of ``costPerHr`` (runpod.io/pricing "Pod storage", as of 2026-12; test data).
- ``catalog_prices``: a catalog directory (or true: the collection's ``catalog/``): the GPU
  types' prices become the catalog's (community/spot: its offer for any region, secure: the
  dearest of its offers), the disks' prices its ``scaling`` entry's and the serverless
  workers' its ``runpod_serverless`` offers', so the ledger bills what the plan was priced at.
- ``advance_s``: jump the clock forward (a gap in which nothing runs, billed as it stands).

Billing ledger (``GET /_control`` key ``ledger``; _billing.py): per second while a pod runs at its
``costPerHr`` plus running disk, per GB-month of volume while it is stopped, nothing after
``podTerminate``. ``history`` logs created/stopped/resumed/resume_refused/terminated events.

Each pod's HTTP ports are served by the fake too, as the RunPod proxy would:
``GET /_proxy/{pod_id}/{port}/...`` answers 502 until the pod runs, then a tiny OpenAI-like
``/v1/models``. Point a module's proxy URL template at
``http://127.0.0.1:<port>/_proxy/{pod_id}/{port}``.

``GET /_control`` returns live pods, endpoints, templates, counters and accumulated running
cost (USD, from ``costPerHr`` times running seconds) for teardown tests, and the serverless
ledger (``serverless``).

Serverless endpoints answer their OpenAI-compatible route ``/v2/{endpoint_id}/openai/v1`` with
a queue delay while a worker starts, scale their workers down after ``idleTimeout`` and bill
per worker-second (``runpod_serverless.py``; settings ``serverless_cold_start_s``,
``serverless_prices``, ``clock_scale``). Point ``runpod_endpoint``'s ``openai_url_template``
at ``http://127.0.0.1:<port>/v2/{endpoint_id}/openai/v1``.

Standalone: ``python tests/fakes/runpod_fake.py --port 8765 [--api-key KEY]``.
"""

import argparse
import json
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

from graphql import GraphQLError, build_schema, graphql_sync, parse

import _workload
from _billing import HOURS_PER_MONTH, Ledger, SimClock, catalog_offers, catalog_price
import runpod_serverless
from _fakehttp import JsonHandler

CAPACITY_MESSAGE = ("There are no longer any instances available with the requested "
                    "specifications. Please refresh and try again.")
HOST_CAPACITY_MESSAGE = "There are not enough free GPUs on the host machine to start this pod."
PREEMPTED_STATUS = "Interrupted by RunPod: the spot instance was reclaimed (outbid)"

SDL = """
scalar Void
enum CloudTypeEnum { ALL SECURE COMMUNITY }
enum FlashBootType { FLASHBOOT OFF }

input EnvironmentVariableInput { key: String! value: String }
input PodFilter { podId: String! }
input GpuTypeFilter { id: String ids: [String] }
input GpuLowestPriceInput { gpuCount: Int dataCenterId: String secureCloud: Boolean }
input PodStopInput { podId: String! }
input PodTerminateInput { podId: String! }
input PodResumeInput { podId: String! gpuCount: Int }
input PodBidResumeInput { podId: String! bidPerGpu: Float! gpuCount: Int }

input PodFindAndDeployOnDemandInput {
  name: String imageName: String cloudType: CloudTypeEnum gpuTypeId: String gpuCount: Int
  volumeInGb: Int containerDiskInGb: Int minVcpuCount: Int minMemoryInGb: Int
  dockerArgs: String ports: String volumeMountPath: String env: [EnvironmentVariableInput]
  startSsh: Boolean startJupyter: Boolean supportPublicIp: Boolean dataCenterId: String
  countryCode: String templateId: String networkVolumeId: String
  allowedCudaVersions: [String] minDownload: Int minUpload: Int
}
input PodRentInterruptableInput {
  name: String imageName: String cloudType: CloudTypeEnum gpuTypeId: String gpuCount: Int
  volumeInGb: Int containerDiskInGb: Int minVcpuCount: Int minMemoryInGb: Int
  dockerArgs: String ports: String volumeMountPath: String env: [EnvironmentVariableInput]
  startSsh: Boolean startJupyter: Boolean supportPublicIp: Boolean dataCenterId: String
  countryCode: String templateId: String networkVolumeId: String
  allowedCudaVersions: [String] minDownload: Int minUpload: Int bidPerGpu: Float!
}
input EndpointInput {
  id: String name: String! templateId: String! gpuIds: String! networkVolumeId: String
  locations: String idleTimeout: Int scalerType: String scalerValue: Int workersMin: Int
  workersMax: Int allowedCudaVersions: String gpuCount: Int flashBootType: FlashBootType
  executionTimeoutMs: Int
}
input SaveTemplateInput {
  id: String name: String! imageName: String! dockerArgs: String containerDiskInGb: Int
  volumeInGb: Int volumeMountPath: String ports: String env: [EnvironmentVariableInput]
  isServerless: Boolean containerRegistryAuthId: String startSsh: Boolean isPublic: Boolean
  readme: String
}

type EnvironmentVariable { key: String value: String }
type Machine { podHostId: String gpuDisplayName: String gpuTypeId: String dataCenterId: String }
type PodRuntimePorts { ip: String isIpPublic: Boolean privatePort: Int publicPort: Int type: String }
type PodRuntimeContainer { cpuPercent: Int memoryPercent: Int }
type PodRuntime { uptimeInSeconds: Int ports: [PodRuntimePorts] container: PodRuntimeContainer }
type Pod {
  id: String! name: String imageName: String env: [String] machineId: String machine: Machine
  desiredStatus: String lastStatusChange: String costPerHr: Float adjustedCostPerHr: Float
  gpuCount: Int vcpuCount: Float memoryInGb: Float volumeInGb: Float containerDiskInGb: Int
  volumeMountPath: String dockerArgs: String dockerId: String ports: String port: Int
  podType: String uptimeSeconds: Int runtime: PodRuntime
}
type LowestPrice {
  gpuName: String gpuTypeId: String minimumBidPrice: Float uninterruptablePrice: Float
  minMemory: Int minVcpu: Int stockStatus: String
}
type GpuType {
  id: String! displayName: String manufacturer: String memoryInGb: Int cudaCores: Int
  secureCloud: Boolean communityCloud: Boolean securePrice: Float communityPrice: Float
  oneMonthPrice: Float threeMonthPrice: Float oneWeekPrice: Float communitySpotPrice: Float
  secureSpotPrice: Float maxGpuCount: Int lowestPrice(input: GpuLowestPriceInput): LowestPrice
}
type NetworkVolume { id: String name: String size: Int dataCenterId: String }
type PodTemplate {
  id: String! name: String imageName: String dockerArgs: String containerDiskInGb: Int
  volumeInGb: Int volumeMountPath: String ports: String env: [EnvironmentVariable]
  isServerless: Boolean readme: String
}
type Endpoint {
  id: String! name: String templateId: String gpuIds: String networkVolumeId: String
  locations: String idleTimeout: Int scalerType: String scalerValue: Int workersMin: Int
  workersMax: Int workersStandby: Int allowedCudaVersions: String gpuCount: Int
  flashBootType: FlashBootType aiKey: String type: String userId: String version: Int
  createdAt: String env: [EnvironmentVariable] networkVolume: NetworkVolume
  template: PodTemplate
}
type User {
  id: String pubKey: String pods: [Pod] endpoints: [Endpoint] podTemplates: [PodTemplate]
  networkVolumes: [NetworkVolume]
}
type Query {
  myself: User
  pod(input: PodFilter): Pod
  gpuTypes(input: GpuTypeFilter): [GpuType]
}
type Mutation {
  podFindAndDeployOnDemand(input: PodFindAndDeployOnDemandInput): Pod
  podRentInterruptable(input: PodRentInterruptableInput!): Pod
  podStop(input: PodStopInput!): Pod
  podResume(input: PodResumeInput!): Pod
  podBidResume(input: PodBidResumeInput!): Pod
  podTerminate(input: PodTerminateInput!): Void
  saveEndpoint(input: EndpointInput!): Endpoint
  deleteEndpoint(id: String!): Void
  saveTemplate(input: SaveTemplateInput): PodTemplate
  deleteTemplate(templateName: String!): Void
}
"""

# Prices of the fake: test data shaped like the real API, not a price catalog.
DEFAULT_GPU_TYPES = [
    {"id": "NVIDIA GeForce RTX 4090", "displayName": "RTX 4090", "memoryInGb": 24,
     "securePrice": 0.69, "communityPrice": 0.60, "secureSpotPrice": 0.39,
     "communitySpotPrice": 0.34, "maxGpuCount": 8},
    {"id": "NVIDIA A100 80GB PCIe", "displayName": "A100 PCIe", "memoryInGb": 80,
     "securePrice": 2.45, "communityPrice": 2.10, "secureSpotPrice": 1.39,
     "communitySpotPrice": 1.19, "maxGpuCount": 8},
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM", "memoryInGb": 80,
     "securePrice": 4.76, "communityPrice": 3.51, "secureSpotPrice": 2.69,
     "communitySpotPrice": 1.99, "maxGpuCount": 8},
]

DEFAULTS = {
    "api_key": "test-key",
    "created_delay": 0.2,
    "running_delay": 0.5,
    "delay_by_image": {},
    "delay_by_name": {},
    "never_running": False,
    "never_running_images": [],
    "capacity": {},
    "fail_next": [],
    "gpu_types": DEFAULT_GPU_TYPES,
    # Base URL of a real OpenAI-compatible server that stands in for the pod's vLLM (see
    # _workload.py); null: the proxy answers /v1/models only.
    "upstream": None,
    "clock_scale": None,
    "resume_delay": None,
    "resume_refused": [],
    "volume_usd_per_gb_month_stopped": 0.20,
    "disk_usd_per_gb_month_running": 0.10,
    "catalog_prices": None,
}
DEFAULTS.update(runpod_serverless.DEFAULTS)   # serverless workers, billing, clock


def prices_from_catalog(config, catalog):
    """``config`` (the fake's settings) with the catalog's prices (see ``catalog_prices``)."""
    offers, scaling = catalog_offers(catalog)
    types = []
    for gpu in config["gpu_types"]:
        gpu = dict(gpu)
        for pricing, community, secure in (("on_demand", "communityPrice", "securePrice"),
                                           ("spot", "communitySpotPrice", "secureSpotPrice")):
            price = catalog_price(offers, "runpod", gpu["id"], pricing)
            if price is not None:
                gpu[community] = price
                gpu[secure] = max([price] + [float(o["price_per_hour"]) for o in offers
                                             if o["provider"] == "runpod" and o["pricing"] == pricing
                                             and o["provider_gpu_id"] == gpu["id"]])
        types.append(gpu)
    config["gpu_types"] = types
    disks = scaling.get("runpod") or {}
    if disks:
        config["disk_usd_per_gb_month_running"] = float(disks["storage_running_usd_per_gb_month"])
        config["volume_usd_per_gb_month_stopped"] = float(disks["storage_stopped_usd_per_gb_month"])
    serverless = dict(config["serverless_prices"])
    for offer in offers:
        if offer["provider"] == "runpod_serverless":
            serverless[offer["provider_gpu_id"]] = float(offer["price_per_hour"]) / 3600.0
    config["serverless_prices"] = serverless
    return config


def _err(message, code):
    return GraphQLError(message, extensions={"code": code})


class RunPodFake:
    """The fake API. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(self, host="127.0.0.1", port=0, **config):
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.config = json.loads(json.dumps(DEFAULTS))
        self.pods = {}
        self.endpoints = {}
        self.templates = {}
        self.terminated_cost = 0.0
        self.counters = {"graphql": 0, "unauthorized": 0, "injected": {}, "operations": {}}
        self.request_times = []
        self.history = []
        self.schema = build_schema(SDL)
        self.clock = SimClock(config.pop("clock_scale", None))
        self.ledger = Ledger(self.clock)
        self.serverless = runpod_serverless.Serverless(self)
        self.configure(**config)
        # one scale for the pods' clock and the serverless workers (runpod_serverless reads it)
        self.config["clock_scale"] = self.clock.scale
        self._server = None
        self._thread = None

    # -------------------------------------------------------------- lifecycle
    def start(self):
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
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
        return "http://%s:%d" % (self.host, self.port)

    @property
    def proxy_template(self):
        """The module option ``proxy_url_template`` that points at this fake."""
        return self.url + "/_proxy/{pod_id}/{port}"

    @property
    def openai_template(self):
        """The ``openai_url_template`` of runpod_endpoint that points at this fake's
        serverless route."""
        return self.url + "/v2/{endpoint_id}/openai/v1"

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
                self.config[key] = value
            if config.get("catalog_prices"):
                prices_from_catalog(self.config, config["catalog_prices"])
            if preempt:
                self.preempt(preempt)

    def take_fault(self, body):
        """The next injected failure that applies to this request, removed from the queue."""
        fields = None
        for index, fault in enumerate(self.config["fail_next"]):
            if fault.get("operation"):
                if fields is None:
                    fields = _top_fields((body or {}).get("query") or "")
                if fault["operation"] not in fields:
                    continue
            return self.config["fail_next"].pop(index)
        return None

    def preempt(self, pod_id="all"):
        with self.lock:
            now = self.clock.now()
            for pod in self.pods.values():
                if pod["podType"] != "INTERRUPTABLE" or pod["desiredStatus"] != "RUNNING":
                    continue
                if pod_id in ("all", pod["id"]):
                    self._account(pod, now)
                    self._bill_stopped(pod, now)
                    pod["desiredStatus"] = "EXITED"
                    pod["lastStatusChange"] = PREEMPTED_STATUS
                    pod["preempted"] = True
                    self._release(pod)

    def snapshot(self):
        """Live resources, counters and cost, as returned by ``GET /_control``."""
        with self.lock:
            now = self.clock.now()
            pods = []
            running_cost = 0.0
            for pod in self.pods.values():
                view = self._pod_view(pod, now)
                cost = pod["cost_accum"] + self._running_seconds(pod, now) * pod["costPerHr"] / 3600.0
                running_cost += cost
                view["accumulated_cost_usd"] = round(cost, 6)
                view["phase"] = self._phase(pod, now)
                pods.append(view)
            return {
                "pods": pods,
                "endpoints": [dict(e) for e in self.endpoints.values()],
                "templates": [dict(t) for t in self.templates.values()],
                "live_pods": len(pods),
                "live_endpoints": len(self.endpoints),
                "cost_per_hr": round(sum(p["costPerHr"] for p in self.pods.values()
                                         if p["desiredStatus"] == "RUNNING"), 6),
                "accumulated_cost_usd": round(running_cost + self.terminated_cost, 6),
                "counters": json.loads(json.dumps(self.counters)),
                "request_times": list(self.request_times),
                "history": list(self.history),
                "ledger": self.ledger.view(),
                "clock_scale": self.clock.scale,
                "serverless": self.serverless.ledger(),
            }

    # -------------------------------------------------------------- pod model
    def _delay(self, pod):
        if pod.get("resumed") and self.config["resume_delay"] is not None:
            return self.config["resume_delay"]
        for fragment, delay in self.config["delay_by_name"].items():
            if fragment in (pod["name"] or ""):
                return delay
        return self.config["delay_by_image"].get(pod["imageName"], self.config["running_delay"])

    def _never(self, pod):
        return self.config["never_running"] or pod["imageName"] in self.config["never_running_images"]

    def _phase(self, pod, now):
        if pod["desiredStatus"] != "RUNNING":
            return pod["desiredStatus"].lower()
        age = now - pod["started_at"]
        if age < self.config["created_delay"]:
            return "created"
        if self._never(pod) or age < self.config["created_delay"] + self._delay(pod):
            return "loading"
        if pod.get("ready_at") is None:
            pod["ready_at"] = pod["started_at"] + self.config["created_delay"] + self._delay(pod)
            self.history.append({"event": "ready", "pod": pod["id"], "at": pod["ready_at"]})
        return "running"

    @staticmethod
    def _running_seconds(pod, now):
        return max(0.0, now - pod["started_at"]) if pod["desiredStatus"] == "RUNNING" else 0.0

    def _account(self, pod, now):
        pod["cost_accum"] += self._running_seconds(pod, now) * pod["costPerHr"] / 3600.0

    def _running_rate(self, pod):
        disk_gb = float(pod["volumeInGb"] or 0) + float(pod["containerDiskInGb"] or 0)
        return pod["costPerHr"] + disk_gb * self.config["disk_usd_per_gb_month_running"] / HOURS_PER_MONTH

    def _bill_running(self, pod, now):
        self.ledger.start(pod["id"], "gpu", self._running_rate(pod), now)

    def _bill_stopped(self, pod, now):
        rate = float(pod["volumeInGb"] or 0) * self.config["volume_usd_per_gb_month_stopped"] / HOURS_PER_MONTH
        self.ledger.start(pod["id"], "storage", rate, now)
        self.history.append({"event": "stopped", "pod": pod["id"], "at": now})

    def _refused(self, pod):
        refused = self.config["resume_refused"]
        if refused == "all" or "all" in refused:
            return True
        return any(item == pod["id"] or (item and item in (pod["name"] or "")) for item in refused)

    def _release(self, pod):
        cap = self.config["capacity"]
        if pod["gpuTypeId"] in cap:
            cap[pod["gpuTypeId"]] += pod["gpuCount"]

    def _claim(self, gpu_type_id, count, message=CAPACITY_MESSAGE):
        cap = self.config["capacity"]
        if gpu_type_id in cap:
            if cap[gpu_type_id] < count:
                raise _err(message, "SUPPLY_CONSTRAINT")
            cap[gpu_type_id] -= count

    def _gpu(self, gpu_type_id):
        for gpu in self.config["gpu_types"]:
            if gpu["id"] == gpu_type_id:
                return gpu
        raise _err("There are no GPU types matching %r." % gpu_type_id, "BAD_USER_INPUT")

    def _pod_view(self, pod, now):
        phase = self._phase(pod, now)
        view = {k: v for k, v in pod.items()
                if k not in ("started_at", "ready_at", "cost_accum", "gpuTypeId", "preempted",
                             "bidPerGpu", "served_at", "resumed")}
        view["machine"] = {"podHostId": pod["id"] + "-host", "gpuDisplayName":
                           self._gpu(pod["gpuTypeId"]).get("displayName"),
                           "gpuTypeId": pod["gpuTypeId"], "dataCenterId": pod["dataCenterId"]}
        view["runtime"] = None
        view["uptimeSeconds"] = 0
        if phase == "running":
            uptime = int(now - pod["ready_at"])
            view["uptimeSeconds"] = uptime
            ports = []
            for spec in (pod["ports"] or "").split(","):
                if not spec:
                    continue
                number, _sep, kind = spec.partition("/")
                ports.append({"ip": "100.65.0.%d" % (len(ports) + 2), "isIpPublic": kind == "tcp",
                              "privatePort": int(number),
                              "publicPort": int(number) if kind == "http" else 40000 + len(ports),
                              "type": kind or "http"})
            view["runtime"] = {"uptimeInSeconds": uptime, "ports": ports,
                               "container": {"cpuPercent": 1, "memoryPercent": 2}}
        return view

    def _deploy(self, data, spot):
        gpu_type_id = data.get("gpuTypeId")
        if not gpu_type_id:
            raise _err("gpuTypeId is required", "BAD_USER_INPUT")
        if not data.get("imageName") and not data.get("templateId"):
            raise _err("imageName or templateId is required", "BAD_USER_INPUT")
        gpu = self._gpu(gpu_type_id)
        count = data.get("gpuCount") or 1
        cloud = data.get("cloudType") or "ALL"
        if spot:
            price = gpu["secureSpotPrice"] if cloud == "SECURE" else gpu["communitySpotPrice"]
            if data["bidPerGpu"] < price:
                raise _err("Your bid price is lower than the minimum bid price (%.2f)." % price,
                           "BAD_USER_INPUT")
            cost = data["bidPerGpu"] * count
        else:
            cost = (gpu["securePrice"] if cloud == "SECURE" else gpu["communityPrice"]) * count
        self._claim(gpu_type_id, count)
        pod_id = uuid.uuid4().hex[:14]
        env = ["%s=%s" % (e["key"], e.get("value") or "") for e in data.get("env") or []]
        pod = {
            "id": pod_id, "name": data.get("name") or pod_id, "imageName": data.get("imageName"),
            "env": env, "machineId": "m-" + pod_id[:8], "desiredStatus": "RUNNING",
            "lastStatusChange": "Rented by User: %s" % time.strftime("%a %b %d %Y %H:%M:%S"),
            "costPerHr": round(cost, 4), "adjustedCostPerHr": round(cost, 4), "gpuCount": count,
            "vcpuCount": float(data.get("minVcpuCount") or 8),
            "memoryInGb": float(data.get("minMemoryInGb") or 32),
            "volumeInGb": float(data.get("volumeInGb") or 0),
            "containerDiskInGb": data.get("containerDiskInGb") or 10,
            "volumeMountPath": data.get("volumeMountPath") or "/workspace",
            "dockerArgs": data.get("dockerArgs") or "", "dockerId": None,
            "ports": (data.get("ports") or "").replace(" ", ""), "port": None,
            "podType": "INTERRUPTABLE" if spot else "RESERVED",
            "dataCenterId": data.get("dataCenterId") or "EU-RO-1",
            "gpuTypeId": gpu_type_id, "bidPerGpu": data.get("bidPerGpu"),
            "started_at": self.clock.now(), "ready_at": None, "cost_accum": 0.0, "preempted": False,
        }
        self.pods[pod_id] = pod
        self._bill_running(pod, pod["started_at"])
        # What the container was started with (secrets stay out: env by name only).
        self.history.append({"event": "created", "pod": pod_id, "at": pod["started_at"],
                             "image": pod["imageName"], "docker_args": pod["dockerArgs"],
                             "volume_gb": pod["volumeInGb"], "container_disk_gb": pod["containerDiskInGb"],
                             "volume_mount_path": pod["volumeMountPath"],
                             "env_names": sorted(e.split("=", 1)[0] for e in env)})
        return self._pod_view(pod, self.clock.now())

    def _find_pod(self, pod_id):
        pod = self.pods.get(pod_id)
        if pod is None:
            raise _err("pod not found", "NOT_FOUND")
        return pod

    def _resume(self, data, bid):
        pod = self._find_pod(data["podId"])
        if (pod["podType"] == "INTERRUPTABLE") != bid:
            raise _err("Use %s to resume this pod." % ("podBidResume" if not bid else "podResume"),
                       "BAD_USER_INPUT")
        if pod["desiredStatus"] != "RUNNING":
            now = self.clock.now()
            if self._refused(pod):
                self.history.append({"event": "resume_refused", "pod": pod["id"], "at": now})
                # What RunPod answers (runpod-python issue 168): a GraphQL error, no code.
                raise GraphQLError(HOST_CAPACITY_MESSAGE)
            self._claim(pod["gpuTypeId"], pod["gpuCount"], HOST_CAPACITY_MESSAGE)
            pod["desiredStatus"] = "RUNNING"
            pod["started_at"] = now
            pod["ready_at"] = None
            pod["served_at"] = None
            pod["resumed"] = True
            pod["preempted"] = False
            pod["lastStatusChange"] = "Resumed by User"
            if bid:
                pod["costPerHr"] = round(data["bidPerGpu"] * pod["gpuCount"], 4)
            self._bill_running(pod, now)
            self.history.append({"event": "resumed", "pod": pod["id"], "at": now})
        return self._pod_view(pod, self.clock.now())

    # -------------------------------------------------------------- resolvers
    def _resolvers(self):
        fake = self

        def pods_view():
            now = fake.clock.now()
            return [fake._pod_view(p, now) for p in fake.pods.values()]

        def endpoint_view(endpoint):
            view = dict(endpoint)
            view["template"] = fake.templates.get(endpoint["templateId"])
            view["env"] = (view["template"] or {}).get("env") or []
            return view

        class Root:
            @staticmethod
            def myself(_info):
                return {"id": "user-fake", "pubKey": "", "pods": pods_view(),
                        "endpoints": [endpoint_view(e) for e in fake.endpoints.values()],
                        "podTemplates": list(fake.templates.values()), "networkVolumes": []}

            @staticmethod
            def pod(_info, input=None):  # noqa: A002  pylint: disable=redefined-builtin
                pod = fake.pods.get((input or {}).get("podId"))
                return fake._pod_view(pod, fake.clock.now()) if pod else None

            @staticmethod
            def gpuTypes(_info, input=None):  # noqa: N802,A002  pylint: disable=redefined-builtin
                wanted = None
                if input and input.get("id"):
                    wanted = {input["id"]}
                elif input and input.get("ids"):
                    wanted = set(input["ids"])
                out = []
                for gpu in fake.config["gpu_types"]:
                    if wanted is not None and gpu["id"] not in wanted:
                        continue
                    out.append(_GpuTypeView(gpu, fake.config["capacity"]))
                return out

            @staticmethod
            def podFindAndDeployOnDemand(_info, input=None):  # noqa: N802,A002  pylint: disable=redefined-builtin
                return fake._deploy(input or {}, spot=False)

            @staticmethod
            def podRentInterruptable(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                return fake._deploy(input, spot=True)

            @staticmethod
            def podStop(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                pod = fake._find_pod(input["podId"])
                now = fake.clock.now()
                if pod["desiredStatus"] == "RUNNING":
                    fake._account(pod, now)
                    pod["desiredStatus"] = "EXITED"
                    pod["lastStatusChange"] = "Exited by User"
                    fake._release(pod)
                    fake._bill_stopped(pod, now)
                return fake._pod_view(pod, now)

            @staticmethod
            def podResume(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                return fake._resume(input, bid=False)

            @staticmethod
            def podBidResume(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                return fake._resume(input, bid=True)

            @staticmethod
            def podTerminate(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                pod = fake.pods.get(input["podId"])
                if pod is None:
                    raise _err("pod not found to terminate", "NOT_FOUND")
                now = fake.clock.now()
                fake._account(pod, now)
                if pod["desiredStatus"] == "RUNNING":
                    fake._release(pod)
                fake.ledger.stop(pod["id"], now)
                fake.terminated_cost += pod["cost_accum"]
                del fake.pods[pod["id"]]
                fake.history.append({"event": "terminated", "pod": pod["id"], "at": now})
                return None

            @staticmethod
            def saveEndpoint(_info, input):  # noqa: N802,A002  pylint: disable=redefined-builtin
                if input.get("scalerType", "QUEUE_DELAY") not in ("QUEUE_DELAY", "REQUEST_COUNT"):
                    raise _err("scalerType must be QUEUE_DELAY or REQUEST_COUNT", "BAD_USER_INPUT")
                if input["templateId"] not in fake.templates and not input["templateId"].startswith("pub-"):
                    raise _err("Template not found", "BAD_USER_INPUT")
                endpoint_id = input.get("id")
                if endpoint_id:
                    if endpoint_id not in fake.endpoints:
                        raise _err("Endpoint not found", "NOT_FOUND")
                    endpoint = fake.endpoints[endpoint_id]
                else:
                    endpoint_id = uuid.uuid4().hex[:14]
                    endpoint = {"id": endpoint_id, "userId": "user-fake", "version": 0,
                                "type": "SERVERLESS", "aiKey": None, "workersStandby": 0,
                                "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "networkVolume": None, "idleTimeout": 5,
                                "scalerType": "QUEUE_DELAY", "scalerValue": 4, "workersMin": 0,
                                "workersMax": 3, "locations": "", "networkVolumeId": "",
                                "allowedCudaVersions": "", "gpuCount": 1, "flashBootType": "OFF"}
                    fake.endpoints[endpoint_id] = endpoint
                for key, value in input.items():
                    if key != "id" and value is not None:
                        endpoint[key] = value
                endpoint["version"] += 1
                return endpoint_view(endpoint)

            @staticmethod
            def deleteEndpoint(_info, id):  # noqa: N802,A002  pylint: disable=redefined-builtin
                endpoint = fake.endpoints.get(id)
                if endpoint is None:
                    raise _err("Endpoint not found", "NOT_FOUND")
                if endpoint.get("workersMin"):
                    raise _err("Endpoint has active workers: set workersMin to 0 first",
                               "BAD_USER_INPUT")
                fake.serverless.forget(id)   # running workers are billed up to now
                del fake.endpoints[id]
                return None

            @staticmethod
            def saveTemplate(_info, input=None):  # noqa: N802,A002  pylint: disable=redefined-builtin
                data = dict(input or {})
                template_id = data.pop("id", None)
                if template_id and template_id not in fake.templates:
                    raise _err("Template not found", "NOT_FOUND")
                if not template_id:
                    for tpl in fake.templates.values():
                        if tpl["name"] == data["name"]:
                            raise _err("Template name must be unique", "BAD_USER_INPUT")
                    template_id = uuid.uuid4().hex[:10]
                    fake.templates[template_id] = {"id": template_id}
                tpl = fake.templates[template_id]
                for key in ("containerRegistryAuthId", "startSsh", "isPublic"):
                    data.pop(key, None)
                tpl.update(data)
                tpl["env"] = [{"key": e["key"], "value": e.get("value")}
                              for e in data.get("env") or []]
                return tpl

            @staticmethod
            def deleteTemplate(_info, templateName):  # noqa: N802,N803  pylint: disable=invalid-name
                for tpl_id, tpl in list(fake.templates.items()):
                    if tpl["name"] == templateName:
                        if any(e["templateId"] == tpl_id for e in fake.endpoints.values()):
                            raise _err("Template is in use by an endpoint", "BAD_USER_INPUT")
                        del fake.templates[tpl_id]
                        return None
                raise _err("Template not found", "NOT_FOUND")

        return Root

    def execute(self, body):
        """Run one GraphQL request body; returns the response dict."""
        query = body.get("query")
        if not isinstance(query, str):
            return {"errors": [{"message": "Must provide query string."}]}
        with self.lock:
            root = self._resolvers()
            result = graphql_sync(self.schema, query, root_value=root,
                                  field_resolver=_field_resolver,
                                  variable_values=body.get("variables"),
                                  operation_name=body.get("operationName"))
            for field in _top_fields(query):
                self.counters["operations"][field] = self.counters["operations"].get(field, 0) + 1
        out = {"data": result.data}
        if result.errors:
            out["errors"] = [err.formatted for err in result.errors]
        return out


class _GpuTypeView(dict):
    def __init__(self, gpu, capacity):
        super().__init__(gpu)
        self.setdefault("manufacturer", "Nvidia")
        self.setdefault("cudaCores", 0)
        self.setdefault("secureCloud", True)
        self.setdefault("communityCloud", True)
        for key in ("oneMonthPrice", "threeMonthPrice", "oneWeekPrice"):
            self.setdefault(key, None)
        self._capacity = capacity.get(gpu["id"])
        self["lowestPrice"] = self.lowest_price

    def lowest_price(self, _info, input=None):  # noqa: N802,A002  pylint: disable=redefined-builtin
        count = (input or {}).get("gpuCount") or 1
        stock = "High"
        if self._capacity is not None:
            stock = "None" if self._capacity < count else ("Low" if self._capacity < 2 * count else "High")
        return {"gpuName": self["displayName"], "gpuTypeId": self["id"],
                "minimumBidPrice": self["communitySpotPrice"],
                "uninterruptablePrice": self["communityPrice"], "minMemory": 16, "minVcpu": 4,
                "stockStatus": stock}


def _top_fields(query):
    try:
        doc = parse(query)
    except GraphQLError:
        return []
    names = []
    for definition in doc.definitions:
        for sel in getattr(getattr(definition, "selection_set", None), "selections", []) or []:
            names.append(sel.name.value)
    return names


def _field_resolver(source, info, **args):
    """Dicts are data; callables (root resolvers, ``lowestPrice``) get ``(info, **args)``."""
    if isinstance(source, dict):
        value = source.get(info.field_name)
    else:
        value = getattr(source, info.field_name, None)
    if callable(value):
        return value(info, **args)
    return value


class _Handler(JsonHandler):
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self._raw = raw  # pylint: disable=attribute-defined-outside-init
        try:
            return json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            return None

    def do_GET(self):  # noqa: N802
        if runpod_serverless.handle(self, self.fake, None):
            return None
        if self.path.rstrip("/") == "/_control":
            return self._send(200, self.fake.snapshot())
        if self.path.startswith("/_proxy/"):
            return self._proxy()
        return self._send(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        fake = self.fake
        body = self._body()
        if self.path.rstrip("/") == "/_control":
            try:
                fake.configure(**(body or {}))
            except (TypeError, ValueError) as exc:
                return self._send(400, {"error": str(exc)})
            return self._send(200, {"ok": True})
        if self.path.startswith("/_proxy/"):
            return self._proxy()
        if self.path.startswith("/v2/") and runpod_serverless.handle(self, fake, self._raw):
            return None
        if self.path.split("?")[0].rstrip("/") != "/graphql":
            return self._send(404, {"error": "not found"})
        with fake.lock:
            fake.counters["graphql"] += 1
            fake.request_times.append(time.time())
            auth = self.headers.get("Authorization") or ""
            if auth != "Bearer %s" % fake.config["api_key"]:
                fake.counters["unauthorized"] += 1
                return self._send(401, {"error": "Unauthorized"})
            injected = fake.take_fault(body)
            if injected:
                status = int(injected.get("status", 503))
                key = str(status)
                fake.counters["injected"][key] = fake.counters["injected"].get(key, 0) + 1
        if injected:
            if injected.get("after_processing") and body is not None:
                # The request takes effect but its answer is lost (a gateway 502/504).
                fake.execute(body)
            headers = {}
            if injected.get("retry_after") is not None:
                headers["Retry-After"] = str(injected["retry_after"])
            message = "Too Many Requests" if status == 429 else "Service Unavailable"
            return self._send(status, {"error": message}, headers)
        if body is None:
            return self._send(400, {"errors": [{"message": "Body is not valid JSON"}]})
        return self._send(200, fake.execute(body))

    def _proxy(self):
        parts = self.path.split("/", 4)
        pod_id = parts[2] if len(parts) > 2 else ""
        port = parts[3] if len(parts) > 3 else ""
        rest = "/" + (parts[4] if len(parts) > 4 else "")
        fake = self.fake
        # do_POST has read the body already (it parses every request's JSON first).
        body = getattr(self, "_raw", None) if self.command == "POST" else None
        with fake.lock:
            pod = fake.pods.get(pod_id)
            now = fake.clock.now()
            running = pod is not None and fake._phase(pod, now) == "running"
            exposed = pod is not None and ("%s/http" % port) in (pod["ports"] or "").split(",")
            if running and exposed and not pod.get("served_at"):
                pod["served_at"] = now
                fake.history.append({"event": "served", "pod": pod_id, "at": pod["served_at"]})
            upstream = fake.config["upstream"]
            api_key = _workload.env_value(pod["env"], "VLLM_API_KEY") if pod is not None else None
            name = _workload.served_model_name(pod["dockerArgs"], pod["name"]) if pod is not None else ""
        if not running or not exposed:
            return self._send(502, {"error": "pod not ready"})
        return _workload.serve(self, self.command, rest, upstream, api_key, name, body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULTS["api_key"])
    parser.add_argument("--running-delay", type=float, default=5.0)
    args = parser.parse_args()
    fake = RunPodFake(args.host, args.port, api_key=args.api_key,
                      running_delay=args.running_delay).start()
    print("RunPod fake on %s (GraphQL at /graphql, control at /_control)" % fake.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
