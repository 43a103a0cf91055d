#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vast_info
short_description: List every Vast.ai instance of a stack
version_added: 0.1.0
description:
  - Lists the Vast.ai instances whose label belongs to a stack (C(<stack_id>--<name>)), through
    the paginated instance list, for teardown and cost audits. Always returns C(changed=false).
  - Bid instances that exited while they should run are flagged as preempted.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.vast
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing changes.
options:
  stack_id:
    description:
      - Stack whose instances are listed. When not set, every instance of the account is listed.
    type: str
  name:
    description: Only the instance with this name within the stack.
    type: str
seealso:
  - module: llmops.codestack.vast_instance
"""

EXAMPLES = r"""
- name: Everything the stack rents on Vast.ai
  llmops.codestack.vast_info:
    stack_id: codestack-shop
  register: vast

- name: Destroy all of it
  llmops.codestack.vast_instance:
    name: "{{ item.name }}"
    stack_id: codestack-shop
    state: absent
  loop: "{{ vast.instances }}"
  loop_control:
    label: "{{ item.label }}"
"""

RETURN = r"""
instances:
  description: The instances, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Instance id.
      type: int
      sample: 9000001
    label:
      description: Label at Vast.ai.
      type: str
      sample: codestack-shop--coder
    name:
      description: Name within the stack (the label itself when it has no stack part).
      type: str
      sample: coder
    stack_id:
      description: Stack id from the label, or null.
      type: str
      sample: codestack-shop
    actual_status:
      description: Vast.ai C(actual_status).
      type: str
      sample: running
    intended_status:
      description: Vast.ai C(intended_status).
      type: str
      sample: running
    preempted:
      description: A bid instance that exited while it should run (outbid).
      type: bool
      sample: false
    is_bid:
      description: Whether it is an interruptible bid instance.
      type: bool
      sample: false
    dph_total:
      description: Price in USD per hour.
      type: float
      sample: 0.35
    gpu_name:
      description: GPU model.
      type: str
      sample: RTX 4090
    num_gpus:
      description: Number of GPUs.
      type: int
      sample: 1
    image:
      description: Container image.
      type: str
      sample: vllm/vllm-openai:v0.32.0
    public_ipaddr:
      description: Public IP address once running.
      type: str
      sample: 203.0.113.7
    status_msg:
      description: Vast.ai's last status message.
      type: str
      sample: ""
summary:
  description: Counts and the hourly price of what runs.
  returned: always
  type: dict
  sample: {"count": 2, "running": 1, "preempted": 1, "dph_running": 0.35}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._vast import (
    SEPARATOR,
    VAST_AUTH_SPEC,
    client_from_module,
    make_label,
    split_label,
)


class VastInfo:
    def __init__(self, module):
        self.module = module
        self.client = client_from_module(module)

    @staticmethod
    def _view(inst):
        stack_id, name = split_label(inst.get("label"))
        preempted = bool(inst.get("is_bid")) and inst.get("intended_status") == "running" \
            and inst.get("actual_status") in ("exited", "offline", "stopped")
        return {"id": inst.get("id"), "label": inst.get("label"), "name": name,
                "stack_id": stack_id, "actual_status": inst.get("actual_status"),
                "intended_status": inst.get("intended_status"), "preempted": preempted,
                "is_bid": bool(inst.get("is_bid")), "dph_total": inst.get("dph_total"),
                "gpu_name": inst.get("gpu_name"), "num_gpus": inst.get("num_gpus"),
                "image": inst.get("image_uuid"), "public_ipaddr": inst.get("public_ipaddr"),
                "status_msg": inst.get("status_msg")}

    def list(self):
        p = self.module.params
        select = None
        if p["stack_id"] and p["name"]:
            select = {"label": {"eq": make_label(p["stack_id"], p["name"])}}
        rows = [self._view(r) for r in self.client.list_instances(select)]
        if p["stack_id"]:
            rows = [r for r in rows if r["stack_id"] == p["stack_id"]]
        if p["name"]:
            rows = [r for r in rows if r["name"] == p["name"]]
        rows.sort(key=lambda r: r["id"] or 0)
        running = [r for r in rows if r["actual_status"] == "running"]
        summary = {"count": len(rows), "running": len(running),
                   "preempted": len([r for r in rows if r["preempted"]]),
                   "dph_running": round(sum(float(r["dph_total"] or 0) for r in running), 6)}
        return rows, summary


def define_module():
    argument_spec = dict(VAST_AUTH_SPEC)
    argument_spec.update(stack_id=dict(type="str"), name=dict(type="str"))
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                         required_by={"name": "stack_id"})


def main():
    module = define_module()
    if module.params["stack_id"] and SEPARATOR in module.params["stack_id"]:
        module.fail_json(msg="stack_id must not contain %r" % SEPARATOR)
    try:
        rows, summary = VastInfo(module).list()
    except ApiError as exc:
        module.fail_json(msg="Vast.ai instance listing failed: %s" % exc, status_code=exc.status,
                         error_code=exc.code)
    module.exit_json(changed=False, instances=rows, summary=summary)


if __name__ == "__main__":
    main()
