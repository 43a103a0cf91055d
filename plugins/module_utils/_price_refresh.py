# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn provider price answers into catalog entries (docs/catalog-refresh.md).

Pure functions: the callers fetch (RunPod ``gpuTypes``, Vast.ai offer searches, Hetzner
``server_types``) and these build entries in the catalog's ``offers`` format
(``plugins/module_utils/_catalog.py``), each with ``source`` and ``as_of``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def offer_id(provider, provider_gpu_id, pricing, region=None):
    """The catalog offer id: ``<provider>:<provider GPU id>:<pricing>[:<region>]``."""
    parts = [provider, provider_gpu_id, pricing]
    if region and region != "ALL":
        parts.append(region)
    return ":".join(parts)


def gpu_map_from_offers(offers, extra=None):
    """``{(provider, provider_gpu_id): catalog gpu id}`` from existing catalog offers.

    ``offers`` are mappings (or objects) with ``provider``, ``provider_gpu_id`` and ``gpu``;
    ``extra`` is ``{provider: {provider_gpu_id: gpu id}}`` given by the user.
    """
    mapping = {}
    for offer in offers:
        get = offer.get if isinstance(offer, dict) else (lambda k, o=offer: getattr(o, k, None))
        mapping[(get("provider"), get("provider_gpu_id"))] = get("gpu")
    for provider, names in (extra or {}).items():
        for name, gpu in (names or {}).items():
            mapping[(provider, name)] = gpu
    return mapping


def _positive(*values):
    found = [float(v) for v in values if v is not None and float(v) > 0]
    return min(found) if found else None


def _entry(provider, pricing, gpu, provider_gpu_id, price, source, as_of, count=1):
    return {"id": offer_id(provider, provider_gpu_id, pricing), "provider": provider,
            "pricing": pricing, "gpu": gpu, "provider_gpu_id": provider_gpu_id, "count": count,
            "price_per_hour": round(float(price), 4), "currency": "USD", "region": "ALL",
            "source": source, "as_of": as_of}


def runpod_entries(gpu_types, gpu_map, as_of, source):
    """On-demand and spot offers (per GPU, any cloud) from RunPod ``gpuTypes``.

    Returns ``(entries, skipped)``; GPU types the catalog does not know are skipped.
    """
    entries, skipped = [], []
    for gpu_type in gpu_types:
        type_id = gpu_type.get("id")
        gpu = gpu_map.get(("runpod", type_id))
        if not gpu:
            skipped.append({"provider": "runpod", "provider_gpu_id": type_id,
                            "reason": "no catalog GPU for this type (add it with gpu_map)"})
            continue
        lowest = gpu_type.get("lowestPrice") or {}
        on_demand = _positive(lowest.get("uninterruptablePrice")) or _positive(
            gpu_type.get("communityPrice"), gpu_type.get("securePrice"))
        spot = _positive(lowest.get("minimumBidPrice")) or _positive(
            gpu_type.get("communitySpotPrice"), gpu_type.get("secureSpotPrice"))
        for pricing, price in (("on_demand", on_demand), ("spot", spot)):
            if price is None:
                skipped.append({"provider": "runpod", "provider_gpu_id": type_id,
                                "reason": "no %s price" % pricing})
                continue
            entries.append(_entry("runpod", pricing, gpu, type_id, price, source, as_of))
    return entries, skipped


def vast_entries(found, gpu_map, as_of, source_template):
    """On-demand and bid offers from Vast.ai searches.

    ``found`` is ``{gpu_name: {"on_demand": [offers], "bid": [offers]}}``; the price of an
    entry is the cheapest matching offer (``dph_total``; ``min_bid`` for bids).
    ``source_template`` is formatted with ``count`` (offers seen) and ``pricing``.
    Returns ``(entries, skipped)``.
    """
    entries, skipped = [], []
    for name in sorted(found):
        gpu = gpu_map.get(("vast", name))
        if not gpu:
            skipped.append({"provider": "vast", "provider_gpu_id": name,
                            "reason": "no catalog GPU for this name (add it with gpu_map)"})
            continue
        for pricing, field in (("on_demand", "dph_total"), ("bid", "min_bid")):
            offers = found[name].get(pricing) or []
            prices = [float(o[field]) for o in offers if o.get(field) is not None and float(o[field]) > 0]
            if not prices:
                skipped.append({"provider": "vast", "provider_gpu_id": name,
                                "reason": "no rentable %s offer right now" % pricing})
                continue
            source = source_template.format(count=len(prices), pricing=pricing)
            entries.append(_entry("vast", pricing, gpu, name, min(prices), source, as_of))
    return entries, skipped


def hetzner_addresses(pricing):
    """``{location: (hourly, monthly)}``, the gross EUR price of a primary IPv4 address, from
    Hetzner's ``GET /pricing`` answer (its ``pricing`` object, or the whole answer)."""
    pricing = (pricing or {}).get("pricing", pricing) or {}
    out = {}
    for entry in pricing.get("primary_ips") or []:
        if entry.get("type") != "ipv4":
            continue
        for price in entry.get("prices") or []:
            hourly = (price.get("price_hourly") or {}).get("gross")
            monthly = (price.get("price_monthly") or {}).get("gross")
            if price.get("location") and hourly is not None:
                out[price["location"]] = (float(hourly), float(monthly) if monthly else None)
    return out


def hetzner_entries(server_types, as_of, source, addresses=None):
    """The catalog's ``control_servers`` entries (``_catalog.ControlServer``) of Hetzner Cloud's
    server types, one per type and location: id ``hetzner:<type>:<location>``, the gross EUR
    price per hour (what is billed, as the control_server role records it) and the monthly cap,
    billed per started hour. Deprecated types are left out. ``addresses`` (``hetzner_addresses``)
    adds the primary IPv4 address every server gets, which Hetzner bills on its own line.

    Hetzner Cloud has no GPU server types: these price the control plane (gateway, IDE).
    """
    entries = []
    for stype in server_types:
        if stype.get("deprecated") or stype.get("deprecation"):
            continue
        for price in stype.get("prices") or []:
            hourly = price.get("price_hourly") or {}
            monthly = price.get("price_monthly") or {}
            entry = {
                "id": "hetzner:%s:%s" % (stype.get("name"), price.get("location")),
                "provider": "hetzner", "name": stype.get("name"),
                "location": price.get("location"),
                "cpus": stype.get("cores"), "memory_gib": stype.get("memory"),
                "architecture": stype.get("architecture"),
                "price_per_hour": float(hourly.get("gross")),
                "currency": "EUR",
                "disk_price_per_gb_hour": 0.0, "disk_size_gb": stype.get("disk"),
                "billing": "per_started_hour",
                "source": source, "as_of": as_of,
            }
            if monthly.get("gross"):
                entry["price_per_month"] = float(monthly["gross"])
            address = (addresses or {}).get(price.get("location"))
            if address:
                entry["address_price_per_hour"] = address[0]
                if address[1]:
                    entry["address_price_per_month"] = address[1]
            entries.append(entry)
    return entries


def transient(status):
    """Whether an API failure (after the client's retries) may pass by waiting: rate limits,
    server errors and network errors (status 0). A refused key (401/403) or a bad request
    does not: that fails the refresh."""
    return status == 0 or status == 429 or status >= 500


def _dated(name, prefix, suffix):
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    day = name[len(prefix):len(name) - len(suffix)]
    return day if len(day) == 10 and day[4] == "-" and day[7] == "-" else None


def previous_refresh(names, as_of, prefix, suffix):
    """The newest file name among ``names`` of the form ``<prefix><YYYY-MM-DD><suffix>`` dated
    on or before ``as_of`` (an ISO date string), or None."""
    found = sorted((day, name) for day, name in
                   ((_dated(name, prefix, suffix), name) for name in names)
                   if day is not None and day <= as_of)
    return found[-1][1] if found else None


def carried_entries(entries, provider):
    """The entries of ``provider`` from an earlier refresh, unchanged (their own ``source``
    and ``as_of`` say where and when the figures were read)."""
    return [dict(entry) for entry in entries or []
            if isinstance(entry, dict) and entry.get("provider") == provider]
