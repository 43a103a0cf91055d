# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_endpoint:
    description:
      - Base URL of the LiteLLM proxy, for example V(http://127.0.0.1:4000).
      - If not set, the value of the E(LITELLM_API_BASE) environment variable is used, and
        V(http://127.0.0.1:4000) when that is not set either.
    type: str
  api_key:
    description:
      - The proxy's master key (it starts with C(sk-)), sent in the C(Authorization) header as a bearer token.
      - If not set, the value of the E(LITELLM_MASTER_KEY) environment variable is used.
    type: str
  http_timeout:
    description:
      - Seconds to wait for one answer of the proxy.
    type: int
    default: 30
"""
