#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: catalog_refresh
short_description: Refresh the planner's price catalog from the RunPod, Vast.ai and Hetzner APIs
version_added: 0.1.0
description:
  - Reads current prices from the providers' APIs and writes a dated catalog file in the
    catalog format (docs/catalog.md) that the planner layers over the bundled catalog
    (O(llmops.codestack.intent_estimate#module:catalog)). Every entry carries C(source) (the API
    call) and C(as_of) (the refresh date).
  - RunPod, through the GraphQL C(gpuTypes) query with variables; on-demand and spot prices for
    one GPU (C(lowestPrice)).
  - Vast.ai, through offer searches (C(POST /api/v0/bundles/)); the cheapest verified, reliable
    single-GPU on-demand offer and the lowest minimum bid of each GPU model.
  - Hetzner Cloud, through the C(hcloud) library's C(server_types); Hetzner Cloud has no GPU
    server types, so these CPU prices (gross EUR, per location) go to the same file's
    C(control_servers) section, which prices a created control server.
  - Provider GPU names are mapped to catalog GPUs through the catalog's existing offers
    (C(provider_gpu_id) to C(gpu)) and O(gpu_map); unknown GPUs are reported in C(not_priced).
  - The refreshed file is validated with the planner's own catalog loader before it is written.
    Nothing is written when the content is unchanged (a second run the same day reports no change).
  - This is an action plugin; it runs on the controller.
author:
  - llmops.codestack maintainers (@llmops)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Prices are read; nothing is written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
options:
  dest:
    description: Folder the dated files are written to (created if missing).
    type: path
    required: true
  providers:
    description: Providers to read.
    type: list
    elements: str
    choices: [runpod, vast, hetzner]
    default: [runpod, vast, hetzner]
  as_of:
    description: Date written on every entry and in the file names (C(YYYY-MM-DD)); today (UTC) by default.
    type: str
  catalog:
    description: User catalog files layered over the bundled catalog, for the GPU name mapping and the validation.
    type: list
    elements: path
    default: []
  gpu_map:
    description:
      - "Extra provider GPU names, C({provider: {provider_gpu_id: catalog gpu id}}), for GPUs the
        catalog's offers do not name yet."
    type: dict
    default: {}
  runpod_api_token:
    description: RunPod API key; E(RUNPOD_API_KEY) when not set.
    type: str
  runpod_api_endpoint:
    description: RunPod API base URL; E(RUNPOD_API_BASE_URL), then U(https://api.runpod.io).
    type: str
  vast_api_token:
    description: Vast.ai API key; E(VAST_API_KEY) when not set.
    type: str
  vast_api_endpoint:
    description: Vast.ai API base URL; E(VAST_URL), then U(https://console.vast.ai).
    type: str
  vast_gpu_names:
    description: Vast.ai GPU names to price; by default every Vast.ai GPU the catalog names.
    type: list
    elements: str
  vast_min_reliability:
    description: Lowest host reliability of the Vast.ai offers priced.
    type: float
    default: 0.95
  vast_verified:
    description: Price verified Vast.ai hosts only.
    type: bool
    default: true
  hcloud_token:
    description: Hetzner Cloud API token; E(HCLOUD_TOKEN) when not set.
    type: str
  hcloud_api_endpoint:
    description: Hetzner Cloud API base URL; E(HCLOUD_ENDPOINT), then U(https://api.hetzner.cloud/v1).
    type: str
notes:
  - Calls are retried on HTTP 429, 502, 503, 504 and network errors (honouring C(Retry-After)).
    A provider still rate-limited, failing (5xx) or unreachable after the retries keeps its
    entries of the newest earlier refresh in O(dest), unchanged with their own C(as_of), and a
    warning says so (RV(kept)). A refused key or another client error fails the task and writes
    nothing, as does a run where no provider answered.
  - Exoscale publishes no price API and Hetzner's dedicated GPU servers (Robot API) are not read;
    their bundled catalog entries list their prices as C(unverified).
  - Needs C(pydantic) and C(PyYAML) on the controller, and C(hcloud) for provider V(hetzner).
seealso:
  - module: llmops.codestack.intent_estimate
  - module: llmops.codestack.vast_offer_info
"""

EXAMPLES = r"""
- name: Refresh today's prices
  llmops.codestack.catalog_refresh:
    dest: "{{ lookup('ansible.builtin.env', 'HOME') }}/.config/codestack/catalog"
  register: refreshed

- name: Plan with them
  llmops.codestack.intent_estimate:
    blueprint: blueprints/small-cli.yml
    catalog: ["{{ refreshed.path }}"]

- name: Only Vast.ai, with a GPU the catalog does not map yet
  llmops.codestack.catalog_refresh:
    dest: ./catalog.d
    providers: [vast]
    vast_gpu_names: [RTX 4090, RTX 5090]
    gpu_map:
      vast:
        RTX 5090: rtx5090
"""

RETURN = r"""
path:
  description: The dated catalog file.
  returned: success
  type: str
  sample: /home/me/.config/codestack/catalog/catalog-refresh-2026-11-22.yml
offers:
  description: The catalog offers written (catalog C(offers) format).
  returned: success
  type: list
  elements: dict
  sample: [{"id": "vast:RTX 4090:on_demand", "provider": "vast", "pricing": "on_demand", "gpu": "rtx4090",
            "provider_gpu_id": "RTX 4090", "count": 1, "price_per_hour": 0.35, "currency": "USD",
            "region": "ALL", "source": "Vast.ai POST https://console.vast.ai/api/v0/bundles/ (...)",
            "as_of": "2026-11-22"}]
not_priced:
  description: Provider GPUs not written, with the reason.
  returned: success
  type: list
  elements: dict
  sample: [{"provider": "runpod", "provider_gpu_id": "NVIDIA B200", "reason": "no catalog GPU for this type (add it with gpu_map)"}]
counts:
  description: Entries written per provider.
  returned: success
  type: dict
  sample: {"runpod": 10, "vast": 8, "hetzner": 12}
kept:
  description:
    - Providers that did not answer after the retries, with the error, the earlier file their
      entries were kept from (null when there was none) and the dates of those entries.
  returned: success
  type: dict
  sample: {"runpod": {"reason": "HTTP 429: Too Many Requests", "from": "/home/me/catalog/catalog-refresh-2026-11-21.yml",
           "entries": 10, "as_of": ["2026-11-21"]}}
as_of:
  description: The date of the refresh.
  returned: success
  type: str
  sample: "2026-11-22"
control_servers:
  description:
    - Hetzner Cloud server types as the catalog's C(control_servers) entries, one per type and
      location, written to the same dated file; the planner prices a created control server with
      them (docs/control-host.md). Prices are gross EUR (what is billed), per started hour, with
      the monthly cap.
  returned: when provider hetzner was read
  type: list
  elements: dict
  sample: [{"id": "hetzner:cx22:fsn1", "provider": "hetzner", "name": "cx22", "location": "fsn1", "cpus": 2,
            "memory_gib": 4.0, "price_per_hour": 0.00714, "price_per_month": 4.5101, "currency": "EUR",
            "disk_price_per_gb_hour": 0.0, "disk_size_gb": 40, "billing": "per_started_hour",
            "as_of": "2026-11-22"}]
"""
