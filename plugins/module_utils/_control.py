# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control server a stack can create (docs/control-host.md): the providers' defaults, and
what the plan prices it at from the dated catalog (plan.json ``control_plane``).

One source for the control_server role's filters (``plugins/filter/control_server.py``) and the
planner, so that the server the plan prices is the server the role creates.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmops.codestack.plugins.module_utils import _billing

PROVIDERS = {
    "hetzner": {"endpoint": "HCLOUD_ENDPOINT", "server_type": "cx22", "location": "fsn1", "image": "debian-12",
                "keys": ["HCLOUD_TOKEN"], "ssh_user": "root"},
    # Exoscale: standard.medium has cx22's 2 vCPU and 4 GB; its Debian template logs in as debian
    # (passwordless sudo), not root.
    "exoscale": {"endpoint": "EXOSCALE_API_ENDPOINT", "server_type": "standard.medium", "location": "ch-gva-2",
                 "image": "Linux Debian 12 (Bookworm) 64-bit", "keys": ["EXOSCALE_API_KEY", "EXOSCALE_API_SECRET"],
                 "ssh_user": "debian"},
}


class ControlPlaneError(ValueError):
    """The control server cannot be priced (unknown provider, type or location)."""


def requested(server):
    """(provider, server_type, location) of the user's ``codestack_control_server``, with the
    provider's defaults; None when the stack creates no server (the controller or an inventory
    host runs the control plane, which the stack does not bill)."""
    if not server:
        return None
    if not isinstance(server, dict):
        raise ControlPlaneError("codestack_control_server must be a dict such as {provider: hetzner, "
                                "server_type: cx22, location: fsn1}, not %r" % (server,))
    provider = server.get("provider")
    if provider not in PROVIDERS:
        raise ControlPlaneError("codestack_control_server: provider must be one of %s, not %r"
                                % (", ".join(sorted(PROVIDERS)), provider))
    defaults = PROVIDERS[provider]
    return (provider, str(server.get("server_type") or defaults["server_type"]),
            str(server.get("location") or defaults["location"]))


def catalog_entry(entries, provider, server_type, location):
    """The catalog's ``control_servers`` entry for this server: ``<provider>:<type>:<location>``
    (Hetzner prices by location), else ``<provider>:<type>`` (one price in every zone)."""
    for key in ("%s:%s:%s" % (provider, server_type, location), "%s:%s" % (provider, server_type)):
        if key in entries:
            return entries[key]
    listed = sorted(key for key in entries if key.startswith(provider + ":"))
    raise ControlPlaneError(
        "the catalog prices no %s server type %r at %r (it lists %s); fix: refresh the prices "
        "(playbooks/refresh_catalog.yml) and pass the refreshed file in plan_catalog, or add the "
        "type to a user catalog's control_servers" % (
            provider, server_type, location, ", ".join(listed) or "none"))


def price(entry, hours, usd_per_unit):
    """plan.json ``control_plane``: what the server costs from creation until teardown,
    ``hours`` later (the plan's window), billed the way its provider bills (``_billing``)."""
    bill = _billing.control_server_bill(hours, entry.price_per_hour, entry.billing,
                                        entry.price_per_month, entry.disk_size_gb,
                                        entry.disk_price_per_gb_hour, entry.address_price_per_hour,
                                        entry.address_price_per_month)
    rate = float(usd_per_unit)
    return {
        "provider": entry.provider,
        "server_type": entry.name,
        "location": entry.location,
        "catalog_id": entry.id,
        "billing": entry.billing,
        "currency": entry.currency,
        "price_per_hour": entry.price_per_hour,
        "price_per_month": entry.price_per_month,
        # its public IPv4, where billed on its own line (Hetzner), in currency an hour
        "address_price_per_hour": entry.address_price_per_hour,
        # server, address and disk: what the control_server role records, and the most it
        # accepts live
        "usd_per_hour": round((entry.price_per_hour + entry.address_price_per_hour
                               + entry.disk_size_gb * entry.disk_price_per_gb_hour) * rate, 6),
        "hours": round(float(hours), 3),
        "billed_hours": round(bill["billed_hours"], 3),
        "disk_gb": entry.disk_size_gb,
        "address_cost": round(bill["address"], 4),
        "cost": round(bill["cost"], 4),
        "cost_usd": round(bill["cost"] * rate, 4),
        "source": entry.source,
        "as_of": entry.as_of.isoformat(),
        "unverified": list(entry.unverified),
    }
