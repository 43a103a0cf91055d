#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: warn
short_description: Show a warning and go on
version_added: 0.1.0
description:
  - Emits O(msg) as an Ansible warning (shown as C([WARNING]) in the output, kept in the task
    result's C(warnings)) and changes nothing.
  - For a step the run can do without, such as an editor extension that cannot be downloaded
    now; the run goes on, and the warning says what to run later.
author:
  - llmops.codestack maintainers (@llmops)
options:
  msg:
    description:
      - The warning.
    type: str
    required: true
attributes:
  check_mode:
    support: full
    description: Warns in check mode as well.
  diff_mode:
    support: none
    description: Nothing to compare.
  platform:
    support: full
    platforms: posix
    description: Any POSIX host.
"""

EXAMPLES = r"""
- name: Say what the user must do later
  llmops.codestack.warn:
    msg: "The extension was not installed (no gallery); run later: code-server --install-extension kilocode.kilo-code@7.7.7"
"""

RETURN = r"""
msg:
  description: The warning that was shown.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"msg": {"type": "str", "required": True}},
                           supports_check_mode=True)
    module.warn(module.params["msg"])
    module.exit_json(changed=False, msg=module.params["msg"])


if __name__ == "__main__":
    main()
