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
      - Vast.ai API key, sent as C(Authorization: Bearer <key>).
      - If not set, the value of the E(VAST_API_KEY) environment variable is used (the variable
        the official C(vastai) client reads too).
      - Set it once for every Vast.ai module with C(module_defaults) and the action group
        C(group/llmops.codestack.vast).
    type: str
    required: true
  api_endpoint:
    description:
      - Base URL of the Vast.ai API; calls go to C(<api_endpoint>/api/v0/...) and
        C(<api_endpoint>/api/v1/instances/).
      - If not set, the value of the E(VAST_URL) environment variable is used (the same variable
        the official C(vastai) client reads), then U(https://console.vast.ai).
      - Tests point it at a local fake.
    type: str
    default: https://console.vast.ai
notes:
  - Calls are retried with exponential backoff on HTTP 429, 502, 503 and 504, honouring
    C(Retry-After). A rejected key fails with one message naming O(api_token).
  - Instances are identified by their label C(<stack_id>--<name>).
"""
