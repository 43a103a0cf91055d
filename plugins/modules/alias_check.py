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

import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient


def ask(client, alias, max_tokens):
    """{alias, status, message} of one chat completion through the gateway."""
    try:
        client.request("POST", "chat/completions", body={
            "model": alias, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Say hello."}]})
        return {"alias": alias, "status": 200, "message": ""}
    except ApiError as exc:
        return {"alias": alias, "status": exc.status or None, "message": str(exc)[:300]}


def ask_all(api_base, api_key, aliases, max_tokens=8, timeout=120):
    """Every alias at once (one thread each): the results in the order asked."""
    results = [None] * len(aliases)

    def one(index, alias):
        # No retries: a check that an alias answers, not a client that must get through.
        results[index] = ask(HttpClient(api_base, token=api_key, timeout=timeout, retries=0), alias, max_tokens)

    threads = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(aliases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def define_module():
    return AnsibleModule(
        argument_spec=dict(
            api_base=dict(type="str", required=True),
            api_key=dict(type="str", required=True, no_log=True),
            aliases=dict(type="list", elements="str", required=True),
            max_tokens=dict(type="int", default=8, no_log=False),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )


def main():
    module = define_module()
    p = module.params
    results = [] if module.check_mode else ask_all(
        p["api_base"], p["api_key"], p["aliases"], p["max_tokens"], p["timeout"])
    module.exit_json(changed=False, alias_check={"results": results,
                                                 "failed": [r for r in results if r["status"] != 200]})


if __name__ == "__main__":
    main()
