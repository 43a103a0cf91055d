#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: runpod_endpoint
short_description: Manage a RunPod serverless endpoint (for example a vLLM worker) of a stack
version_added: 0.1.0
description:
  - Creates, updates in place and deletes a RunPod serverless endpoint through the GraphQL
    mutations C(saveEndpoint) and C(deleteEndpoint). All values are sent as GraphQL variables.
  - Workers scale to zero by default (O(workers_min=0)); RunPod bills only running workers.
  - The endpoint runs an existing template (O(template_id)) or a serverless template this module
    manages from O(image), O(env) and O(docker_args), named like the endpoint.
  - The endpoint is identified by O(name) within O(stack_id) and named C(<stack_id>--<name>) at
    RunPod. A second run with the same arguments changes nothing.
  - An endpoint running the RunPod vLLM worker answers OpenAI-style requests at
    C(https://api.runpod.ai/v2/<id>/openai/v1), returned as C(runpod_endpoint.openai_base_url).
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.runpod
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description: Name of the endpoint within the stack.
    type: str
    required: true
  stack_id:
    description: Stack the endpoint belongs to (the plan's C(stack_id)). Must not contain C(--).
    type: str
    required: true
  state:
    description:
      - V(present) creates the endpoint or updates the options that differ, in place.
      - V(absent) scales the endpoint to zero workers, deletes it, then deletes the template
        this module manages for it.
    type: str
    choices: [present, absent]
    default: present
  template_id:
    description:
      - Id of an existing serverless template to run. Mutually exclusive with O(image).
    type: str
  image:
    description:
      - Worker image of a template managed by this module (for example the RunPod vLLM worker
        V(runpod/worker-v1-vllm:v2.7.0)). Mutually exclusive with O(template_id).
    type: str
  docker_args:
    description: Container arguments of the managed template.
    type: str
    default: ""
  env:
    description:
      - Environment of the managed template; the vLLM worker reads C(MODEL_NAME),
        C(MAX_MODEL_LEN), C(QUANTIZATION), C(OPENAI_SERVED_MODEL_NAME_OVERRIDE) and others.
    type: dict
    default: {}
  secret_env:
    description: Secret environment of the managed template (never logged, not compared).
    type: dict
    default: {}
  container_disk_gb:
    description: Container disk of the managed template in GB.
    type: int
    default: 20
  gpu_ids:
    description:
      - GPU pools workers may run on, in order of preference, for example V(ADA_24),
        V(AMPERE_24), V(AMPERE_80), V(ADA_80_PRO).
    type: list
    elements: str
    default: [ADA_24]
  gpu_count:
    description: GPUs per worker.
    type: int
    default: 1
  workers_min:
    description: Workers kept running at all times (billed while idle). V(0) scales to zero.
    type: int
    default: 0
  workers_max:
    description: Upper bound of workers.
    type: int
    default: 1
  idle_timeout:
    description: Seconds a worker stays up without requests before it is stopped.
    type: int
    default: 5
  scaler_type:
    description: V(QUEUE_DELAY) scales on seconds a request waits; V(REQUEST_COUNT) on queued requests.
    type: str
    choices: [QUEUE_DELAY, REQUEST_COUNT]
    default: QUEUE_DELAY
  scaler_value:
    description: Threshold of O(scaler_type).
    type: int
    default: 4
  locations:
    description: Data centres workers may run in (any when empty).
    type: list
    elements: str
  network_volume_id:
    description: Network volume attached to the workers (to cache model weights).
    type: str
  flashboot:
    description: Enable FlashBoot (faster cold starts).
    type: bool
    default: false
  openai_url_template:
    description:
      - OpenAI-compatible base URL of an endpoint, with an C({endpoint_id}) placeholder.
    type: str
    default: https://api.runpod.ai/v2/{endpoint_id}/openai/v1
seealso:
  - module: llmops.codestack.runpod_pod
  - module: llmops.codestack.runpod_info
  - name: RunPod vLLM worker
    description: The serverless vLLM worker and its environment variables.
    link: https://github.com/runpod-workers/worker-vllm
"""

EXAMPLES = r"""
- name: A scale-to-zero vLLM endpoint for the reviewer role
  llmops.codestack.runpod_endpoint:
    name: reviewer
    stack_id: codestack-shop
    image: runpod/worker-v1-vllm:v2.7.0
    env:
      MODEL_NAME: Qwen/Qwen2.5-Coder-7B-Instruct
      MAX_MODEL_LEN: "16384"
      OPENAI_SERVED_MODEL_NAME_OVERRIDE: reviewer
    gpu_ids: [ADA_24, AMPERE_24]
    workers_max: 2
    idle_timeout: 60
  register: reviewer

- name: Use it through the OpenAI API
  ansible.builtin.debug:
    msg: "{{ reviewer.runpod_endpoint.openai_base_url }}"

- name: Delete it
  llmops.codestack.runpod_endpoint:
    name: reviewer
    stack_id: codestack-shop
    state: absent
"""

RETURN = r"""
runpod_endpoint:
  description: The endpoint after the change (in check mode, what it would be).
  returned: always
  type: dict
  contains:
    id:
      description: Endpoint id (null when absent, or in check mode before creation).
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
    stack_id:
      description: Stack id.
      type: str
      sample: codestack-shop
    state:
      description: V(present) or V(absent).
      type: str
      sample: present
    template_id:
      description: Template the workers run.
      type: str
      sample: 8xq0w1a2b3
    gpu_ids:
      description: GPU pools.
      type: list
      elements: str
      sample: [ADA_24, AMPERE_24]
    gpu_count:
      description: GPUs per worker.
      type: int
      sample: 1
    workers_min:
      description: Minimum workers.
      type: int
      sample: 0
    workers_max:
      description: Maximum workers.
      type: int
      sample: 2
    idle_timeout:
      description: Idle timeout in seconds.
      type: int
      sample: 60
    scaler_type:
      description: Scaler type.
      type: str
      sample: QUEUE_DELAY
    scaler_value:
      description: Scaler threshold.
      type: int
      sample: 4
    flashboot:
      description: Whether FlashBoot is on.
      type: bool
      sample: false
    openai_base_url:
      description: OpenAI-compatible base URL (for LiteLLM C(api_base)).
      type: str
      sample: https://api.runpod.ai/v2/vllm-abc123xyz/openai/v1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._runpod import (
    DEFAULT_OPENAI_URL_TEMPLATE,
    RUNPOD_AUTH_SPEC,
    SEPARATOR,
    client_from_module,
    remote_name,
)

# RunPod appends this to the name of endpoints with FlashBoot on.
FLASHBOOT_SUFFIX = " -fb"


class RunPodEndpoint:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = client_from_module(module)
        self.remote_name = remote_name(self.params["stack_id"], self.params["name"])
        self.changed = False
        self.before = None
        self.after = None

    # ------------------------------------------------------------ helpers
    def _wanted(self):
        p = self.params
        wanted = {
            "name": self.remote_name,
            "gpuIds": ",".join(p["gpu_ids"]),
            "gpuCount": p["gpu_count"],
            "workersMin": p["workers_min"],
            "workersMax": p["workers_max"],
            "idleTimeout": p["idle_timeout"],
            "scalerType": p["scaler_type"],
            "scalerValue": p["scaler_value"],
            "flashBootType": "FLASHBOOT" if p["flashboot"] else "OFF",
        }
        if p["locations"] is not None:
            wanted["locations"] = ",".join(p["locations"])
        if p["network_volume_id"] is not None:
            wanted["networkVolumeId"] = p["network_volume_id"]
        if p["template_id"]:
            wanted["templateId"] = p["template_id"]
        return wanted

    @staticmethod
    def _compare(current, wanted, keys=None):
        return sorted(k for k in (keys or wanted) if current.get(k) != wanted.get(k))

    def _state_view(self, endpoint, template=None):
        if endpoint is None:
            return {"state": "absent"}
        view = dict((k, endpoint.get(k)) for k in self._wanted() if k != "name")
        if template is not None:
            view["template"] = {"imageName": template.get("imageName"),
                                "dockerArgs": template.get("dockerArgs"),
                                "containerDiskInGb": template.get("containerDiskInGb"),
                                "env": dict((e["key"], e.get("value")) for e in template.get("env") or []
                                            if e["key"] in self.params["env"])}
        return view

    def _result(self, endpoint):
        p = self.params
        base = {"name": p["name"], "remote_name": self.remote_name, "stack_id": p["stack_id"]}
        if endpoint is None:
            base.update(id=None, state="absent", openai_base_url=None)
            return base
        endpoint_id = endpoint.get("id")
        base.update(
            id=endpoint_id, state="present", template_id=endpoint.get("templateId"),
            gpu_ids=[g for g in (endpoint.get("gpuIds") or "").split(",") if g],
            gpu_count=endpoint.get("gpuCount"), workers_min=endpoint.get("workersMin"),
            workers_max=endpoint.get("workersMax"), idle_timeout=endpoint.get("idleTimeout"),
            scaler_type=endpoint.get("scalerType"), scaler_value=endpoint.get("scalerValue"),
            flashboot=endpoint.get("flashBootType") == "FLASHBOOT",
            openai_base_url=p["openai_url_template"].format(endpoint_id=endpoint_id)
            if endpoint_id else None,
        )
        return base

    # ------------------------------------------------------------ template
    def _template_spec(self):
        p = self.params
        env = dict((k, str(v)) for k, v in p["env"].items())
        env.update((k, str(v)) for k, v in p["secret_env"].items())
        return {"name": self.remote_name, "imageName": p["image"], "dockerArgs": p["docker_args"],
                "containerDiskInGb": p["container_disk_gb"], "volumeInGb": 0,
                "isServerless": True, "ports": "", "readme": "",
                "env": [{"key": k, "value": v} for k, v in sorted(env.items())]}

    def _get_template(self):
        for tpl in self.client.list_templates():
            if tpl.get("name") == self.remote_name:
                return tpl
        return None

    def _ensure_template(self, template):
        """Create or update the managed template; returns its id (None in check mode)."""
        spec = self._template_spec()
        if template is None:
            self.changed = True
            if self.module.check_mode:
                return None
            return self.client.save_template(spec)["id"]
        current = {"imageName": template.get("imageName"), "dockerArgs": template.get("dockerArgs") or "",
                   "containerDiskInGb": template.get("containerDiskInGb"),
                   "env": dict((e["key"], e.get("value")) for e in template.get("env") or [])}
        env_drift = any(current["env"].get(k) != str(v) for k, v in self.params["env"].items())
        if env_drift or self._compare(current, spec, ("imageName", "dockerArgs", "containerDiskInGb")):
            self.changed = True
            if not self.module.check_mode:
                self.client.save_template(dict(spec, id=template["id"]))
        return template["id"]

    # ------------------------------------------------------------ CRUD
    def _get(self):
        for endpoint in self.client.list_endpoints():
            if endpoint.get("name") in (self.remote_name, self.remote_name + FLASHBOOT_SUFFIX):
                return endpoint
        return None

    def _create(self, wanted):
        self.changed = True
        if self.module.check_mode:
            return dict(wanted, id=None)
        return self.client.save_endpoint(wanted)

    def _update(self, endpoint, wanted):
        current = dict(endpoint, name=self.remote_name)
        if not self._compare(current, wanted):
            return endpoint
        self.changed = True
        if self.module.check_mode:
            return dict(endpoint, **wanted)
        return self.client.save_endpoint(dict(wanted, id=endpoint["id"]))

    def _delete(self, endpoint):
        self.changed = True
        if self.module.check_mode:
            return
        if endpoint.get("workersMin") or endpoint.get("workersMax"):
            # RunPod refuses to delete an endpoint that still has workers.
            spec = dict((k, endpoint.get(k)) for k in ("name", "templateId", "gpuIds"))
            self.client.save_endpoint(dict(spec, id=endpoint["id"], workersMin=0, workersMax=0))
        self.client.delete_endpoint(endpoint["id"])

    # ------------------------------------------------------------ states
    def present(self):
        p = self.params
        endpoint = self._get()
        template = self._get_template() if p["image"] else None
        self.before = self._state_view(endpoint, template)
        wanted = self._wanted()
        if p["image"]:
            wanted["templateId"] = self._ensure_template(template)
        if endpoint is None:
            endpoint = self._create(wanted)
        else:
            if wanted.get("templateId") is None:
                wanted["templateId"] = endpoint.get("templateId")
            endpoint = self._update(endpoint, wanted)
        self.after = self._state_view(endpoint, self._template_spec() if p["image"] else None)
        return self._result(endpoint)

    def absent(self):
        endpoint = self._get()
        template = self._get_template()
        self.before = self._state_view(endpoint)
        if endpoint is not None:
            self._delete(endpoint)
        if template is not None:
            self.changed = True
            if not self.module.check_mode:
                self.client.delete_template(self.remote_name)
        self.after = {"state": "absent"}
        return self._result(None)


def define_module():
    argument_spec = dict(RUNPOD_AUTH_SPEC)
    argument_spec.update(
        name=dict(type="str", required=True),
        stack_id=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        template_id=dict(type="str"),
        image=dict(type="str"),
        docker_args=dict(type="str", default=""),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        container_disk_gb=dict(type="int", default=20),
        gpu_ids=dict(type="list", elements="str", default=["ADA_24"]),
        gpu_count=dict(type="int", default=1),
        workers_min=dict(type="int", default=0),
        workers_max=dict(type="int", default=1),
        idle_timeout=dict(type="int", default=5),
        scaler_type=dict(type="str", default="QUEUE_DELAY", choices=["QUEUE_DELAY", "REQUEST_COUNT"]),
        scaler_value=dict(type="int", default=4),
        locations=dict(type="list", elements="str"),
        network_volume_id=dict(type="str"),
        flashboot=dict(type="bool", default=False),
        openai_url_template=dict(type="str", default=DEFAULT_OPENAI_URL_TEMPLATE),
    )
    return AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("template_id", "image")],
        required_if=[("state", "present", ("template_id", "image"), True)],
        supports_check_mode=True,
    )


def main():
    module = define_module()
    if SEPARATOR in module.params["stack_id"]:
        module.fail_json(msg="stack_id must not contain %r" % SEPARATOR)
    if module.params["workers_min"] > module.params["workers_max"]:
        module.fail_json(msg="workers_min must not exceed workers_max")
    endpoint = RunPodEndpoint(module)
    try:
        result = endpoint.absent() if module.params["state"] == "absent" else endpoint.present()
    except ApiError as exc:
        module.fail_json(msg="RunPod API call failed for endpoint %s: %s" % (endpoint.remote_name, exc),
                         status_code=exc.status, error_code=exc.code)
    out = dict(changed=endpoint.changed, runpod_endpoint=result)
    if module._diff:
        out["diff"] = dict(before=endpoint.before, after=endpoint.after)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
