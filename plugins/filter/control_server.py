# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control server a stack creates at Hetzner Cloud or Exoscale (roles/control_server).

``control_server_spec`` turns the user's ``codestack_control_server`` (provider, server type,
location, image, ports) into everything the role needs: names, the stack label, the firewall
rules (SSH and the TLS ports only), the SSH port and user. ``control_server_price`` is the
hourly price in USD of a server type from the provider's own price list and the catalog's
currency rate. Their documentation lives in the ``control_server_*.yml`` files beside this one.
"""

from __future__ import annotations

import json
import os
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.module_utils._control import PROVIDERS
from ansible_collections.llmops.codestack.plugins.module_utils._price_refresh import hetzner_addresses

# The label every resource of the stack carries at its provider (teardown's second source).
LABEL = "codestack-stack"
# Hetzner and Exoscale both take label values of up to 63 characters of this alphabet.
_LABEL_VALUE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$")
KNOWN = ("provider", "server_type", "location", "image", "name", "ssh_port", "ssh_user",
         "public_ports", "ssh_sources", "public_sources", "wait_timeout")


def _port(value, what):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("codestack_control_server: %s must be a port number, not %r" % (what, value))
    if not 1 <= port <= 65535:
        raise AnsibleFilterError("codestack_control_server: %s %d is not a port (1-65535)" % (what, port))
    return port


def _sources(value, what):
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and "/" in v for v in value):
        raise AnsibleFilterError("codestack_control_server: %s must be a non-empty list of CIDRs such as "
                                 "0.0.0.0/0, not %r" % (what, value))
    return list(value)


def control_server_spec(server, stack_id, public_ports=None):
    """The full description of the control server to create, checked; AnsibleFilterError names
    every problem of ``server`` (the user's ``codestack_control_server``) at once."""
    if not isinstance(server, dict):
        raise AnsibleFilterError("codestack_control_server must be a dict such as {provider: hetzner, "
                                 "server_type: cx22, location: fsn1, image: debian-12}, not %r" % (server,))
    problems = []
    provider = server.get("provider")
    if provider not in PROVIDERS:
        problems.append("provider must be one of %s, not %r" % (", ".join(sorted(PROVIDERS)), provider))
    unknown = sorted(set(server) - set(KNOWN))
    if unknown:
        problems.append("unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(KNOWN)))
    if not isinstance(stack_id, str) or not _LABEL_VALUE.match(stack_id):
        problems.append("the stack id %r cannot be a label value (1-63 letters, digits, '-', '_', '.')" % (stack_id,))
    if problems:
        raise AnsibleFilterError("codestack_control_server: " + "; ".join(problems))
    defaults = PROVIDERS[provider]
    ports = public_ports if server.get("public_ports") is None else server["public_ports"]
    if not isinstance(ports, (list, tuple)) or not ports:
        raise AnsibleFilterError("codestack_control_server: public_ports must be a non-empty list of the "
                                 "TLS ports (gateway, IDE), not %r" % (ports,))
    ports = sorted(set(_port(p, "public_ports") for p in ports))
    ssh_port = _port(server.get("ssh_port", 22), "ssh_port")
    if ssh_port in ports:
        raise AnsibleFilterError("codestack_control_server: ssh_port %d is also in public_ports" % ssh_port)
    ssh_sources = _sources(server.get("ssh_sources", ["0.0.0.0/0", "::/0"]), "ssh_sources")
    public_sources = _sources(server.get("public_sources", ["0.0.0.0/0", "::/0"]), "public_sources")
    try:
        wait_timeout = int(server.get("wait_timeout", 600))
    except (TypeError, ValueError):
        raise AnsibleFilterError("codestack_control_server: wait_timeout must be seconds, not %r"
                                 % (server.get("wait_timeout"),))
    name = server.get("name") or "%s-control" % stack_id
    # Inbound TCP only, in the shape of Hetzner's firewall rules (ports as strings).
    rules = [{"direction": "in", "protocol": "tcp", "port": str(ssh_port), "source_ips": ssh_sources,
              "description": "SSH (Ansible)"}]
    rules += [{"direction": "in", "protocol": "tcp", "port": str(p), "source_ips": public_sources,
               "description": "TLS (reverse proxy)"} for p in ports]
    return {
        "provider": provider,
        "name": name,
        "server_type": str(server.get("server_type") or defaults["server_type"]),
        "location": str(server.get("location") or defaults["location"]),
        "image": str(server.get("image") or defaults["image"]),
        "labels": {LABEL: stack_id},
        "label_selector": "%s=%s" % (LABEL, stack_id),
        "ssh_key_name": name,
        "firewall_name": name,
        "ssh_port": ssh_port,
        "ssh_user": str(server.get("ssh_user") or defaults["ssh_user"]),
        "public_ports": ports,
        "rules": rules,
        # The same, provider-neutral: [{port, sources, description}] (Exoscale's security group).
        "inbound": [{"port": int(r["port"]), "sources": list(r["source_ips"]), "description": r["description"]}
                    for r in rules],
        "wait_timeout": wait_timeout,
        "keys": list(defaults["keys"]),
    }


def control_server_price(prices, location, usd_per_unit, pricing=None):
    """USD per hour of a server type at ``location``, from the provider's price list.

    ``prices``: Hetzner's ``prices`` of a server type ([{location, price_hourly: {net, gross}}],
    strings in EUR) or a plain number (per hour, in the provider's currency); ``usd_per_unit``:
    the catalog's rate of that currency. The gross price is what is billed. ``pricing``:
    Hetzner's ``GET /pricing`` answer, whose primary IPv4 price at ``location`` is added (Hetzner
    bills it on a line of its own).
    """
    try:
        rate = float(usd_per_unit)
    except (TypeError, ValueError):
        raise AnsibleFilterError("control_server_price: the currency rate must be a number, not %r" % (usd_per_unit,))
    address = 0.0
    if pricing is not None:
        found = hetzner_addresses(pricing)
        if location not in found:
            raise AnsibleFilterError("control_server_price: the price list has no primary IPv4 price at location %r "
                                     "(it has %s)" % (location, ", ".join(sorted(found)) or "none"))
        address = found[location][0]
    if isinstance(prices, (int, float)) and not isinstance(prices, bool):
        return round((float(prices) + address) * rate, 6)
    for entry in prices or []:
        if isinstance(entry, dict) and entry.get("location") == location:
            try:
                return round((float(entry["price_hourly"]["gross"]) + address) * rate, 6)
            except (KeyError, TypeError, ValueError):
                raise AnsibleFilterError("control_server_price: no hourly gross price in %r" % (entry,))
    raise AnsibleFilterError("control_server_price: the server type has no price at location %r (it is "
                             "offered at %s)" % (location, ", ".join(sorted(
                                 str(e.get("location")) for e in prices or [] if isinstance(e, dict))) or "none"))


def control_server_catalog_entry(entries, provider, server_type, usd_per_unit):
    """The entry ``<provider>:<server_type>`` of the catalog's ``control_servers`` section, with
    ``usd_per_hour``: its hourly price plus its root disk (``disk_size_gb`` at
    ``disk_price_per_gb_hour``), in its currency, times ``usd_per_unit``."""
    if not isinstance(entries, list):
        raise AnsibleFilterError("control_server_catalog_entry: the catalog's control_servers must be a list, "
                                 "not %r" % (entries,))
    wanted = "%s:%s" % (provider, server_type)
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == wanted), None)
    if entry is None:
        raise AnsibleFilterError("control_server_catalog_entry: the catalog lists no %s server type %r (it lists %s)" % (
            provider, server_type, ", ".join(str(e.get("name")) for e in entries
                                             if isinstance(e, dict) and e.get("provider") == provider) or "none"))
    try:
        hourly = float(entry["price_per_hour"]) + float(entry.get("disk_price_per_gb_hour") or 0) * float(
            entry.get("disk_size_gb") or 0)
    except (KeyError, TypeError, ValueError):
        raise AnsibleFilterError("control_server_catalog_entry: no numeric price_per_hour in %r" % (entry,))
    return dict(entry, usd_per_hour=control_server_price(hourly, None, usd_per_unit))


def control_server_credential_names(state):
    """The environment variables that remove the stack's created control server: its provider's
    keys and API base (``HCLOUD_TOKEN``, ``HCLOUD_ENDPOINT``; ``EXOSCALE_API_KEY``,
    ``EXOSCALE_API_SECRET``, ``EXOSCALE_API_ENDPOINT``), for each provider at which ``state``
    (state.json) records a server; none when the control host is an inventory host."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("control_server_credential_names: the state must be a dict (state.json), not %r"
                                 % (state,))
    providers = sorted(set(r.get("provider") for r in state.get("resources") or []
                           if isinstance(r, dict) and r.get("kind") == "server" and r.get("provider") in PROVIDERS))
    return [name for p in providers for name in PROVIDERS[p]["keys"] + [PROVIDERS[p]["endpoint"]]]


def control_server_unplanned(spec, planned, usd_per_hour=None):
    """Why the server about to be created is not the one the plan priced (plan.json
    ``control_plane``), or an empty string when it is. ``spec``: ``control_server_spec``'s
    result; ``planned``: the plan's ``control_plane`` (None: the plan priced none);
    ``usd_per_hour``: the provider's live price, when it lists one (Hetzner), which must not be
    above the plan's."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("control_server_unplanned: the spec must be a dict, not %r" % (spec,))
    asked = "%s %s at %s" % (spec.get("provider"), spec.get("server_type"), spec.get("location"))
    if not planned:
        return ("codestack_control_server asks for a control server (%s) that the plan does not price: "
                "plan again with codestack_control_server set (playbooks/plan.yml, or site.yml), so that "
                "the plan's cost includes the server" % asked)
    if not isinstance(planned, dict):
        raise AnsibleFilterError("control_server_unplanned: the plan's control_plane must be a dict, not %r"
                                 % (planned,))
    same = (planned.get("provider") == spec.get("provider") and planned.get("server_type") == spec.get("server_type")
            and planned.get("location") in (None, spec.get("location")))
    if not same:
        return ("the plan priced a control server %s %s at %s, but codestack_control_server asks for %s: plan "
                "again with the server you want" % (planned.get("provider"), planned.get("server_type"),
                                                    planned.get("location") or "any location", asked))
    if usd_per_hour is not None:
        try:
            live, priced = float(usd_per_hour), float(planned.get("usd_per_hour"))
        except (TypeError, ValueError):
            raise AnsibleFilterError("control_server_unplanned: prices must be numbers, not %r and %r"
                                     % (usd_per_hour, planned.get("usd_per_hour")))
        if live > priced * 1.005 + 1e-9:
            return ("%s now costs USD %.6f an hour at its provider, above the plan's USD %.6f (catalog as of %s): "
                    "refresh the catalog (playbooks/refresh_catalog.yml) and plan again, so that the plan "
                    "says what will be billed" % (asked, live, priced, planned.get("as_of")))
    return ""


# What the budget guard's teardown on the control host needs to delete a created server there:
# the Python library and the collection teardown.yml uses for that provider.
TEARDOWN_NEEDS = {"hetzner": {"python": ["hcloud"], "collections": ["hetzner.hcloud"]},
                  "exoscale": {"python": ["exoscale"], "collections": []}}


def control_server_teardown_needs(state, action):
    """``{"python": [distributions], "collections": [names]}`` that the budget guard's teardown
    needs on the control host to delete the stack's created control server: only in destroy mode
    (``action``), for each provider at which ``state`` records a server; empty otherwise."""
    if action not in ("stop", "destroy"):
        raise AnsibleFilterError("control_server_teardown_needs: the action must be stop or destroy, not %r" % (action,))
    needs = {"python": [], "collections": []}
    if action != "destroy":
        return needs
    if not isinstance(state, dict):
        raise AnsibleFilterError("control_server_teardown_needs: the state must be a dict (state.json), not %r"
                                 % (state,))
    providers = sorted(set(r.get("provider") for r in state.get("resources") or []
                           if isinstance(r, dict) and r.get("kind") == "server" and r.get("provider") in TEARDOWN_NEEDS))
    for provider in providers:
        for key in needs:
            needs[key] += [n for n in TEARDOWN_NEEDS[provider][key] if n not in needs[key]]
    return needs


def galaxy_collection_paths(results):
    """``[{name, src}]``: where each collection is installed on the controller, from the
    registered results of ``ansible-galaxy collection list <name> --format json`` (one per name,
    ``item`` the name); the first path listed is the one Ansible loads."""
    out = []
    for result in results or []:
        name = result.get("item") if isinstance(result, dict) else None
        try:
            found = json.loads(result.get("stdout") or "{}")
        except (TypeError, ValueError):
            raise AnsibleFilterError("galaxy_collection_paths: ansible-galaxy's answer for %s is not JSON: %r"
                                     % (name, (result.get("stdout") or "")[:200]))
        paths = [path for path, listed in found.items() if name in (listed or {})]
        if not paths:
            raise AnsibleFilterError("the controller has no %s collection, which the budget guard's teardown needs on "
                                     "the control host to delete the created server: ansible-galaxy collection "
                                     "install %s (requirements.yml lists it)" % (name, name))
        out.append({"name": name, "src": os.path.join(paths[0], *name.split("."))})
    return out


def python_requirements_missing(wanted, have):
    """``["dist==version"]`` for each distribution of ``wanted`` (``{dist: version}``, the
    controller's) that ``have`` (the host's) lacks or has at another version. A distribution the
    controller itself lacks is an error naming it."""
    if not isinstance(wanted, dict) or not isinstance(have, dict):
        raise AnsibleFilterError("python_requirements_missing: both arguments must be dicts, not %r and %r"
                                 % (wanted, have))
    absent = sorted(d for d, version in wanted.items() if not version)
    if absent:
        raise AnsibleFilterError("the controller's Python lacks %s, which the budget guard's teardown needs on the "
                                 "control host: pip install -r requirements.txt" % ", ".join(absent))
    return ["%s==%s" % (d, v) for d, v in sorted(wanted.items()) if have.get(d) != v]


class FilterModule(object):
    def filters(self):
        return {"control_server_spec": control_server_spec, "control_server_price": control_server_price,
                "control_server_catalog_entry": control_server_catalog_entry,
                "control_server_credential_names": control_server_credential_names,
                "control_server_unplanned": control_server_unplanned,
                "control_server_teardown_needs": control_server_teardown_needs,
                "galaxy_collection_paths": galaxy_collection_paths,
                "python_requirements_missing": python_requirements_missing}
