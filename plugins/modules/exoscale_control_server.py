#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: exoscale_control_server
short_description: A stack's control server at Exoscale, with its SSH key and security group
version_added: 0.4.0
description:
  - Creates, lists or deletes the CPU instance a stack runs its control plane on (gateway, budget
    guard, IDE; role C(llmops.codestack.control_server)), through Exoscale's own Python SDK
    (C(exoscale.api.v2.Client)).
  - With O(state=present) it registers O(public_key) as SSH key O(name), creates security group
    O(name) that lets in TCP on the ports of O(rules) only (each from its C(sources)), and
    instance O(name) with the O(labels), that key and that group; then waits until the instance
    runs with a public IPv4 address. Each is found by name (the instance by name and O(labels))
    before anything is created, so a re-run changes nothing; the group's ingress rules are made
    exactly those of O(rules).
  - With O(state_file), each resource is recorded in the stack's state file (provider
    C(exoscale), kinds C(ssh_key), C(security_group), C(server)) as soon as its create call
    returns, before any wait, so a crash leaves nothing the teardown cannot find.
  - M(llmops.codestack.exoscale_control_server_info) lists what exists (teardown.yml's second source).
  - With O(state=absent) it deletes the one resource O(resource) O(resource_id) (an SSH key's id
    is its name); one already gone is not an error.
  - Rate limits (429) and server errors (5xx) are retried with exponential backoff (creates only
    on 429 and 503); every other API error fails the module with Exoscale's own message.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.exoscale
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  state:
    description: V(present) creates what is missing, V(absent) deletes O(resource).
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the instance, of its SSH key and of its security group.
    type: str
  labels:
    description: Labels of the instance (the stack's C(codestack-stack=<stack id>)).
    type: dict
    default: {}
  instance_type:
    description: Instance type as C(family.size), such as C(standard.medium).
    type: str
    default: standard.medium
  template:
    description: Name of the public template (the image).
    type: str
    default: Linux Debian 12 (Bookworm) 64-bit
  disk_size:
    description: Root disk in GiB.
    type: int
    default: 20
  public_key:
    description: The OpenSSH public key to register (O(state=present)).
    type: str
  rules:
    description: The inbound TCP rules of the security group; nothing else is let in.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description: TCP port.
        type: int
        required: true
      sources:
        description: CIDRs allowed to connect (one rule each).
        type: list
        elements: str
        required: true
      description:
        description: What the port is for.
        type: str
  wait_timeout:
    description: Seconds to wait for each operation and for the instance to run with its address.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two looks at an operation or at the starting instance.
    type: float
    default: 2.0
  resource:
    description: With O(state=absent), what to delete.
    type: str
    choices: [instance, security_group, ssh_key]
  resource_id:
    description: With O(state=absent), its id (an SSH key's name).
    type: str
  state_file:
    description: The stack's state file; each created resource is recorded in it (O(state=present)).
    type: path
  stack_id:
    description: Stack identifier of O(state_file).
    type: str
  cost_per_hour:
    description: USD per hour of the instance (type and disk), recorded in O(state_file).
    type: float
    default: 0.0
  server_attributes:
    description: Attributes recorded with the instance (SSH port, user, key file, inventory name); its address is added.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Create the control server
  llmops.codestack.exoscale_control_server:
    name: mystack-control
    zone: ch-gva-2
    labels: {codestack-stack: mystack}
    instance_type: standard.medium
    public_key: "{{ lookup('ansible.builtin.file', 'out/control-server/id_ed25519.pub') }}"
    rules:
      - {port: 22, sources: [0.0.0.0/0, "::/0"], description: SSH}
      - {port: 443, sources: [0.0.0.0/0, "::/0"], description: TLS}
    state_file: out/state.json
    stack_id: mystack
  register: control

- name: Delete the instance
  llmops.codestack.exoscale_control_server:
    state: absent
    resource: instance
    resource_id: "{{ control.instance.id }}"
"""

RETURN = r"""
instance:
  description: The instance (O(state=present)); empty in check mode when it does not exist yet.
  returned: state=present
  type: dict
  contains:
    id: {description: Instance id., type: str}
    name: {description: Its name., type: str}
    state: {description: Its state (C(running))., type: str}
    public_ip: {description: Its public IPv4 address., type: str}
    labels: {description: Its labels., type: dict}
    security_groups: {description: Ids of its security groups., type: list, elements: str}
    ssh_keys: {description: Names of its SSH keys., type: list, elements: str}
security_group:
  description: The security group, C({id, name, rules}) (O(state=present)).
  returned: state=present
  type: dict
ssh_key:
  description: The SSH key, C({name, fingerprint}) (O(state=present)).
  returned: state=present
  type: dict
gone:
  description: With O(state=absent), whether the resource was already gone.
  returned: state=absent
  type: bool
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.codestack.plugins.module_utils import _exoscale, _statefile

try:
    from exoscale.api.v2 import Client
    HAS_EXOSCALE = True
    EXOSCALE_ERROR = None
except ImportError:
    HAS_EXOSCALE = False
    EXOSCALE_ERROR = traceback.format_exc()


def _record(module, kind, resource_id, name, attributes, cost=0.0):
    path, stack_id = module.params["state_file"], module.params["stack_id"]
    if not path:
        return
    try:
        _statefile.update(path, stack_id, "present", ("exoscale", kind, str(resource_id)),
                          lambda current: _statefile.entry("exoscale", kind, str(resource_id), name, cost,
                                                           attributes, current))
    except _statefile.StateFileError as exc:
        module.fail_json(msg="Exoscale %s %s exists but cannot be recorded: %s" % (kind, name, exc))


def _present(module, control):
    p = module.params
    name, check = p["name"], module.check_mode
    changed_key, key = control.ensure_key(name, p["public_key"], check)
    if not check:
        _record(module, "ssh_key", key["name"], key["name"], {"fingerprint": key.get("fingerprint")})
    changed_group, group = control.ensure_group(name, p["rules"], check)
    if group.get("id") and not check:
        _record(module, "security_group", group["id"], name,
                {"ports": sorted(set(int(r["port"]) for r in p["rules"]))})
    instance = control.find_instance(name, p["labels"])
    changed_instance = instance is None
    if instance is None and not check:
        instance = control.create_instance(name, p["labels"], p["instance_type"], p["template"], p["disk_size"],
                                           name, group["id"], p["wait_timeout"])
        if instance is None:
            raise _exoscale.ExoscaleError("Exoscale: instance %s was created but cannot be read back" % name)
    attributes = dict(p["server_attributes"], server_type=p["instance_type"], location=p["zone"])
    if instance is not None and not check:
        _record(module, "server", instance["id"], name, dict(attributes, address=instance.get("public-ip")),
                p["cost_per_hour"])
        instance = control.wait_running(instance, p["wait_timeout"])
        _record(module, "server", instance["id"], name, dict(attributes, address=instance.get("public-ip")),
                p["cost_per_hour"])
    return {"changed": changed_key or changed_group or changed_instance,
            "instance": _exoscale.summary(instance), "ssh_key": {"name": key["name"], "fingerprint": key.get("fingerprint")},
            "security_group": {"id": group.get("id"), "name": name, "rules": group.get("rules") or []}}


def _absent(module, control):
    p = module.params
    if module.check_mode:
        return {"changed": True, "gone": False}
    deleted = control.delete(p["resource"], p["resource_id"], p["wait_timeout"])
    return {"changed": deleted, "gone": not deleted}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            _exoscale.AUTH_SPEC,
            state=dict(type="str", choices=["present", "absent"], default="present"),
            name=dict(type="str"),
            labels=dict(type="dict", default={}),
            instance_type=dict(type="str", default="standard.medium"),
            template=dict(type="str", default="Linux Debian 12 (Bookworm) 64-bit"),
            disk_size=dict(type="int", default=20),
            public_key=dict(type="str"),
            rules=dict(type="list", elements="dict", default=[], options=dict(
                port=dict(type="int", required=True),
                sources=dict(type="list", elements="str", required=True),
                description=dict(type="str"))),
            wait_timeout=dict(type="int", default=600),
            poll_interval=dict(type="float", default=2.0),
            resource=dict(type="str", choices=["instance", "security_group", "ssh_key"]),
            resource_id=dict(type="str"),
            state_file=dict(type="path"),
            stack_id=dict(type="str"),
            cost_per_hour=dict(type="float", default=0.0),
            server_attributes=dict(type="dict", default={}),
        ),
        required_if=[("state", "present", ("name", "public_key", "rules")),
                     ("state", "absent", ("resource", "resource_id"))],
        required_together=[("state_file", "stack_id")],
        supports_check_mode=True,
    )
    if not HAS_EXOSCALE:
        module.fail_json(msg=missing_required_lib("exoscale"), exception=EXOSCALE_ERROR)
    p = module.params
    client = _exoscale.connect(module, Client)
    control = _exoscale.ExoscaleControl(client, poll=p["poll_interval"], progress=module.log)
    try:
        result = {"present": _present, "absent": _absent}[p["state"]](module, control)
    except _exoscale.ExoscaleError as exc:
        module.fail_json(msg=str(exc), status=exc.status)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
