#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: litellm_route
short_description: Manage a route (model group to deployment) of a LiteLLM proxy
version_added: 0.1.0
description:
  - Creates, updates or deletes one deployment of a LiteLLM model group, that is one entry of
    the proxy's C(model_list) (C(model_name), C(litellm_params), C(model_info.id)).
  - Two backends. O(backend=config) edits the proxy's C(config.yaml) atomically (its mode and
    owner are kept); the proxy reads the file at start, so notify a restart handler when the
    module reports C(changed) (the P(llmops.codestack.litellm_gateway#role) role listens to
    C(restart litellm gateway)).
  - O(backend=api) calls the proxy's admin API (C(/model/info), C(/model/new),
    C(/model/update), C(/model/delete)) with the master key. The proxy must run with a database
    and C(STORE_MODEL_IN_DB=True) for these calls to work; the change is live without restart.
  - A route is found by O(id) when given, otherwise by O(model_name) and O(model).
  - Secrets (O(backend_api_key)) never appear in results or diffs; they are shown as C(********).
author:
  - llmops.codestack contributors (@llmops)
extends_documentation_fragment:
  - llmops.codestack.litellm
attributes:
  check_mode:
    description: Reports what would change without writing the file or calling the API.
    support: full
  diff_mode:
    description: Shows the user-set fields before and after, secrets masked.
    support: full
options:
  state:
    description:
      - V(present) creates the route or updates the fields that differ; V(absent) deletes it.
      - With V(absent) and no O(model) nor O(id), every deployment of O(model_name) is deleted.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description:
      - Where routes live. V(config) for a proxy without database (edit O(config_path), then
        restart the proxy), V(api) for a proxy with a database.
    type: str
    choices: [config, api]
    default: config
  config_path:
    description:
      - Path of the proxy's C(config.yaml). Required with O(backend=config).
    type: path
  model_name:
    description:
      - The model group clients ask for (a role alias such as V(coder)).
    type: str
    required: true
    aliases: [group]
  id:
    description:
      - Deployment id (C(model_info.id)). Identifies the route when several deployments of the
        same group use the same backend model.
    type: str
  model:
    description:
      - Backend model as LiteLLM names it, for example V(hosted_vllm/coder) or V(openai/smollm2).
      - Required with O(state=present).
    type: str
  api_base:
    description:
      - Base URL of the backend, for example V(http://10.0.0.5:8000/v1).
    type: str
  backend_api_key:
    description:
      - API key LiteLLM sends to the backend. Either the key itself or a reference such as
        V(os.environ/VLLM_API_KEY) that the proxy resolves at start.
      - The admin API never returns keys, so with O(backend=api) the key is only sent when the
        route is created, unless O(backend_api_key_update=always).
    type: str
  backend_api_key_update:
    description:
      - With O(backend=api), V(always) sends O(backend_api_key) on every run (the module then
        always reports C(changed)); V(on_create) only when the route is created.
      - With O(backend=config) the stored key is compared and only written when it differs.
    type: str
    choices: [always, on_create]
    default: on_create
  rpm:
    description: Requests per minute this deployment accepts (used for routing and limits).
    type: int
  tpm:
    description: Tokens per minute this deployment accepts.
    type: int
  request_timeout:
    description:
      - Seconds LiteLLM waits for this backend (C(litellm_params.timeout)). Leave room for a
        cold start when the backend scales to zero.
    type: float
  input_cost_per_token:
    description: Price in USD of one prompt token (custom pricing for cost tracking and budgets).
    type: float
  output_cost_per_token:
    description: Price in USD of one completion token.
    type: float
  input_cost_per_second:
    description:
      - Price in USD of one second of backend time, for GPUs billed by time
        (C(price_per_hour / 3600)).
    type: float
  output_cost_per_second:
    description: Price in USD of one second of generation time.
    type: float
  tags:
    description: Tags for LiteLLM tag-based routing. Compared as a set.
    type: list
    elements: str
notes:
  - Only the fields set in the task are compared and changed; other fields of an existing route
    are kept.
  - LiteLLM skips budget enforcement for C(hosted_vllm/) models with custom prices (LiteLLM issue
    25874); see docs/serving.md for the workaround.
seealso:
  - name: LiteLLM model management
    description: The admin API used by O(backend=api).
    link: https://docs.litellm.ai/docs/proxy/model_management
"""

EXAMPLES = r"""
- name: Route the coder alias to a vLLM pod
  llmops.codestack.litellm_route:
    config_path: /etc/codestack/litellm/config.yaml
    model_name: coder
    model: hosted_vllm/coder
    api_base: "http://10.0.0.5:8000/v1"
    backend_api_key: os.environ/VLLM_API_KEY
    rpm: 120
    input_cost_per_second: 0.0000944
    tags: [gpu, runpod]
  notify: restart litellm gateway

- name: Add a serverless deployment through the admin API (proxy with a database)
  module_defaults:
    group/llmops.codestack.litellm:
      api_endpoint: "http://127.0.0.1:4000"
      api_key: "{{ litellm_master_key }}"
  llmops.codestack.litellm_route:
    backend: api
    model_name: coder
    id: coder-serverless
    model: openai/coder
    api_base: "https://api.runpod.ai/v2/abc123/openai/v1"
    backend_api_key: "{{ runpod_api_key }}"
    request_timeout: 600

- name: Remove every deployment of the reviewer group
  llmops.codestack.litellm_route:
    config_path: /etc/codestack/litellm/config.yaml
    model_name: reviewer
    state: absent
"""

RETURN = r"""
litellm_route:
  description:
    - The route after the change (before it, for O(state=absent)); secrets masked.
    - Empty when the route does not exist.
  returned: always
  type: dict
  contains:
    model_name:
      description: The model group.
      type: str
      sample: coder
    litellm_params:
      description: Backend parameters (C(api_key) shown as C(********)).
      type: dict
      sample: {"model": "hosted_vllm/coder", "api_base": "http://10.0.0.5:8000/v1", "rpm": 120}
    model_info:
      description: Deployment metadata, C(id) among it.
      type: dict
      sample: {"id": "coder-serverless"}
changed_fields:
  description: Names of the fields that were (or, in check mode, would be) changed.
  returned: always
  type: list
  elements: str
  sample: ["api_base", "rpm"]
deleted:
  description: Number of deployments deleted (O(state=absent)).
  returned: when state is absent
  type: int
  sample: 1
"""

import os

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._litellm import (
    ApiRoutes, ConfigRoutes, RouteError, desired_params, diff_view, differences, merged, redact,
    select)

DEFAULT_ENDPOINT = "http://127.0.0.1:4000"


class LitellmRoute:
    def __init__(self, module):
        self.module = module
        p = module.params
        self.name = p["model_name"]
        self.rid = p["id"]
        self.model = p["model"]
        self.wanted = desired_params({
            "model": p["model"], "api_base": p["api_base"], "api_key": p["backend_api_key"],
            "rpm": p["rpm"], "tpm": p["tpm"], "timeout": p["request_timeout"], "tags": p["tags"],
            "input_cost_per_token": p["input_cost_per_token"],
            "output_cost_per_token": p["output_cost_per_token"],
            "input_cost_per_second": p["input_cost_per_second"],
            "output_cost_per_second": p["output_cost_per_second"],
        })
        if p["backend"] == "config":
            self.store = ConfigRoutes(p["config_path"])
            self.compare_secrets = True
        else:
            self.store = ApiRoutes(p["api_endpoint"] or DEFAULT_ENDPOINT, p["api_key"],
                                   timeout=p["http_timeout"])
            self.compare_secrets = False
        self.result = {"changed": False, "changed_fields": [], "litellm_route": {}}

    def _get(self):
        found = select(self.store.routes(), self.name, self.model, self.rid)
        if len(found) > 1 and self.module.params["state"] == "present":
            raise RouteError("%d deployments of model group %s use model %s; set id to pick one"
                             % (len(found), self.name, self.model))
        return found

    def _create(self):
        route = merged(None, self.name, self.wanted, self.rid)
        self.result["changed_fields"] = sorted(self.wanted)
        if not self.module.check_mode:
            self.store.create(route)
        return route

    def _update(self, route, fields):
        wanted = dict((k, self.wanted[k]) for k in fields)
        new = merged(route, self.name, wanted)
        self.result["changed_fields"] = fields
        if not self.module.check_mode:
            self.store.update(route, new)
        return new

    def _delete(self, routes):
        if not self.module.check_mode:
            for route in routes:
                self.store.delete(route)

    def present(self):
        found = self._get()
        before = found[0] if found else None
        if before is None:
            after = self._create()
        else:
            fields = differences(before, self.wanted, self.compare_secrets)
            if ("api_key" in self.wanted and not self.compare_secrets
                    and self.module.params["backend_api_key_update"] == "always"):
                fields = sorted(set(fields) | {"api_key"})
            after = self._update(before, fields) if fields else before
        self.result["changed"] = bool(self.result["changed_fields"])
        self._finish(before, after)

    def absent(self):
        found = self._get()
        self._delete(found)
        self.result["changed"] = bool(found)
        self.result["deleted"] = len(found)
        before = found[0] if found else None
        self._finish(before, None)

    def _finish(self, before, after):
        keys = sorted(self.wanted) or ["model", "api_base"]
        if self.module._diff:
            after_view = diff_view(after, keys)
            if "api_key" in self.result["changed_fields"] and after_view.get("api_key"):
                after_view["api_key"] = "******** (changed)"
            self.result["diff"] = {"before": diff_view(before, keys), "after": after_view}
        self.result["litellm_route"] = redact(after if after is not None else before) or {}


def define_module():
    return AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present", choices=["present", "absent"]),
            backend=dict(type="str", default="config", choices=["config", "api"]),
            config_path=dict(type="path"),
            api_endpoint=dict(type="str", fallback=(env_fallback, ["LITELLM_API_BASE"])),
            api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["LITELLM_MASTER_KEY"])),
            http_timeout=dict(type="int", default=30),
            model_name=dict(type="str", required=True, aliases=["group"]),
            id=dict(type="str"),
            model=dict(type="str"),
            api_base=dict(type="str"),
            backend_api_key=dict(type="str", no_log=True),
            backend_api_key_update=dict(type="str", default="on_create", choices=["always", "on_create"],
                                        no_log=False),
            rpm=dict(type="int"),
            tpm=dict(type="int"),
            request_timeout=dict(type="float"),
            input_cost_per_token=dict(type="float", no_log=False),
            output_cost_per_token=dict(type="float", no_log=False),
            input_cost_per_second=dict(type="float"),
            output_cost_per_second=dict(type="float"),
            tags=dict(type="list", elements="str"),
        ),
        required_if=[
            ("backend", "config", ["config_path"]),
            ("state", "present", ["model"]),
        ],
        supports_check_mode=True,
    )


def main():
    module = define_module()
    if module.params["backend"] == "config" and module.params["config_path"]:
        module.params["config_path"] = os.path.abspath(module.params["config_path"])
    try:
        route = LitellmRoute(module)
        getattr(route, module.params["state"])()
    except RouteError as exc:
        module.fail_json(msg=str(exc))
    except ApiError as exc:
        module.fail_json(msg="LiteLLM admin API: %s" % exc, status_code=exc.status, body=exc.body)
    module.exit_json(**route.result)


if __name__ == "__main__":
    main()
