#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: exoscale_control_server_info
short_description: List a stack's control server at Exoscale, its security group and its SSH key
version_added: 0.4.0
description:
  - Lists, through Exoscale's own Python SDK (C(exoscale.api.v2.Client)), the instances that carry
    O(labels) and the security group and SSH key named O(name) (Exoscale labels only instances),
    what M(llmops.codestack.exoscale_control_server) created for a stack; teardown.yml's second
    source, beside the state file.
  - Rate limits (429) and server errors (5xx) are retried with exponential backoff; every other API
    error fails the module with Exoscale's own message.
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
    details: Nothing changes.
options:
  name:
    description: Name of the security group and of the SSH key (the control server's name).
    type: str
    required: true
  labels:
    description: Labels the instances must carry (the stack's C(codestack-stack=<stack id>)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: List what the stack has at Exoscale
  llmops.codestack.exoscale_control_server_info:
    name: mystack-control
    labels: {codestack-stack: mystack}
  register: found
"""

RETURN = r"""
instances:
  description: The instances carrying O(labels), C([{id, name, state, public_ip, labels, ...}]).
  returned: always
  type: list
  elements: dict
security_groups:
  description: The security group named O(name), C([{id, name}]) (none or one).
  returned: always
  type: list
  elements: dict
ssh_keys:
  description: The SSH key named O(name), C([{id, name}]) with its name as id (none or one).
  returned: always
  type: list
  elements: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmops.codestack.plugins.module_utils import _exoscale

try:
    from exoscale.api.v2 import Client
    HAS_EXOSCALE = True
    EXOSCALE_ERROR = None
except ImportError:
    HAS_EXOSCALE = False
    EXOSCALE_ERROR = traceback.format_exc()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            _exoscale.AUTH_SPEC,
            name=dict(type="str", required=True),
            labels=dict(type="dict", required=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_EXOSCALE:
        module.fail_json(msg=missing_required_lib("exoscale"), exception=EXOSCALE_ERROR)
    p = module.params
    client = _exoscale.connect(module, Client)
    control = _exoscale.ExoscaleControl(client, progress=module.log)
    try:
        instances = [_exoscale.summary(i) for i in control.labelled_instances(p["labels"])]
        group = control.find_group(p["name"])
        key_found = control.find_key(p["name"])
    except _exoscale.ExoscaleError as exc:
        module.fail_json(msg=str(exc), status=exc.status)
    module.exit_json(changed=False, instances=instances,
                     security_groups=[{"id": group["id"], "name": group["name"]}] if group else [],
                     ssh_keys=[{"id": key_found["name"], "name": key_found["name"]}] if key_found else [])


if __name__ == "__main__":
    main()
