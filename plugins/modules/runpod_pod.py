#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: runpod_pod
short_description: Create, start, stop and terminate RunPod GPU pods of a stack
version_added: 0.1.0
description:
  - Manages one RunPod GPU pod, on demand or spot (interruptible, with a bid per GPU), through
    the RunPod GraphQL API. All values are sent as GraphQL variables.
  - A pod is identified by O(name) within O(stack_id). RunPod pods have no labels, so the pod is
    named C(<stack_id>--<name>) and carries the environment variable C(CODESTACK_STACK_ID).
    A second run with the same arguments changes nothing.
  - With O(wait=true) the module waits until the container runs and its HTTP health port
    answers through the RunPod proxy. When the wait times out on a pod created by this run, the
    pod is terminated (no paid orphan) and the module fails with the provider's last status.
    With O(wait=false), a pod that already ran and that this call left unchanged is looked at
    once (its status and health port, no waiting), so that RV(runpod_pod.ready) tells a caller
    whether a wait would be needed.
  - When RunPod has no GPU of the requested type, the module fails with C(capacity_error=true)
    so that a playbook can fall back to the next offer (see role C(llmops.codestack.gpu_provision)).
  - A spot pod found stopped while it should run is reported with C(runpod_pod.preempted=true)
    and a warning; O(state=started) bids again to resume it.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.runpod
  - llmops.codestack.wait
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description: Name of the pod within the stack.
    type: str
    required: true
  stack_id:
    description:
      - Stack the pod belongs to (the plan's C(stack_id)). Must not contain C(--).
    type: str
    required: true
  state:
    description:
      - V(present) creates the pod if missing (and starts it); an existing pod is left as it is.
      - V(started) also resumes a stopped or preempted pod.
      - V(stopped) stops the pod (creating it first if missing); a stopped pod keeps its disk.
      - V(absent) terminates the pod.
    type: str
    choices: [present, started, stopped, absent]
    default: present
  image:
    description: Container image. Required to create a pod.
    type: str
  docker_args:
    description: Arguments passed to the container (for vLLM, C(--model ... --port 8000)).
    type: str
    default: ""
  env:
    description: Environment variables of the container. Values are compared on later runs.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables holding secrets (Hugging Face token, vLLM API key). Never logged
        nor returned; not compared on later runs.
    type: dict
    default: {}
  ports:
    description: Exposed ports, such as V(8000/http) or V(22/tcp).
    type: list
    elements: str
    default: ["8000/http"]
  container_disk_gb:
    description: Container disk in GB.
    type: int
    default: 20
  volume_gb:
    description: Pod volume in GB (kept while the pod is stopped).
    type: int
    default: 0
  volume_mount_path:
    description: Where the pod volume is mounted.
    type: str
    default: /workspace
  cloud_type:
    description: RunPod cloud to rent from.
    type: str
    choices: [ALL, SECURE, COMMUNITY]
    default: ALL
  data_center_id:
    description: Data centre to rent in, for example V(EU-RO-1). Any when not set.
    type: str
  gpu_type_id:
    description: RunPod GPU type id, for example V(NVIDIA GeForce RTX 4090). Required to create a pod.
    type: str
  gpu_count:
    description: Number of GPUs.
    type: int
    default: 1
  min_vcpu_count:
    description: Minimum vCPUs of the host.
    type: int
  min_memory_gb:
    description: Minimum host memory in GB.
    type: int
  interruptible:
    description:
      - Rent a spot (interruptible) pod with a bid of O(bid_per_gpu) USD/hour per GPU.
        Spot pods are cheaper and can be stopped by RunPod at any time.
    type: bool
    default: false
  bid_per_gpu:
    description: Bid in USD per GPU and hour for a spot pod. Required when O(interruptible=true).
    type: float
  health_port:
    description:
      - HTTP port that must answer before the pod counts as ready. Defaults to the first
        C(/http) entry of O(ports); with no HTTP port only the container state is waited for.
    type: int
  health_path:
    description:
      - Path requested on O(health_port). Any HTTP answer below 500 counts as ready (the proxy
        answers 5xx while nothing listens); use V(/health) for vLLM.
    type: str
    default: /
  proxy_url_template:
    description:
      - Public URL of a pod's HTTP port, with C({pod_id}) and C({port}) placeholders.
      - Tests point it at a local fake.
    type: str
    default: https://{pod_id}-{port}.proxy.runpod.net
  recreate:
    description:
      - When an existing pod differs from the options (image, arguments, GPU count, ports,
        disks, environment, spot), terminate it and create a new one. Otherwise the differences
        are only reported as a warning (RunPod cannot change these on a pod in place).
    type: bool
    default: false
seealso:
  - module: llmops.codestack.runpod_info
  - module: llmops.codestack.runpod_endpoint
  - name: RunPod GraphQL API
    description: Pods and spot instances through GraphQL.
    link: https://docs.runpod.io/sdks/graphql/manage-pods
"""

EXAMPLES = r"""
- name: Serve a coder model on a spot RTX 4090
  llmops.codestack.runpod_pod:
    name: coder
    stack_id: codestack-shop
    image: vllm/vllm-openai:v0.32.0
    docker_args: --model Qwen/Qwen2.5-Coder-7B-Instruct-AWQ --quantization awq --port 8000
    gpu_type_id: NVIDIA GeForce RTX 4090
    interruptible: true
    bid_per_gpu: 0.35
    ports: ["8000/http"]
    health_path: /health
    secret_env:
      HF_TOKEN: "{{ hf_token }}"
    wait_timeout: 1200
  register: coder

- name: Fall back when RunPod has no capacity
  ansible.builtin.debug:
    msg: "no RTX 4090 left, try the next offer"
  when: coder is failed and coder.capacity_error | default(false)

- name: Stop it for the night (the volume is kept)
  llmops.codestack.runpod_pod:
    name: coder
    stack_id: codestack-shop
    state: stopped

- name: Terminate it
  llmops.codestack.runpod_pod:
    name: coder
    stack_id: codestack-shop
    state: absent
"""

RETURN = r"""
runpod_pod:
  description: The pod after the change (in check mode, what it would be).
  returned: success, and on wait failure
  type: dict
  contains:
    id:
      description: RunPod pod id (null in check mode before creation).
      type: str
      sample: 3kd8s0x1p2qz9a
    name:
      description: Name within the stack.
      type: str
      sample: coder
    remote_name:
      description: Name at RunPod, C(<stack_id>--<name>).
      type: str
      sample: codestack-shop--coder
    stack_id:
      description: Stack id.
      type: str
      sample: codestack-shop
    status:
      description: RunPod C(desiredStatus) (V(RUNNING), V(EXITED), ...); V(absent) once terminated.
      type: str
      sample: RUNNING
    ready:
      description:
        - Whether the container runs and the health port answered.
        - With O(wait=false), from one look at a pod that already ran and was left unchanged;
          V(false) for a pod this call created, changed or started.
      type: bool
      sample: true
    cost_per_hr:
      description: Price of the pod in USD per hour as reported by RunPod.
      type: float
      sample: 0.34
    interruptible:
      description: Whether it is a spot pod.
      type: bool
      sample: true
    preempted:
      description: A spot pod that RunPod stopped while it should have been running.
      type: bool
      sample: false
    gpu_count:
      description: Number of GPUs.
      type: int
      sample: 1
    gpu_display_name:
      description: GPU model of the host.
      type: str
      sample: RTX 4090
    image:
      description: Container image.
      type: str
      sample: vllm/vllm-openai:v0.32.0
    ports:
      description: Exposed ports.
      type: list
      elements: str
      sample: ["8000/http"]
    urls:
      description: Public proxy URL of each HTTP port, keyed by port number.
      type: dict
      sample: {"8000": "https://3kd8s0x1p2qz9a-8000.proxy.runpod.net"}
    tcp_ports:
      description: Public address of each TCP port once the container runs.
      type: list
      elements: dict
      sample: [{"private_port": 22, "ip": "203.0.113.7", "public_port": 40122}]
    uptime_seconds:
      description: Container uptime.
      type: int
      sample: 120
    last_status_change:
      description: RunPod's last status message.
      type: str
      sample: "Rented by User: Sun Nov 22 2026 08:00:00"
progress:
  description: One line per poll while waiting (shown with C(-v)).
  returned: when the module waited
  type: list
  elements: str
  sample: ["3s: loading (container not started yet)", "41s: ready"]
capacity_error:
  description: True when the failure is RunPod running out of the requested GPUs; fall back.
  returned: failure
  type: bool
  sample: true
last_status:
  description: The provider's last status when a wait failed.
  returned: failure while waiting
  type: str
  sample: "desiredStatus=RUNNING, container not started (runtime null)"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._runpod import (
    DEFAULT_PROXY_URL_TEMPLATE,
    RUNPOD_AUTH_SPEC,
    SEPARATOR,
    STACK_ENV,
    CapacityError,
    client_from_module,
    pod_env,
    remote_name,
)
from ansible_collections.llmops.codestack.plugins.module_utils._wait import WaitTimeout, wait_for


def _http_answers(url, timeout=5):
    """The HTTP status of ``url`` (any status, error pages included), or None."""
    try:
        resp = open_url(url, method="GET", timeout=timeout, validate_certs=True)
        return resp.getcode()
    except Exception as exc:  # pylint: disable=broad-except
        return getattr(exc, "code", None)


class RunPodPod:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = client_from_module(module)
        self.remote_name = remote_name(self.params["stack_id"], self.params["name"])
        self.changed = False
        self.created = False
        self.created_id = None
        self.preempted = False
        self.progress = []
        self.pod = None
        self.before = None

    # ------------------------------------------------------------ helpers
    def _wanted(self):
        """User-set fields in the shape RunPod returns them (for diff and drift)."""
        p = self.params
        wanted = {
            "image": p["image"],
            "docker_args": p["docker_args"],
            "gpu_count": p["gpu_count"],
            "ports": ",".join(p["ports"]),
            "container_disk_gb": p["container_disk_gb"],
            "volume_gb": p["volume_gb"],
            "interruptible": p["interruptible"],
            "env": dict((k, str(v)) for k, v in p["env"].items()),
        }
        return dict((k, v) for k, v in wanted.items() if v is not None)

    @staticmethod
    def _observed(pod):
        env = pod_env(pod)
        return {
            "image": pod.get("imageName"),
            "docker_args": pod.get("dockerArgs") or "",
            "gpu_count": pod.get("gpuCount"),
            "ports": (pod.get("ports") or "").replace(" ", ""),
            "container_disk_gb": pod.get("containerDiskInGb"),
            "volume_gb": int(pod.get("volumeInGb") or 0),
            "interruptible": pod.get("podType") == "INTERRUPTABLE",
            "env": env,
        }

    def _drift(self, pod):
        observed = self._observed(pod)
        drift = []
        for key, value in self._wanted().items():
            if key == "env":
                if any(observed["env"].get(k) != v for k, v in value.items()):
                    drift.append(key)
            elif observed.get(key) != value:
                drift.append(key)
        return drift

    def _state_view(self, pod):
        if pod is None:
            return {"state": "absent"}
        view = self._observed(pod)
        view["env"] = dict((k, view["env"].get(k)) for k in self.params["env"])
        view["status"] = pod.get("desiredStatus")
        return view

    def _result_view(self, pod, ready=False):
        p = self.params
        if pod is None:
            return {"id": None, "name": p["name"], "remote_name": self.remote_name,
                    "stack_id": p["stack_id"], "status": "absent", "ready": False}
        pod_id = pod.get("id")
        urls = {}
        tcp = []
        ports = [x for x in (pod.get("ports") or "").split(",") if x]
        for spec in ports:
            number, _sep, kind = spec.partition("/")
            if kind == "http" and pod_id:
                urls[number] = p["proxy_url_template"].format(pod_id=pod_id, port=number)
        for rport in ((pod.get("runtime") or {}).get("ports") or []):
            if rport.get("type") == "tcp":
                tcp.append({"private_port": rport.get("privatePort"), "ip": rport.get("ip"),
                            "public_port": rport.get("publicPort"),
                            "is_public": rport.get("isIpPublic")})
        return {
            "id": pod_id, "name": p["name"], "remote_name": self.remote_name,
            "stack_id": p["stack_id"], "status": pod.get("desiredStatus"), "ready": ready,
            "cost_per_hr": pod.get("costPerHr"),
            "interruptible": pod.get("podType") == "INTERRUPTABLE",
            "preempted": self.preempted, "gpu_count": pod.get("gpuCount"),
            "gpu_display_name": (pod.get("machine") or {}).get("gpuDisplayName"),
            "image": pod.get("imageName"), "ports": ports, "urls": urls, "tcp_ports": tcp,
            "uptime_seconds": pod.get("uptimeSeconds"),
            "last_status_change": pod.get("lastStatusChange"),
        }

    def _planned(self):
        """What a pod created from the options would look like (check mode)."""
        p = self.params
        env = ["%s=%s" % (k, v) for k, v in p["env"].items()]
        return {"id": None, "name": self.remote_name, "imageName": p["image"],
                "dockerArgs": p["docker_args"], "gpuCount": p["gpu_count"],
                "ports": ",".join(p["ports"]), "containerDiskInGb": p["container_disk_gb"],
                "volumeInGb": p["volume_gb"], "env": env,
                "podType": "INTERRUPTABLE" if p["interruptible"] else "RESERVED",
                "desiredStatus": "RUNNING", "costPerHr": None}

    def _health_port(self):
        if self.params["health_port"]:
            return str(self.params["health_port"])
        for spec in self.params["ports"]:
            number, _sep, kind = spec.partition("/")
            if kind == "http":
                return number
        return None

    # ------------------------------------------------------------ CRUD
    def _get(self):
        matches = []
        for pod in self.client.list_pods():
            if pod.get("name") != self.remote_name:
                continue
            stack = pod_env(pod).get(STACK_ENV)
            if stack not in (None, self.params["stack_id"]):
                continue
            matches.append(pod)
        if len(matches) > 1:
            self.module.fail_json(
                msg="%d pods are named %s; remove the extra ones (ids: %s)"
                % (len(matches), self.remote_name, ", ".join(m["id"] for m in matches)))
        return matches[0] if matches else None

    def _create(self):
        p = self.params
        env = dict((k, str(v)) for k, v in p["env"].items())
        env.update((k, str(v)) for k, v in p["secret_env"].items())
        env[STACK_ENV] = p["stack_id"]
        spec = {
            "name": self.remote_name, "imageName": p["image"], "gpuTypeId": p["gpu_type_id"],
            "gpuCount": p["gpu_count"], "cloudType": p["cloud_type"],
            "containerDiskInGb": p["container_disk_gb"], "volumeInGb": p["volume_gb"],
            "volumeMountPath": p["volume_mount_path"], "dockerArgs": p["docker_args"],
            "ports": ",".join(p["ports"]), "supportPublicIp": True, "startSsh": False,
            "env": [{"key": k, "value": v} for k, v in sorted(env.items())],
        }
        for option, field in (("data_center_id", "dataCenterId"), ("min_vcpu_count", "minVcpuCount"),
                              ("min_memory_gb", "minMemoryInGb")):
            if p[option] is not None:
                spec[field] = p[option]
        if p["interruptible"]:
            spec["bidPerGpu"] = p["bid_per_gpu"]
        created = self.client.deploy_pod(spec, interruptible=p["interruptible"])
        self.created = True
        self.created_id = created["id"]
        self._remove_duplicates(created["id"])
        return self.client.get_pod(created["id"]) or created

    def _remove_duplicates(self, keep_id):
        """Terminate twins of a new pod.

        A deploy whose answer was lost (502/504) is retried and may have rented twice; no pod
        had this name before the deploy, so any other one is such a twin (or a concurrent run's).
        """
        for pod in self.client.list_pods():
            if pod.get("name") == self.remote_name and pod["id"] != keep_id:
                self.client.terminate_pod(pod["id"])
                self.module.warn("terminated pod %s, a duplicate of %s left by a retried request"
                                 % (pod["id"], keep_id))

    def _update(self, pod):
        """Bring an existing pod to the wanted run state. Returns the pod."""
        p = self.params
        status = pod.get("desiredStatus")
        interruptible = pod.get("podType") == "INTERRUPTABLE"
        if p["state"] in ("present", "started") and interruptible and status == "EXITED":
            self.preempted = True
            self.module.warn("spot pod %s (%s) was stopped by RunPod while it should run "
                             "(preempted): %s" % (self.remote_name, pod["id"],
                                                  pod.get("lastStatusChange") or "no reason given"))
        if p["state"] == "started" and status != "RUNNING":
            self.changed = True
            if not self.module.check_mode:
                bid = p["bid_per_gpu"] if interruptible else None
                if interruptible and bid is None:
                    self.module.fail_json(msg="bid_per_gpu is required to resume spot pod %s"
                                          % self.remote_name)
                self.client.resume_pod(pod["id"], pod.get("gpuCount") or p["gpu_count"], bid)
                return self.client.get_pod(pod["id"])
            return dict(pod, desiredStatus="RUNNING")
        if p["state"] == "stopped" and status == "RUNNING":
            self.changed = True
            if not self.module.check_mode:
                self.client.stop_pod(pod["id"])
                return self.client.get_pod(pod["id"])
            return dict(pod, desiredStatus="EXITED")
        return pod

    def _delete(self, pod):
        self.changed = True
        if not self.module.check_mode:
            self.client.terminate_pod(pod["id"])

    # ------------------------------------------------------------ wait
    def _probe(self, pod_id, port):
        pod = self.client.get_pod(pod_id)
        if pod is None:
            return {"pod": None, "ready": False, "phase": "pod no longer exists", "final": True}
        status = pod.get("desiredStatus")
        runtime = pod.get("runtime")
        if status != "RUNNING":
            final = status in ("EXITED", "TERMINATED", "DEAD")
            return {"pod": pod, "ready": False, "final": final,
                    "phase": "desiredStatus=%s (%s)" % (status, pod.get("lastStatusChange") or "")}
        if not runtime:
            return {"pod": pod, "ready": False, "final": False,
                    "phase": "desiredStatus=RUNNING, container not started (runtime null)"}
        if port is None:
            return {"pod": pod, "ready": True, "final": True, "phase": "container running"}
        url = self.params["proxy_url_template"].format(pod_id=pod_id, port=port)
        code = _http_answers(url.rstrip("/") + "/" + self.params["health_path"].lstrip("/"))
        if code is not None and code < 500:
            return {"pod": pod, "ready": True, "final": True,
                    "phase": "ready (port %s answered HTTP %s)" % (port, code)}
        return {"pod": pod, "ready": False, "final": False,
                "phase": "container running, port %s not answering (%s)"
                % (port, "HTTP %s" % code if code else "no answer")}

    def _wait(self, pod):
        port = self._health_port()

        def progress(value, elapsed):
            line = "%.0fs: %s" % (elapsed, value["phase"])
            self.progress.append(line)
            self.module.log("runpod_pod %s: %s" % (self.remote_name, line))

        try:
            value = wait_for(lambda: self._probe(pod["id"], port), lambda v: v["final"],
                             timeout=self.params["wait_timeout"], sleep=self.params["wait_sleep"],
                             progress=progress, what="pod %s" % self.remote_name)
        except WaitTimeout as exc:
            self._fail_wait(str(exc), exc.last)
        if not value["ready"]:
            self._fail_wait("pod %s stopped before it was ready" % self.remote_name, value)
        return value["pod"]

    def _fail_wait(self, message, last):
        last = last or {}
        pod = last.get("pod")
        extra = ""
        if self.created and pod is not None:
            try:
                self.client.terminate_pod(pod["id"])
                extra = "; the pod created by this run was terminated"
            except ApiError as exc:
                extra = "; terminating pod %s FAILED, remove it by hand: %s" % (pod["id"], exc)
        self.module.fail_json(
            msg="%s; last status: %s%s" % (message, last.get("phase", "unknown"), extra),
            last_status=last.get("phase"), runpod_pod=self._result_view(pod),
            progress=self.progress[-50:], changed=self.created)

    def cleanup_after_error(self):
        """Terminate a pod this run created before an API call failed (no paid orphan)."""
        if not self.created_id:
            return ""
        try:
            self.client.terminate_pod(self.created_id)
            return "; the pod created by this run was terminated"
        except ApiError as exc:
            return "; terminating pod %s FAILED, remove it by hand: %s" % (self.created_id, exc)

    # ------------------------------------------------------------ states
    def present(self):
        p = self.params
        pod = self._get()
        self.before = self._state_view(pod)
        if pod is not None and p["recreate"] and self._drift(pod):
            self._delete(pod)
            pod = None
        elif pod is not None:
            drift = self._drift(pod)
            if drift:
                self.module.warn("pod %s differs from the options in %s; set recreate=true to "
                                 "replace it" % (self.remote_name, ", ".join(drift)))
        if pod is None:
            missing = [o for o in ("image", "gpu_type_id") if not p[o]]
            if missing:
                self.module.fail_json(msg="%s required to create pod %s"
                                      % (" and ".join(missing) + (" is" if len(missing) == 1 else " are"),
                                         self.remote_name))
            self.changed = True
            if self.module.check_mode:
                pod = self._planned()
            else:
                pod = self._create()
                if p["state"] == "stopped":
                    self.client.stop_pod(pod["id"])
                    pod = self.client.get_pod(pod["id"])
            if p["state"] == "stopped":
                pod = dict(pod, desiredStatus="EXITED")
        else:
            pod = self._update(pod)
        ready = False
        if (p["wait"] and not self.module.check_mode and pod.get("id")
                and pod.get("desiredStatus") in ("RUNNING", "CREATED") and p["state"] != "stopped"):
            pod = self._wait(pod)
            ready = True
        elif (not p["wait"] and not self.module.check_mode and not self.changed and pod.get("id")
              and pod.get("desiredStatus") == "RUNNING" and p["state"] != "stopped"):
            # One look instead of a wait: a caller that waits in a second pass (gpu_provision)
            # skips a pod that already answers.
            probe = self._probe(pod["id"], self._health_port())
            ready = probe["ready"]
            pod = probe["pod"] or pod
        self.pod = pod
        return self._result_view(pod, ready)

    def absent(self):
        pod = self._get()
        self.before = self._state_view(pod)
        if pod is not None:
            self._delete(pod)
        self.pod = None
        return self._result_view(None)


def define_module():
    argument_spec = dict(RUNPOD_AUTH_SPEC)
    argument_spec.update(
        name=dict(type="str", required=True),
        stack_id=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "started", "stopped", "absent"]),
        image=dict(type="str"),
        docker_args=dict(type="str", default=""),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        ports=dict(type="list", elements="str", default=["8000/http"]),
        container_disk_gb=dict(type="int", default=20),
        volume_gb=dict(type="int", default=0),
        volume_mount_path=dict(type="str", default="/workspace"),
        cloud_type=dict(type="str", default="ALL", choices=["ALL", "SECURE", "COMMUNITY"]),
        data_center_id=dict(type="str"),
        gpu_type_id=dict(type="str"),
        gpu_count=dict(type="int", default=1),
        min_vcpu_count=dict(type="int"),
        min_memory_gb=dict(type="int"),
        interruptible=dict(type="bool", default=False),
        bid_per_gpu=dict(type="float"),
        health_port=dict(type="int"),
        health_path=dict(type="str", default="/"),
        proxy_url_template=dict(type="str", default=DEFAULT_PROXY_URL_TEMPLATE),
        recreate=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=900),
        wait_sleep=dict(type="int", default=5),
    )
    return AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("interruptible", True, ["bid_per_gpu"])],
        supports_check_mode=True,
    )


def main():
    module = define_module()
    if SEPARATOR in module.params["stack_id"]:
        module.fail_json(msg="stack_id must not contain %r" % SEPARATOR)
    pod = RunPodPod(module)
    try:
        result = pod.absent() if module.params["state"] == "absent" else pod.present()
    except CapacityError as exc:
        module.fail_json(msg="RunPod has no capacity for %s: %s" % (pod.remote_name, exc.message),
                         capacity_error=True, error_code=exc.code, changed=pod.changed)
    except ApiError as exc:
        module.fail_json(msg="RunPod API call failed for pod %s: %s%s"
                         % (pod.remote_name, exc, pod.cleanup_after_error()),
                         status_code=exc.status, error_code=exc.code, capacity_error=False)
    out = dict(changed=pod.changed, runpod_pod=result)
    if pod.progress:
        out["progress"] = pod.progress[-50:]
    if module._diff:
        out["diff"] = dict(before=pod.before, after=pod._state_view(pod.pod))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
