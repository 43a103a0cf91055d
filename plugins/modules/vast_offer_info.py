#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vast_offer_info
short_description: Search Vast.ai GPU offers
version_added: 0.1.0
description:
  - Searches the Vast.ai marketplace for rentable offers matching the filters, best first.
    Rents nothing; always returns C(changed=false).
  - Uses the same filters and order as M(llmops.codestack.vast_instance), so the first offer
    returned is the one C(vast_instance) would rent.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.vast
  - llmops.codestack.vast.offer_filters
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing changes.
options:
  offer_type:
    description:
      - V(on-demand) offers, or V(bid) (interruptible) offers, where C(dph_total) is the current
        minimum bid.
    type: str
    choices: [on-demand, bid]
    default: on-demand
  limit:
    description: Most offers to return.
    type: int
    default: 20
seealso:
  - module: llmops.codestack.vast_instance
"""

EXAMPLES = r"""
- name: The five cheapest verified RTX 4090 in Europe with CUDA 12.1 or newer
  llmops.codestack.vast_offer_info:
    gpu_name: [RTX 4090]
    min_cuda: 12.1
    geolocation: ["NO", SE, DE, PL, NL, FR]
    limit: 5
  register: offers

- name: Show them
  ansible.builtin.debug:
    msg: "{{ offers.offers | map(attribute='dph_total') | list }}"
"""

RETURN = r"""
offers:
  description: Matching offers, best first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Offer id (pass it as O(llmops.codestack.vast_instance#module:offer_id)).
      type: int
      sample: 1002
    gpu_name:
      description: GPU model.
      type: str
      sample: RTX 4090
    num_gpus:
      description: Number of GPUs.
      type: int
      sample: 1
    gpu_ram_gb:
      description: Memory per GPU in GB.
      type: float
      sample: 24.6
    dph_total:
      description: Total price in USD per hour (the minimum bid for O(offer_type=bid)).
      type: float
      sample: 0.35
    min_bid:
      description: Current minimum bid in USD per hour.
      type: float
      sample: 0.22
    storage_cost:
      description: Disk price in USD per GB and month.
      type: float
      sample: 0.2
    reliability:
      description: Host reliability, 0 to 1.
      type: float
      sample: 0.97
    verified:
      description: Whether the host is verified.
      type: bool
      sample: true
    inet_down:
      description: Download bandwidth in Mbit/s.
      type: float
      sample: 500.0
    cuda_max_good:
      description: Highest CUDA version the driver supports.
      type: float
      sample: 12.2
    geolocation:
      description: Where the host is.
      type: str
      sample: Warsaw, PL
    cpu_cores_effective:
      description: CPU cores of the offer.
      type: float
      sample: 12
    cpu_ram:
      description: Host memory in MB.
      type: int
      sample: 48000
    disk_space:
      description: Disk available in GB.
      type: float
      sample: 150.0
query:
  description: The search body sent to C(POST /api/v0/bundles/).
  returned: always
  type: dict
  sample: {"gpu_name": {"in": ["RTX 4090"]}, "order": [["dph_total", "asc"]], "type": "on-demand", "limit": 20}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._vast import (
    OFFER_FILTER_SPEC,
    VAST_AUTH_SPEC,
    client_from_module,
    offer_view,
    query_from_params,
)


class VastOfferInfo:
    def __init__(self, module):
        self.module = module
        self.client = client_from_module(module)

    def search(self):
        p = self.module.params
        query = query_from_params(p, p["offer_type"], limit=p["limit"])
        offers = self.client.search_offers(query)
        return query, [offer_view(o) for o in offers[:p["limit"]]]


def define_module():
    argument_spec = dict(VAST_AUTH_SPEC)
    argument_spec.update(OFFER_FILTER_SPEC)
    argument_spec.update(
        offer_type=dict(type="str", default="on-demand", choices=["on-demand", "bid"]),
        limit=dict(type="int", default=20),
    )
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)


def main():
    module = define_module()
    if module.params["limit"] < 1:
        module.fail_json(msg="limit must be at least 1")
    try:
        query, offers = VastOfferInfo(module).search()
    except ApiError as exc:
        module.fail_json(msg="Vast.ai offer search failed: %s" % exc, status_code=exc.status,
                         error_code=exc.code)
    module.exit_json(changed=False, offers=offers, query=query)


if __name__ == "__main__":
    main()
