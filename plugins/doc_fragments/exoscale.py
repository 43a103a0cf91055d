# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
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
requirements:
  - exoscale >= 0.16.4 (0.16.0 ignores the client's C(url) option)
"""
