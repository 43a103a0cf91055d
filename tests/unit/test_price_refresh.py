"""Unit tests of module_utils/_price_refresh.py (provider answers -> catalog entries)."""

import datetime

from ansible_collections.llmops.codestack.plugins.module_utils._price_refresh import (
    carried_entries, gpu_map_from_offers, hetzner_addresses, hetzner_entries, offer_id, previous_refresh, runpod_entries,
    transient, vast_entries)

DAY = datetime.date(2026, 11, 23)
MAP = gpu_map_from_offers([
    {"provider": "runpod", "provider_gpu_id": "NVIDIA GeForce RTX 4090", "gpu": "rtx4090"},
    {"provider": "vast", "provider_gpu_id": "RTX 4090", "gpu": "rtx4090"},
], extra={"vast": {"RTX 5090": "rtx5090"}})


def test_offer_id_format():
    assert offer_id("vast", "RTX 4090", "bid") == "vast:RTX 4090:bid"
    assert offer_id("runpod", "X", "spot", "EU-RO-1") == "runpod:X:spot:EU-RO-1"
    assert offer_id("runpod", "X", "spot", "ALL") == "runpod:X:spot"


def test_runpod_prefers_lowest_price_and_skips_unknown_or_unpriced():
    entries, skipped = runpod_entries([
        {"id": "NVIDIA GeForce RTX 4090", "communityPrice": 0.7, "securePrice": 0.8,
         "communitySpotPrice": 0.4, "lowestPrice": {"uninterruptablePrice": 0.6, "minimumBidPrice": None}},
        {"id": "NVIDIA B200", "communityPrice": 5.0},
    ], MAP, DAY, "src")
    prices = dict((e["id"], e["price_per_hour"]) for e in entries)
    assert prices == {"runpod:NVIDIA GeForce RTX 4090:on_demand": 0.6,
                      "runpod:NVIDIA GeForce RTX 4090:spot": 0.4}
    assert all(e["as_of"] == DAY and e["source"] == "src" and e["gpu"] == "rtx4090" for e in entries)
    assert [s["provider_gpu_id"] for s in skipped] == ["NVIDIA B200"]


def test_vast_takes_cheapest_and_reports_missing_pricing():
    entries, skipped = vast_entries({
        "RTX 4090": {"on_demand": [{"dph_total": 0.5}, {"dph_total": 0.35}],
                     "bid": [{"min_bid": 0.3}, {"min_bid": 0.22}]},
        "RTX 5090": {"on_demand": [{"dph_total": 0.9}], "bid": []},
        "GTX 1080": {"on_demand": [{"dph_total": 0.05}]},
    }, MAP, DAY, "cheapest of {count} {pricing}")
    by_id = dict((e["id"], e) for e in entries)
    assert by_id["vast:RTX 4090:on_demand"]["price_per_hour"] == 0.35
    assert by_id["vast:RTX 4090:on_demand"]["source"] == "cheapest of 2 on_demand"
    assert by_id["vast:RTX 4090:bid"]["price_per_hour"] == 0.22
    assert by_id["vast:RTX 5090:on_demand"]["gpu"] == "rtx5090"
    reasons = sorted((s["provider_gpu_id"], s["reason"][:10]) for s in skipped)
    assert reasons == [("GTX 1080", "no catalog"), ("RTX 5090", "no rentabl")]


def _hourly(location, hourly_net, hourly_gross, monthly_net, monthly_gross):
    """One entry of a server type's ``prices`` as Hetzner's API sends it (strings, EUR)."""
    return {"location": location, "price_hourly": {"net": hourly_net, "gross": hourly_gross},
            "price_monthly": {"net": monthly_net, "gross": monthly_gross}}


def _server_type(name, cores, memory, disk, prices):
    return {"name": name, "cores": cores, "memory": memory, "disk": disk, "architecture": "x86",
            "cpu_type": "shared", "prices": prices}


def test_hetzner_prices_are_parsed_from_strings_and_deprecated_types_dropped():
    entries = hetzner_entries([
        _server_type("cx22", 2, 4.0, 40, [_hourly("fsn1", "0.0060000000", "0.0071400000", "3.7900000000", "4.5101000000")]),
        {"name": "cx11", "deprecation": {"announced": "2024-06-06"}, "prices": []},
    ], DAY, "src")
    assert len(entries) == 1
    assert entries[0]["id"] == "hetzner:cx22:fsn1"
    # the gross figures: what is billed, as the control_server role records it
    assert entries[0]["price_per_hour"] == 0.00714 and entries[0]["price_per_month"] == 4.5101
    assert entries[0]["currency"] == "EUR" and entries[0]["billing"] == "per_started_hour"
    assert entries[0]["cpus"] == 2 and entries[0]["disk_size_gb"] == 40


def test_hetzner_primary_ipv4_prices_come_from_the_pricing_answer():
    pricing = {"pricing": {"currency": "EUR", "primary_ips": [
        {"type": "ipv4", "prices": [{"location": "fsn1", "price_hourly": {"net": "0.0008000000", "gross": "0.0009520000"},
                                     "price_monthly": {"net": "0.5000000000", "gross": "0.5950000000"}}]},
        {"type": "ipv6", "prices": [{"location": "fsn1", "price_hourly": {"net": "0", "gross": "0"},
                                     "price_monthly": {"net": "0", "gross": "0"}}]}]}}
    addresses = hetzner_addresses(pricing)
    assert addresses == {"fsn1": (0.000952, 0.595)}
    entries = hetzner_entries([
        _server_type("cx22", 2, 4.0, 40, [_hourly(loc, "0.006", "0.00714", "3.79", "4.5101") for loc in ("fsn1", "ash")]),
    ], DAY, "src", addresses)
    by_id = dict((e["id"], e) for e in entries)
    assert by_id["hetzner:cx22:fsn1"]["address_price_per_hour"] == 0.000952
    assert by_id["hetzner:cx22:fsn1"]["address_price_per_month"] == 0.595
    assert "address_price_per_hour" not in by_id["hetzner:cx22:ash"]


def test_hetzner_entries_load_as_catalog_control_servers():
    """What the refresh writes is what the planner reads: the loader takes the entries as they are."""
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
    entries = hetzner_entries([
        _server_type("cx32", 4, 8.0, 80, [_hourly("hel1", "0.0109000000", "0.0129710000", "6.8000000000", "8.0920000000")]),
    ], DAY, "Hetzner Cloud GET /v1/server_types")
    catalog = load_catalog(data=[{"control_servers": entries}])
    entry = catalog.control_servers["hetzner:cx32:hel1"]
    assert entry.price_per_hour == 0.012971 and entry.price_per_month == 8.092
    assert entry.location == "hel1" and entry.billing == "per_started_hour"


def test_only_rate_limits_server_and_network_errors_keep_the_old_entries():
    assert [status for status in (0, 400, 401, 403, 404, 429, 500, 502, 503, 504) if transient(status)] \
        == [0, 429, 500, 502, 503, 504]


def test_previous_refresh_is_the_newest_dated_file_not_after_today():
    names = ["catalog-refresh-2026-11-20.yml", "catalog-refresh-2026-11-22.yml",
             "catalog-refresh-2026-11-30.yml", "catalog-refresh-latest.yml", "notes.txt",
             "hetzner-server-types-2026-11-21.json"]
    assert previous_refresh(names, "2026-11-23", "catalog-refresh-", ".yml") == \
        "catalog-refresh-2026-11-22.yml"
    assert previous_refresh(names, "2026-11-22", "catalog-refresh-", ".yml") == \
        "catalog-refresh-2026-11-22.yml"
    assert previous_refresh(names, "2026-11-19", "catalog-refresh-", ".yml") is None
    assert previous_refresh(names, "2026-12-01", "hetzner-server-types-", ".json") == \
        "hetzner-server-types-2026-11-21.json"


def test_carried_entries_keep_their_own_source_and_date():
    old = [{"id": "runpod:X:spot", "provider": "runpod", "source": "RunPod GraphQL", "as_of": "2026-11-20"},
           {"id": "vast:Y:bid", "provider": "vast", "source": "Vast.ai POST", "as_of": "2026-11-20"}]
    kept = carried_entries(old, "runpod")
    assert kept == [old[0]] and kept[0] is not old[0]
    assert carried_entries(None, "runpod") == []
