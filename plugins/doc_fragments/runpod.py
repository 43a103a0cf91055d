# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - RunPod API key, sent in the C(Authorization) header as a bearer token.
      - If not set, the value of the E(RUNPOD_API_KEY) environment variable is used.
      - Set it once for every RunPod module with C(module_defaults) and the action group
        C(group/llmops.codestack.runpod).
    type: str
    required: true
  api_endpoint:
    description:
      - Base URL of the RunPod API; GraphQL calls go to C(<api_endpoint>/graphql).
      - If not set, the value of the E(RUNPOD_API_BASE_URL) environment variable is used
        (the same variable the official C(runpod) SDK reads), then U(https://api.runpod.io).
      - Tests point it at a local fake.
    type: str
    default: https://api.runpod.io
notes:
  - Calls are retried with exponential backoff on HTTP 429, 502, 503 and 504, honouring
    C(Retry-After). A rejected key fails with one message naming O(api_token).
  - RunPod resources have no labels. The stack id is encoded in the resource name as
    C(<stack_id>--<name>); pods also carry it in the environment variable C(CODESTACK_STACK_ID).
"""
