#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: route_calibrate
short_description: Measure each role route of a served stack and re-price its plan
version_added: 0.1.0
description:
  - Sends O(requests) short streaming chat completions per role alias through the LiteLLM
    gateway (OpenAI wire format, C(stream_options.include_usage)) and measures the time to first
    token and the single-stream decode rate (completion tokens after the first, over the time
    from the first to the last token).
  - Compares the medians with what the plan predicted for the deployment behind each alias
    (C(single_stream_tok_s), and a TTFT predicted from C(prefill_tok_s) for the prompt length
    actually sent), then re-prices every measured deployment with the planner's own formula
    (hours and cost before and after).
  - With O(measurements_file), appends one catalog C(measurements) entry per measured
    deployment to that file; pass the file with the catalog files of the next plan and the
    measured decode replaces the modelled one for that GPU, model and quantization.
  - Requests that fail with 429, 502, 503 or 504 are retried with exponential backoff; a 401 is
    reported at once. See C(docs/calibration.md).
author:
  - llmops.codestack contributors (@llmops)
extends_documentation_fragment:
  - llmops.codestack.litellm
attributes:
  check_mode:
    description: Measures nothing and writes nothing; returns the predictions with RV(skipped=true).
    support: full
  diff_mode:
    description: Not applicable; the measurements file only grows.
    support: none
options:
  ca_path:
    description:
      - A CA certificate file, the only authority trusted for the gateway's TLS (the stack's
        reverse proxy with its internal CA, C(DIR/ca.crt)). Default the system's trust store.
    type: path
  plan:
    description:
      - The plan (the content of C(plan.json) as a mapping), or the path of C(plan.json) on
        the host the module runs on.
    type: raw
    required: true
  roles:
    description:
      - The roles whose aliases are measured. Roles sharing one alias are measured once.
      - Default all four (architect, coder, debugger, reviewer).
    type: list
    elements: str
    choices: [architect, coder, debugger, reviewer]
  requests:
    description:
      - Streaming requests per alias; the medians are reported.
    type: int
    default: 3
  warmup:
    description:
      - Short requests per alias sent first and not counted (the gateway's first requests pay
        one-off set-up that would inflate TTFT).
    type: int
    default: 2
  max_tokens:
    description:
      - Completion tokens asked for per request (the decode measurement needs at least two).
    type: int
    default: 64
  prompt:
    description:
      - The user message sent (prefixed with the request number so that no two prompts share a
        cached prefix). The default asks the model to count, which yields long answers.
    type: str
  retries:
    description:
      - Retries of one request on 429, 502, 503, 504 and network errors.
    type: int
    default: 3
  measurements_file:
    description:
      - Catalog file to append the measurements to (created with mode C(0644); it holds no
        secret). Not written when nothing was measured or in check mode.
    type: path
notes:
  - O(api_endpoint) may be given with or without the C(/v1) suffix.
  - The TTFT measured includes the gateway's own latency, which the plan does not model.
"""

EXAMPLES = r"""
- name: Calibrate every role of the stack through its gateway
  llmops.codestack.route_calibrate:
    api_endpoint: http://127.0.0.1:4000
    api_key: "{{ lookup('ansible.builtin.file', codestack_output ~ '/litellm/master_key') }}"
    plan: "{{ codestack_output }}/plan.json"
    requests: 5
    measurements_file: "{{ codestack_output }}/measurements.yml"
  register: __calibration

- name: Show how the coder route compared
  ansible.builtin.debug:
    msg: "{{ __calibration.calibration | selectattr('role', 'eq', 'coder') | first }}"

- name: Measure the reviewer only, without recording anything
  llmops.codestack.route_calibrate:
    api_endpoint: http://127.0.0.1:4000/v1
    api_key: "{{ litellm_master_key }}"
    plan: "{{ lookup('ansible.builtin.file', 'out/stack/plan.json') | from_json }}"
    roles: [reviewer]
"""

RETURN = r"""
skipped:
  description: True in check mode, when nothing was measured.
  returned: always
  type: bool
  sample: false
calibration:
  description: One entry per role measured.
  returned: always
  type: list
  elements: dict
  contains:
    role:
      description: The plan role.
      type: str
      sample: coder
    alias:
      description: The gateway model group name that was called.
      type: str
      sample: coder
    deployment:
      description: The plan deployment behind the alias.
      type: str
      sample: all-smollm2-135m-q4-1-cpu-local
    gpu:
      description: GPU (or CPU host) name of the deployment.
      type: str
      sample: CPU (this machine)
    gpu_count:
      description: GPUs of the deployment.
      type: int
      sample: 1
    model:
      description: Catalog model key.
      type: str
      sample: smollm2-135m
    quantization:
      description: Quantization served.
      type: str
      sample: q4_1
    engine:
      description: Serving engine.
      type: str
      sample: llamacpp
    predicted:
      description: The plan's single-stream decode (C(tok_s)), the TTFT (C(ttft_s)) for the
        prompt length measured (C(prompt_tokens); the plan's reference length when the gateway
        reported none) and where the plan's throughput came from (C(source)).
      type: dict
      sample: {tok_s: 65.0, ttft_s: 0.122, prompt_tokens: 32, source: measured}
    measured:
      description: Medians of the samples (C(tok_s), C(ttft_s), C(prompt_tokens),
        C(completion_tokens)) and their number (C(samples)); null figures in check mode.
      type: dict
      sample: {tok_s: 58.2, ttft_s: 0.21, prompt_tokens: 35, completion_tokens: 64, samples: 3}
    ratio:
      description: measured / predicted for C(tok_s) and C(ttft_s).
      type: dict
      sample: {tok_s: 0.9, ttft_s: 1.54}
plan_repriced:
  description: Hours and cost of each deployment and of the plan (wall hours = the slowest
    deployment, cost = the sum) as planned and at the measured decode.
  returned: always
  type: dict
  sample:
    before: {hours: 1.036, cost_usd: 0.0}
    after: {hours: 1.157, cost_usd: 0.0}
    deployments:
      - {deployment: all-smollm2-135m-q4-1-cpu-local, measured_tok_s: 58.2,
         before: {hours: 1.036, cost_usd: 0.0}, after: {hours: 1.157, cost_usd: 0.0}}
measurements:
  description: The catalog C(measurements) entries made from this run (one per deployment).
  returned: always
  type: list
  elements: dict
  sample:
    - {id: "local:cpu:owned/smollm2-135m/q4_1", offer: "local:cpu:owned", gpu: cpu,
       gpu_count: 1, model: smollm2-135m, quantization: q4_1, engine: llamacpp,
       decode_tok_s: 58.2, ttft_s: 0.21, prompt_tokens: 35, samples: 12,
       measured_at: "2026-11-29T11:00:00Z", as_of: "2026-11-29",
       source: "calibration run codestack-todo-cli"}
markdown:
  description: The "Predicted vs measured" report section (what C(calibrate.yml) writes to
    C(calibration.md)).
  returned: always
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.llmops.codestack.plugins.module_utils._calibrate import (
    CalibrationError,
    Calibrator,
    DEFAULT_PROMPT,
    append_measurements,
    calibrate,
    render_markdown,
)


class RouteCalibrate:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def _plan(self):
        plan = self.params["plan"]
        if isinstance(plan, str):
            try:
                with open(plan) as handle:
                    plan = json.load(handle)
            except (IOError, OSError, ValueError) as exc:
                raise CalibrationError("cannot read the plan %s: %s" % (self.params["plan"], exc))
        if not isinstance(plan, dict) or "roles" not in plan or "deployments" not in plan:
            raise CalibrationError("option 'plan' must be a plan.json document (with 'roles' "
                                   "and 'deployments') or its path")
        return plan

    def run(self):
        if self.params["requests"] < 1 or self.params["max_tokens"] < 2 or \
                self.params["warmup"] < 0:
            raise CalibrationError("requests must be >= 1, warmup >= 0 and max_tokens >= 2")
        plan = self._plan()
        calibrator = None
        if not self.module.check_mode:
            if not self.params["api_key"]:
                raise CalibrationError("api_key is required (the LiteLLM master key; or set "
                                       "LITELLM_MASTER_KEY)")
            calibrator = Calibrator(
                self.params["api_endpoint"] or "http://127.0.0.1:4000", self.params["api_key"],
                timeout=self.params["http_timeout"], retries=self.params["retries"],
                requests=self.params["requests"], warmup=self.params["warmup"],
                max_tokens=self.params["max_tokens"],
                prompt=self.params["prompt"] or DEFAULT_PROMPT, ca_path=self.params["ca_path"])
        result = calibrate(plan, calibrator, roles=self.params["roles"])
        result["skipped"] = calibrator is None
        changed = False
        path = self.params["measurements_file"]
        if path and result["measurements"] and not self.module.check_mode:
            append_measurements(os.path.abspath(path), result["measurements"])
            changed = True
        result["markdown"] = render_markdown(plan, result)
        return dict(result, changed=changed)


def define_module():
    return AnsibleModule(
        argument_spec=dict(
            api_endpoint=dict(type="str", fallback=(env_fallback, ["LITELLM_API_BASE"])),
            api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["LITELLM_MASTER_KEY"])),
            http_timeout=dict(type="int", default=30),
            ca_path=dict(type="path"),
            plan=dict(type="raw", required=True),
            roles=dict(type="list", elements="str",
                       choices=["architect", "coder", "debugger", "reviewer"]),
            requests=dict(type="int", default=3),
            warmup=dict(type="int", default=2),
            max_tokens=dict(type="int", default=64, no_log=False),
            prompt=dict(type="str"),
            retries=dict(type="int", default=3),
            measurements_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )


def main():
    module = define_module()
    try:
        result = RouteCalibrate(module).run()
    except CalibrationError as exc:
        module.fail_json(msg=str(exc), status_code=exc.status, body=exc.body)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot write the measurements file: %s" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
