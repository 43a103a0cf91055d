#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: runpod_info
short_description: List every RunPod pod and serverless endpoint of a stack
version_added: 0.1.0
description:
  - Lists the pods, serverless endpoints and managed templates that belong to a stack, for
    teardown and cost audits. Read-only; never reports a change.
  - A pod belongs to the stack when its name starts with C(<stack_id>--) or its environment
    holds C(CODESTACK_STACK_ID=<stack_id>); endpoints and templates by their name.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.runpod
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read-only, runs in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  stack_id:
    description: Stack whose resources are listed. Every resource of the account when not set.
    type: str
  proxy_url_template:
    description: Public URL of a pod's HTTP port, with C({pod_id}) and C({port}) placeholders.
    type: str
    default: https://{pod_id}-{port}.proxy.runpod.net
  openai_url_template:
    description: OpenAI-compatible base URL of an endpoint, with an C({endpoint_id}) placeholder.
    type: str
    default: https://api.runpod.ai/v2/{endpoint_id}/openai/v1
seealso:
  - module: llmops.codestack.runpod_pod
  - module: llmops.codestack.runpod_endpoint
"""

EXAMPLES = r"""
- name: What does the stack still run at RunPod?
  llmops.codestack.runpod_info:
    stack_id: codestack-shop
  register: runpod

- name: Terminate every pod of the stack
  llmops.codestack.runpod_pod:
    name: "{{ item.name }}"
    stack_id: codestack-shop
    state: absent
  loop: "{{ runpod.pods }}"
"""

RETURN = r"""
pods:
  description: Pods of the stack.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Pod id.
      type: str
      sample: 3kd8s0x1p2qz9a
    name:
      description: Name within the stack (what O(llmops.codestack.runpod_pod#module:name) takes).
      type: str
      sample: coder
    remote_name:
      description: Name at RunPod.
      type: str
      sample: codestack-shop--coder
    stack_id:
      description: Stack id.
      type: str
      sample: codestack-shop
    status:
      description: RunPod C(desiredStatus).
      type: str
      sample: RUNNING
    running:
      description: Whether the container runs (RunPod reports a runtime).
      type: bool
      sample: true
    interruptible:
      description: Spot pod.
      type: bool
      sample: false
    preempted_suspect:
      description: A spot pod that is stopped (RunPod may have reclaimed it).
      type: bool
      sample: false
    cost_per_hr:
      description: USD per hour while running.
      type: float
      sample: 0.6
    gpu_count:
      description: GPUs.
      type: int
      sample: 1
    gpu_display_name:
      description: GPU model.
      type: str
      sample: RTX 4090
    image:
      description: Container image.
      type: str
      sample: vllm/vllm-openai:v0.32.0
    uptime_seconds:
      description: Container uptime.
      type: int
      sample: 3600
    urls:
      description: Public proxy URL of each HTTP port.
      type: dict
      sample: {"8000": "https://3kd8s0x1p2qz9a-8000.proxy.runpod.net"}
endpoints:
  description: Serverless endpoints of the stack.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Endpoint id.
      type: str
      sample: vllm-abc123xyz
    name:
      description: Name within the stack.
      type: str
      sample: reviewer
    remote_name:
      description: Name at RunPod.
      type: str
      sample: codestack-shop--reviewer
    workers_min:
      description: Workers always on (billed while idle).
      type: int
      sample: 0
    workers_max:
      description: Maximum workers.
      type: int
      sample: 2
    openai_base_url:
      description: OpenAI-compatible base URL.
      type: str
      sample: https://api.runpod.ai/v2/vllm-abc123xyz/openai/v1
templates:
  description: Templates of the stack (created by P(llmops.codestack.runpod_endpoint#module)).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "8xq0w1a2b3", "name": "reviewer", "remote_name": "codestack-shop--reviewer"}]
cost_per_hr:
  description: Sum of the hourly price of the running pods, in USD.
  returned: always
  type: float
  sample: 0.94
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._runpod import (
    DEFAULT_OPENAI_URL_TEMPLATE,
    DEFAULT_PROXY_URL_TEMPLATE,
    RUNPOD_AUTH_SPEC,
    client_from_module,
    pod_stack_id,
    split_name,
)

FLASHBOOT_SUFFIX = " -fb"


class RunPodInfo:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = client_from_module(module)

    def _mine(self, stack_id):
        return self.params["stack_id"] in (None, stack_id)

    def _pod(self, pod):
        pod_id = pod["id"]
        stack_id, name = split_name(pod.get("name"))
        urls = {}
        for spec in (pod.get("ports") or "").split(","):
            number, _sep, kind = spec.partition("/")
            if kind == "http":
                urls[number] = self.params["proxy_url_template"].format(pod_id=pod_id, port=number)
        interruptible = pod.get("podType") == "INTERRUPTABLE"
        return {
            "id": pod_id, "name": name, "remote_name": pod.get("name"),
            "stack_id": pod_stack_id(pod) or stack_id, "status": pod.get("desiredStatus"),
            "running": bool(pod.get("runtime")), "interruptible": interruptible,
            "preempted_suspect": interruptible and pod.get("desiredStatus") == "EXITED",
            "cost_per_hr": pod.get("costPerHr"), "gpu_count": pod.get("gpuCount"),
            "gpu_display_name": (pod.get("machine") or {}).get("gpuDisplayName"),
            "image": pod.get("imageName"), "uptime_seconds": pod.get("uptimeSeconds"),
            "last_status_change": pod.get("lastStatusChange"), "urls": urls,
        }

    def _endpoint(self, endpoint):
        remote = endpoint.get("name") or ""
        if remote.endswith(FLASHBOOT_SUFFIX):
            remote = remote[:-len(FLASHBOOT_SUFFIX)]
        stack_id, name = split_name(remote)
        return {
            "id": endpoint["id"], "name": name, "remote_name": endpoint.get("name"),
            "stack_id": stack_id, "template_id": endpoint.get("templateId"),
            "gpu_ids": [g for g in (endpoint.get("gpuIds") or "").split(",") if g],
            "workers_min": endpoint.get("workersMin"), "workers_max": endpoint.get("workersMax"),
            "idle_timeout": endpoint.get("idleTimeout"),
            "openai_base_url": self.params["openai_url_template"].format(endpoint_id=endpoint["id"]),
        }

    def run(self):
        pods = [self._pod(p) for p in self.client.list_pods()]
        pods = [p for p in pods if self._mine(p["stack_id"])]
        endpoints = [self._endpoint(e) for e in self.client.list_endpoints()]
        endpoints = [e for e in endpoints if self._mine(e["stack_id"])]
        templates = []
        for tpl in self.client.list_templates():
            stack_id, name = split_name(tpl.get("name"))
            if self._mine(stack_id):
                templates.append({"id": tpl["id"], "name": name, "remote_name": tpl.get("name"),
                                  "stack_id": stack_id, "image": tpl.get("imageName")})
        cost = sum(p["cost_per_hr"] or 0 for p in pods if p["status"] == "RUNNING")
        return {"pods": pods, "endpoints": endpoints, "templates": templates,
                "cost_per_hr": round(cost, 4)}


def define_module():
    argument_spec = dict(RUNPOD_AUTH_SPEC)
    argument_spec.update(
        stack_id=dict(type="str"),
        proxy_url_template=dict(type="str", default=DEFAULT_PROXY_URL_TEMPLATE),
        openai_url_template=dict(type="str", default=DEFAULT_OPENAI_URL_TEMPLATE),
    )
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)


def main():
    module = define_module()
    try:
        result = RunPodInfo(module).run()
    except ApiError as exc:
        module.fail_json(msg="RunPod API call failed: %s" % exc, status_code=exc.status,
                         error_code=exc.code)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
