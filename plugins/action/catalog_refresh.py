# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.catalog_refresh: provider prices -> dated catalog file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)
from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._price_refresh import (
    carried_entries,
    gpu_map_from_offers,
    hetzner_addresses,
    hetzner_entries,
    previous_refresh,
    runpod_entries,
    transient,
    vast_entries,
)
from ansible_collections.llmops.codestack.plugins.module_utils._runpod import (
    DEFAULT_ENDPOINT as RUNPOD_DEFAULT_ENDPOINT,
    RunPodClient,
)
from ansible_collections.llmops.codestack.plugins.module_utils._vast import (
    DEFAULT_ENDPOINT as VAST_DEFAULT_ENDPOINT,
    VastClient,
    offer_query,
)

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

try:
    import hcloud
    HCLOUD_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - only needed for provider hetzner
    hcloud = None
    HCLOUD_IMPORT_ERROR = _exc

HCLOUD_DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
# Hetzner Cloud error codes (https://docs.hetzner.cloud/#errors) as HTTP statuses
HCLOUD_STATUS = {"unauthorized": 401, "forbidden": 403, "rate_limit_exceeded": 429}
HCLOUD_TRANSIENT = ("unavailable", "timeout", "maintenance", "conflict", "locked")
PROVIDERS = ("runpod", "vast", "hetzner")
CATALOG_PREFIX = "catalog-refresh-"
CATALOG_SUFFIX = ".yml"

ARGUMENT_SPEC = dict(
    dest=dict(type="path", required=True),
    providers=dict(type="list", elements="str", default=list(PROVIDERS), choices=list(PROVIDERS)),
    as_of=dict(type="str"),
    catalog=dict(type="list", elements="path", default=[]),
    gpu_map=dict(type="dict", default={}),
    runpod_api_token=dict(type="str", no_log=True),
    runpod_api_endpoint=dict(type="str"),
    vast_api_token=dict(type="str", no_log=True),
    vast_api_endpoint=dict(type="str"),
    vast_gpu_names=dict(type="list", elements="str"),
    vast_min_reliability=dict(type="float", default=0.95),
    vast_verified=dict(type="bool", default=True),
    hcloud_token=dict(type="str", no_log=True),
    hcloud_api_endpoint=dict(type="str"),
)


def _env(value, *names):
    if value:
        return value
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _read(path):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write(path, text):
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        os.makedirs(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".catalog-refresh-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_diff = True

    # ---------------------------------------------------------------- fetch
    def _runpod(self, args, gpu_map, as_of):
        token = _env(args["runpod_api_token"], "RUNPOD_API_KEY")
        if not token:
            raise AnsibleActionFail("provider runpod needs runpod_api_token (or RUNPOD_API_KEY)")
        endpoint = _env(args["runpod_api_endpoint"], "RUNPOD_API_BASE_URL") or RUNPOD_DEFAULT_ENDPOINT
        gpu_types = RunPodClient(token, endpoint).gpu_types(gpu_count=1)
        source = "RunPod GraphQL gpuTypes %s/graphql (lowestPrice for 1 GPU)" % endpoint.rstrip("/")
        return runpod_entries(gpu_types, gpu_map, as_of, source)

    def _vast(self, args, gpu_map, known, as_of):
        token = _env(args["vast_api_token"], "VAST_API_KEY")
        if not token:
            raise AnsibleActionFail("provider vast needs vast_api_token (or VAST_API_KEY)")
        endpoint = _env(args["vast_api_endpoint"], "VAST_URL") or VAST_DEFAULT_ENDPOINT
        client = VastClient(token, endpoint)
        names = args["vast_gpu_names"] or sorted(name for provider, name in known if provider == "vast")
        found = {}
        for name in names:
            found[name] = {}
            for pricing, offer_type in (("on_demand", "on-demand"), ("bid", "bid")):
                query = offer_query(gpu_name=[name], num_gpus=1, verified=args["vast_verified"],
                                    min_reliability=args["vast_min_reliability"],
                                    offer_type=offer_type, limit=64)
                found[name][pricing] = client.search_offers(query)
        source = ("Vast.ai POST %s/api/v0/bundles/ (cheapest of {count} {pricing} offers, 1 GPU, "
                  "verified=%s, reliability>=%s)" % (endpoint.rstrip("/"), args["vast_verified"],
                                                     args["vast_min_reliability"]))
        return vast_entries(found, gpu_map, as_of, source)

    def _hetzner(self, args, as_of):
        if hcloud is None:
            raise AnsibleActionFail("provider hetzner needs the hcloud Python library on the "
                                    "controller (pip install hcloud): %s" % HCLOUD_IMPORT_ERROR)
        token = _env(args["hcloud_token"], "HCLOUD_TOKEN")
        if not token:
            raise AnsibleActionFail("provider hetzner needs hcloud_token (or HCLOUD_TOKEN)")
        endpoint = _env(args["hcloud_api_endpoint"], "HCLOUD_ENDPOINT") or HCLOUD_DEFAULT_ENDPOINT
        client = hcloud.Client(token=token, api_endpoint=endpoint,
                               application_name="llmops.codestack")
        try:
            types = client.server_types.get_all()
            # the primary IPv4 every server gets is billed on its own line: its price per location
            pricing = client.request("GET", "/pricing")
        except hcloud.APIException as exc:
            status = HCLOUD_STATUS.get(exc.code, 503 if exc.code in HCLOUD_TRANSIENT else 400)
            raise ApiError(status, "Hetzner Cloud: %s (%s)" % (exc.message, exc.code), code=exc.code)
        except (IOError, OSError) as exc:  # requests' connection errors and timeouts
            raise ApiError(0, "cannot reach Hetzner Cloud at %s: %s" % (endpoint, exc))
        raw = [{"name": t.name, "cores": t.cores, "memory": t.memory, "disk": t.disk,
                "architecture": t.architecture, "cpu_type": t.cpu_type, "prices": t.prices,
                "deprecation": bool(t.deprecation)} for t in types]
        source = "Hetzner Cloud GET %s/server_types and /pricing (primary_ips) via hcloud %s" % (
            endpoint.rstrip("/"), getattr(hcloud, "__version__", ""))
        return hetzner_entries(raw, as_of, source, hetzner_addresses(pricing))

    def _keep(self, provider, dest, as_of, exc, warnings):
        """The entries of ``provider`` from the newest earlier refresh in ``dest`` (unchanged:
        their source and as_of say when they were read), and a warning saying so."""
        names = os.listdir(dest) if os.path.isdir(dest) else []
        section = "control_servers" if provider == "hetzner" else "offers"
        name = previous_refresh(names, as_of, CATALOG_PREFIX, CATALOG_SUFFIX)
        entries = []
        if name:
            try:
                doc = yaml.safe_load(_read(os.path.join(dest, name)) or "")
            except yaml.YAMLError:
                doc = None
            doc = doc if isinstance(doc, dict) else {}
            entries = carried_entries(doc.get(section), provider)
        dates = sorted(set(str(e.get("as_of")) for e in entries if isinstance(e, dict)))
        if entries:
            where = "kept its %d entries of %s (as of %s)" % (len(entries), name, ", ".join(dates))
        elif provider == "hetzner":
            where = ("no earlier refresh in %s: the bundled catalog's Hetzner server types stay in "
                     "effect (see their as_of)" % dest)
        else:
            where = ("no earlier refresh in %s: the catalogs' own %s prices stay in effect (see "
                     "their as_of)" % (dest, provider))
        reason = str(exc)
        warnings.append("catalog_refresh: %s did not answer after retries (%s); %s"
                        % (provider, reason, where))
        info = {"reason": reason, "from": os.path.join(dest, name) if entries else None,
                "entries": len(entries), "as_of": dates}
        info[section] = entries
        return info

    # ---------------------------------------------------------------- run
    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not HAS_YAML:
            raise AnsibleActionFail("PyYAML is required on the controller")
        as_of = args["as_of"] or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        try:
            as_of_date = datetime.date.fromisoformat(as_of)
        except ValueError:
            raise AnsibleActionFail("as_of must be a date like 2026-11-22, got %r" % as_of)
        try:
            base = load_catalog(args["catalog"])
        except CatalogError as exc:
            raise AnsibleActionFail("cannot read the catalog to map GPU names: %s" % exc)
        gpu_map = gpu_map_from_offers(list(base.offers.values()), args["gpu_map"])
        dest = args["dest"]
        catalog_path = os.path.join(dest, "%s%s%s" % (CATALOG_PREFIX, as_of, CATALOG_SUFFIX))
        offers, skipped, servers, counts, kept, warnings = [], [], [], {}, {}, []
        for provider in [p for p in PROVIDERS if p in args["providers"]]:
            try:
                if provider == "runpod":
                    entries, left = self._runpod(args, gpu_map, as_of_date)
                elif provider == "vast":
                    entries, left = self._vast(args, gpu_map, gpu_map.keys(), as_of_date)
                else:
                    servers, left = self._hetzner(args, as_of_date), []
                    entries = servers
            except ApiError as exc:
                if not transient(exc.status):
                    raise AnsibleActionFail("price refresh failed: %s" % exc)
                # A rate limit or outage keeps the figures already known, with their own date.
                kept[provider] = self._keep(provider, dest, as_of, exc, warnings)
                if provider == "hetzner":
                    servers = kept[provider].pop("control_servers")
                else:
                    offers += kept[provider].pop("offers")
                continue
            if provider != "hetzner":
                offers += entries
                skipped += left
            counts[provider] = len(entries)
        if kept and not counts:
            raise AnsibleActionFail("price refresh failed: no provider answered (%s); nothing "
                                    "written" % "; ".join("%s: %s" % (name, info["reason"])
                                                          for name, info in kept.items()))
        header = ("---\n# Refreshed by llmops.codestack.catalog_refresh for %s from the provider "
                  "APIs (%s).\n# Layer it over the bundled catalog: "
                  "intent_estimate catalog: [this file]. Format: docs/catalog.md.\n"
                  % (as_of, ", ".join(sorted(counts))))
        if kept:
            header += ("# Not answered, figures kept from an earlier refresh with their own as_of: "
                       "%s.\n" % ", ".join(sorted(kept)))
        body = {"offers": offers}
        if servers:
            body["control_servers"] = servers
        text = header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False,
                                       allow_unicode=True, width=120)
        # The refreshed file must load over the bundled one exactly as the planner loads it.
        try:
            load_catalog(list(args["catalog"]), data=[yaml.safe_load(text)])
        except CatalogError as exc:
            raise AnsibleActionFail("the refreshed catalog does not validate: %s" % exc)

        changed = False
        diffs = []
        for path, new in ((catalog_path, text),):
            old = _read(path)
            if old != new:
                changed = True
                diffs.append({"before": old or "", "after": new, "before_header": path,
                              "after_header": path})
                if not self._task.check_mode:
                    _write(path, new)
        result.update(changed=changed, path=catalog_path, offers=offers, not_priced=skipped,
                      counts=counts, as_of=as_of, kept=kept)
        if warnings:
            result["warnings"] = warnings
        if servers:
            result.update(control_servers=servers)
        if self._task.diff and diffs:
            result["diff"] = diffs
        return result
