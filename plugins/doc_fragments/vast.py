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
      - "Vast.ai API key, sent as C(Authorization: Bearer <key>)."
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

    # Offer search options shared by vast_instance and vast_offer_info.
    OFFER_FILTERS = r"""
options:
  gpu_name:
    description:
      - GPU models to accept, as Vast.ai names them (V(RTX 4090), V(A100 SXM4), V(H100 SXM)).
    type: list
    elements: str
  num_gpus:
    description: Exact number of GPUs of the offer.
    type: int
    default: 1
  min_gpu_ram_gb:
    description: Minimum memory per GPU in GB (Vast.ai reports MB; 1 GB = 1000 MB here).
    type: float
  max_dph:
    description: Highest total price in USD per hour (C(dph_total)) to accept.
    type: float
  min_reliability:
    description: Lowest host reliability to accept, between 0 and 1.
    type: float
  verified:
    description: Only verified hosts (V(true)), only unverified ones (V(false)).
    type: bool
    default: true
  geolocation:
    description:
      - Regions to accept, as country codes (V(NO), V(DE), V(US)) or full Vast.ai
        C(geolocation) strings such as V(Oslo, NO).
    type: list
    elements: str
  min_cuda:
    description: Lowest CUDA version the host driver must support (C(cuda_max_good)), e.g. V(12.1).
    type: float
  order:
    description:
      - Sort order of the offers, best first. Each entry is a field name, ascending, or a field
        name with a leading C(-), descending. The default picks the cheapest offer and, among
        equally priced ones, the most reliable, which is the order the planner ranks offers in.
    type: list
    elements: str
    default: [dph_total, -reliability]
"""
