#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_facts
short_description: Gather the facts M(ansible.builtin.setup) gathers, in-process where the host is the controller
version_added: 0.6.0
description:
  - Gathers the host's facts with M(ansible.builtin.setup)'s own collectors and subsets (by
    default C(min), which holds C(service_mgr), C(python), C(user_id), C(env) and
    C(os_family), all the stages and roles use) and sets them as M(ansible.builtin.setup)
    does.
  - Where the task runs on the local connection without become, without a task C(environment),
    and the host's Python is the one running Ansible (the implicit localhost of the embedded
    default), its action plugin gathers them in Ansible's worker process, which is that same
    Python on that same host, instead of shipping a module; elsewhere the module runs on the
    host.
author:
  - llmops.codestack maintainers (@llmops)
options:
  gather_subset:
    description:
      - The subsets, as M(ansible.builtin.setup)'s O(ansible.builtin.setup#module:gather_subset)
        takes them (C(min), C(all), C(!hardware), C(network), ...).
    type: list
    elements: str
    default: [min]
  gather_timeout:
    description: Seconds each collector may take.
    type: int
    default: 10
  fact_path:
    description: The directory of local facts (C(*.fact) files), as M(ansible.builtin.setup)'s.
    type: path
    default: /etc/ansible/facts.d
attributes:
  check_mode:
    support: full
    description: Gathers the same facts in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing changes.
  facts:
    support: full
    description: Sets the facts it gathers, as M(ansible.builtin.setup) does.
  platform:
    support: full
    platforms: posix
    description: POSIX hosts, as M(ansible.builtin.setup)'s collectors.
notes:
  - It never changes anything; check mode gathers the same facts.
seealso:
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: Know the host's service manager
  llmops.codestack.host_facts:
  when: ansible_facts.service_mgr is not defined

- name: Gather the hardware facts too
  llmops.codestack.host_facts:
    gather_subset: [min, hardware]
"""

RETURN = r"""
ansible_facts:
  description: The facts of the subsets, as M(ansible.builtin.setup) returns them.
  returned: always
  type: dict
  sample: {ansible_service_mgr: systemd, ansible_os_family: Debian, ansible_user_id: root}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils import _facts


def main():
    module = AnsibleModule(argument_spec=_facts.ARGUMENT_SPEC, supports_check_mode=True)
    try:
        facts = _facts.gather(module)
    except _facts.FactsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
