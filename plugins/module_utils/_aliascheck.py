# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What llmops.codestack.alias_check asks, shared by the module (on the host) and its action
plugin (in Ansible's worker process, on the local connection)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient

ARGUMENT_SPEC = dict(
    api_base=dict(type="str", required=True),
    api_key=dict(type="str", required=True, no_log=True),
    aliases=dict(type="list", elements="str", required=True),
    max_tokens=dict(type="int", default=8, no_log=False),
    timeout=dict(type="int", default=120),
)


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


def check(params, check_mode):
    """The module's result for validated ``params``: nothing is asked in check mode."""
    results = [] if check_mode else ask_all(
        params["api_base"], params["api_key"], params["aliases"], params["max_tokens"], params["timeout"])
    return dict(changed=False, alias_check={"results": results, "failed": [r for r in results if r["status"] != 200]})
