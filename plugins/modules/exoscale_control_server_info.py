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
requirements:
  - exoscale >= 0.16.4 (0.16.0 ignores the client's C(url) option)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing changes.
options:
  api_key:
    description: Exoscale API key; default E(EXOSCALE_API_KEY).
    type: str
  api_secret:
    description: Exoscale API secret; default E(EXOSCALE_API_SECRET). Never logged or returned.
    type: str
  api_url:
    description:
      - API base (the SDK's C(url) option), such as a test fake's C(http://127.0.0.1:PORT/v2).
      - Default E(EXOSCALE_API_ENDPOINT), else the zone's own C(https://api-<zone>.exoscale.com/v2).
    type: str
  zone:
    description: Exoscale zone.
    type: str
    default: ch-gva-2
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

import os
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
            api_key=dict(type="str", no_log=True),
            api_secret=dict(type="str", no_log=True),
            api_url=dict(type="str"),
            zone=dict(type="str", default="ch-gva-2"),
            name=dict(type="str", required=True),
            labels=dict(type="dict", required=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_EXOSCALE:
        module.fail_json(msg=missing_required_lib("exoscale"), exception=EXOSCALE_ERROR)
    p = module.params
    key = p["api_key"] or os.environ.get("EXOSCALE_API_KEY")
    secret = p["api_secret"] or os.environ.get("EXOSCALE_API_SECRET")
    if not key or not secret:
        module.fail_json(msg="Exoscale needs EXOSCALE_API_KEY and EXOSCALE_API_SECRET (or api_key and api_secret)")
    url = p["api_url"] or os.environ.get("EXOSCALE_API_ENDPOINT") or None
    try:
        client = Client(key, secret, url=url) if url else Client(key, secret, zone=p["zone"])
    except TypeError as exc:
        module.fail_json(msg="Exoscale: %s" % exc)
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
