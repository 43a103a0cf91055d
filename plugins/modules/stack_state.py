#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: stack_state
short_description: Record the resources of a codestack stack in its state file
version_added: 0.1.0
description:
  - Keeps one JSON document per stack that lists every resource created for it (where, its id,
    its hourly cost and when it started), written atomically as each resource appears, so that
    a crash never loses track of a paid resource.
  - C(teardown.yml) and the budget guard read it; provider-side labels are the second source of
    truth when the file is gone.
  - The file is created with mode C(0600); it never holds secrets.
author:
  - llmops.codestack maintainers (@llmops)
options:
  path:
    description:
      - Path of the stack's state file.
    type: path
    required: true
  stack_id:
    description:
      - Stack identifier (label value put on every resource).
    type: str
    required: true
  state:
    description:
      - V(present) records or updates the resource and clears a stop mark; the stopped time
        is kept in C(stopped_intervals) (a list of C([stopped_at, resumed_at]) pairs), which the
        budget guard and the teardown report leave out of the running hours.
      - V(stopped) marks a recorded resource as stopped from now (C(stopped_at)); it keeps its
        other fields, so only O(provider), O(kind) and O(resource_id) are needed. The budget
        guard counts its hours up to that moment.
      - V(absent) removes it from the live resources and keeps it, with C(removed_at), in the
        document's C(removed) list (what teardown removed and what it cost).
    type: str
    choices: [present, stopped, absent]
    default: present
  provider:
    description:
      - Where the resource lives (C(runpod), C(vast), C(local), ...).
    type: str
    required: true
  kind:
    description:
      - What the resource is (C(pod), C(endpoint), C(instance), C(service), ...).
    type: str
    required: true
  resource_id:
    description:
      - The provider's identifier of the resource.
    type: str
    required: true
  name:
    description:
      - Human-readable name of the resource.
    type: str
  cost_per_hour:
    description:
      - What the resource costs per hour while it exists, in USD.
    type: float
    default: 0.0
  attributes:
    description:
      - Other non-secret facts worth keeping (URLs, role, model, region).
    type: dict
    default: {}
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description: Reports what would change without writing the file.
  diff_mode:
    support: full
    description: Shows the resource entry before and after.
notes:
  - Timestamps are UTC, ISO 8601. C(created_at) is kept from the first record of a resource.
"""

EXAMPLES = r"""
- name: Record a RunPod pod as soon as it exists
  llmops.codestack.stack_state:
    path: "{{ codestack_state_dir }}/{{ stack_id }}.json"
    stack_id: "{{ stack_id }}"
    provider: runpod
    kind: pod
    resource_id: "{{ pod.runpod_pod.id }}"
    name: "{{ pod.runpod_pod.name }}"
    cost_per_hour: "{{ pod.runpod_pod.cost_per_hr }}"
    attributes:
      role: coder
  delegate_to: localhost

- name: Forget a destroyed resource
  llmops.codestack.stack_state:
    path: "{{ codestack_state_dir }}/{{ stack_id }}.json"
    stack_id: "{{ stack_id }}"
    state: absent
    provider: runpod
    kind: pod
    resource_id: abc123
  delegate_to: localhost
"""

RETURN = r"""
stack_state:
  description: The whole state document after the change.
  returned: always
  type: dict
  contains:
    stack_id:
      description: The stack identifier.
      type: str
      returned: always
    resources:
      description: One entry per live resource.
      type: list
      elements: dict
      returned: always
      sample:
        - provider: runpod
          kind: pod
          id: abc123
          name: codestack-demo-coder
          cost_per_hour: 0.34
          created_at: "2026-11-22T08:00:00Z"
          updated_at: "2026-11-22T08:00:00Z"
          attributes: {role: coder}
    removed:
      description: Resources removed from the stack, with C(removed_at).
      type: list
      elements: dict
      returned: always
    updated_at:
      description: When the file was last written.
      type: str
      returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.llmops.codestack.plugins.module_utils import _statefile


def run(module):
    try:
        result = _statefile.record(module.params, module.check_mode, module._diff)
    except _statefile.StateFileError as exc:
        module.fail_json(msg="%s" % exc)
    module.exit_json(**result)


def define_module():
    return AnsibleModule(
        argument_spec=_statefile.ARGUMENT_SPEC,
        supports_check_mode=True,
    )


def main():
    run(define_module())


if __name__ == "__main__":
    main()
