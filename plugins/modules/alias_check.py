#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: alias_check
short_description: Ask every model alias of an OpenAI-compatible gateway once
version_added: 0.2.0
description:
  - Sends one short chat completion per alias to O(api_base), all at once, and reports the
    HTTP status and, for a failure, the error message of each; the route stage's check that
    every role alias answers through the gateway, in one call instead of a request task per
    alias.
  - On the local connection without become its action plugin asks from Ansible's worker
    process, with the same code, instead of starting a Python for the module.
  - Read-only (C(changed) is always false); it does not fail when an alias fails, so that the
    caller can name every failed alias at once.
author:
  - llmops.codestack maintainers (@llmops)
options:
  api_base:
    description:
      - The gateway's OpenAI base URL (ends with C(/v1)).
    type: str
    required: true
  api_key:
    description:
      - The bearer key the gateway expects.
    type: str
    required: true
  aliases:
    description:
      - The model names to ask.
    type: list
    elements: str
    required: true
  max_tokens:
    description:
      - Tokens each answer may have.
    type: int
    default: 8
  timeout:
    description:
      - Seconds each request may take.
    type: int
    default: 120
attributes:
  check_mode:
    support: full
    description: Asks nothing in check mode (RV(alias_check.results) is empty).
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
"""

EXAMPLES = r"""
- name: Ask every role alias through the gateway
  llmops.codestack.alias_check:
    api_base: http://127.0.0.1:4000/v1
    api_key: "{{ master_key }}"
    aliases: [architect, coder]
  register: asked

- name: Check that every alias answered
  ansible.builtin.assert:
    that: asked.alias_check.failed | length == 0
"""

RETURN = r"""
alias_check:
  description: What each alias answered.
  returned: always
  type: dict
  contains:
    results:
      description: One entry per alias, in the order asked.
      type: list
      elements: dict
      sample: [{alias: coder, status: 200, message: ""}]
    failed:
      description: The entries whose status is not 200.
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils import _aliascheck


def main():
    module = AnsibleModule(argument_spec=_aliascheck.ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**_aliascheck.check(module.params, module.check_mode))


if __name__ == "__main__":
    main()
