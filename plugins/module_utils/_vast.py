# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin Vast.ai REST client over :mod:`_http`.

Bodies are dicts and query strings are built by ``urlencode`` from dicts (JSON-encoded values,
as the official ``vastai`` client sends them). Vast answers some failures with HTTP 200 and
``{"success": false, "error": ..., "msg": ...}``: those raise :class:`ApiError` too. An offer
that was rented by someone else between search and create raises :class:`CapacityError` so
that callers can fall back to the next offer.

Stack identity: instances carry the label ``<stack_id>--<name>`` (see :func:`make_label`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

from ansible.module_utils.basic import env_fallback
from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient

DEFAULT_ENDPOINT = "https://console.vast.ai"
SEPARATOR = "--"
# Error codes / message fragments Vast uses when an offer can no longer be rented.
CAPACITY_CODES = ("no_such_ask", "ask_not_available", "offer_unavailable", "insufficient_capacity")
CAPACITY_MESSAGES = ("no longer available", "already rented", "not available", "is not rentable")
AUTH_MESSAGE = "Vast.ai rejected the API key: check api_token (or VAST_API_KEY)"
PAGE_LIMIT = 25
MAX_PAGES = 400


class CapacityError(ApiError):
    """The offer is gone (rented by someone else, or no longer offered)."""


def make_label(stack_id, name):
    """The instance label that carries the stack id."""
    return "%s%s%s" % (stack_id, SEPARATOR, name)


def split_label(label):
    """``(stack_id, name)`` of a label, or ``(None, label)``."""
    if label and SEPARATOR in label:
        stack_id, name = label.split(SEPARATOR, 1)
        return stack_id, name
    return None, label


def _is_capacity(code, message):
    lowered = (message or "").lower()
    return code in CAPACITY_CODES or any(m in lowered for m in CAPACITY_MESSAGES)


def _failure(status, body, what):
    """An :class:`ApiError` (or :class:`CapacityError`) for a ``success:false`` body."""
    code = body.get("error") if isinstance(body.get("error"), str) else None
    message = body.get("msg") or body.get("message") or code or "request failed"
    message = "%s: %s" % (what, message)
    if _is_capacity(code, message):
        return CapacityError(status, message, body=body, code=code or "offer_unavailable")
    return ApiError(status, message, body=body, code=code)


class VastClient:
    """Vast.ai calls used by the collection. Raises :class:`ApiError`."""

    def __init__(self, token, endpoint=DEFAULT_ENDPOINT, http=None, **http_args):
        self.http = http or HttpClient(endpoint or DEFAULT_ENDPOINT, token=token, **http_args)

    def call(self, method, path, body=None, query=None, what=None, http=None):
        what = what or "%s %s" % (method, path)
        try:
            answer = (http or self.http).request(method, path, body=body, query=query)
        except ApiError as exc:
            if exc.status == 401:
                raise ApiError(401, AUTH_MESSAGE, body=exc.body, code="unauthorized")
            body = exc.body if isinstance(exc.body, dict) else {}
            if body.get("success") is False or body.get("error"):
                raise _failure(exc.status, body, what)
            raise
        if isinstance(answer, dict) and answer.get("success") is False:
            raise _failure(200, answer, what)
        return answer

    # offers -------------------------------------------------------------
    def search_offers(self, query):
        """``query`` is the filter dict of ``POST /api/v0/bundles/`` (operators, order, limit)."""
        answer = self.call("POST", "/api/v0/bundles/", body=query, what="offer search")
        return (answer or {}).get("offers") or []

    # instances ----------------------------------------------------------
    def create_instance(self, offer_id, spec):
        """Rent an offer; returns the new instance id.

        Renting is not idempotent: after a 502/503/504 or a lost connection the API may have
        rented the offer anyway, so instead of blindly sending the request again, the instance
        is looked up by its label first (429 is safe to retry and is retried as usual).
        """
        once = copy.copy(self.http)
        once.retry_statuses = (429,)
        once.retry_network = False
        label = spec.get("label")
        delay = self.http.backoff
        for attempt in range(self.http.retries + 1):
            try:
                answer = self.call("PUT", "/api/v0/asks/%d/" % int(offer_id), body=spec,
                                   what="renting offer %s" % offer_id, http=once)
                break
            except ApiError as exc:
                if exc.status not in (0, 502, 503, 504) or attempt == self.http.retries:
                    raise
                if label:
                    rows = self.list_instances({"label": {"eq": label}})
                    existing = [r for r in rows if r.get("label") == label]
                    if existing:
                        return int(existing[-1]["id"])
                self.http._sleep(min(self.http.max_backoff, delay))
                delay *= 2
        contract = (answer or {}).get("new_contract")
        if contract is None:
            raise ApiError(200, "renting offer %s returned no instance id" % offer_id, body=answer)
        return int(contract)

    def get_instance(self, instance_id):
        """The instance, or None when it does not exist (any more)."""
        try:
            answer = self.call("GET", "/api/v0/instances/%d/" % int(instance_id),
                               query={"owner": "me"}, what="reading instance %s" % instance_id)
        except ApiError as exc:
            if exc.status == 404 or exc.code == "no_such_instance":
                return None
            raise
        return (answer or {}).get("instances") or None

    def list_instances(self, select_filters=None):
        """Every instance of the account (paginated ``/api/v1/instances/``)."""
        rows = []
        query = {"limit": PAGE_LIMIT, "order_by": [{"col": "id", "dir": "asc"}]}
        if select_filters:
            query["select_filters"] = select_filters
        for _page in range(MAX_PAGES):
            encoded = dict((k, v if isinstance(v, str) else json.dumps(v)) for k, v in query.items())
            answer = self.call("GET", "/api/v1/instances/", query=encoded,
                               what="listing instances") or {}
            rows.extend(answer.get("instances") or [])
            token = answer.get("next_token")
            if not token:
                return rows
            query["after_token"] = token
        raise ApiError(200, "listing instances: more than %d pages" % MAX_PAGES)

    def set_label(self, instance_id, label):
        return self.call("PUT", "/api/v0/instances/%d/" % int(instance_id), body={"label": label},
                         what="labelling instance %s" % instance_id)

    def set_state(self, instance_id, state):
        return self.call("PUT", "/api/v0/instances/%d/" % int(instance_id), body={"state": state},
                         what="setting instance %s %s" % (instance_id, state))

    def destroy_instance(self, instance_id):
        """Destroy an instance; True if it existed."""
        try:
            self.call("DELETE", "/api/v0/instances/%d/" % int(instance_id), body={},
                      what="destroying instance %s" % instance_id)
        except ApiError as exc:
            if exc.status == 404 or exc.code == "no_such_instance":
                return False
            raise
        return True


def offer_query(gpu_name=None, num_gpus=None, min_gpu_ram_gb=None, max_dph=None,
                min_reliability=None, verified=True, geolocation=None, min_cuda=None,
                offer_type="on-demand", order=None, limit=64, min_disk_gb=None):
    """The ``bundles`` filter dict for the options the modules expose."""
    query = {"rentable": {"eq": True}, "rented": {"eq": False}, "external": {"eq": False}}
    if verified is not None:
        query["verified"] = {"eq": bool(verified)}
    if gpu_name:
        names = [gpu_name] if isinstance(gpu_name, str) else list(gpu_name)
        query["gpu_name"] = {"in": names}
    if num_gpus:
        query["num_gpus"] = {"eq": int(num_gpus)}
    if min_gpu_ram_gb:
        query["gpu_ram"] = {"gte": float(min_gpu_ram_gb) * 1000.0}
    if max_dph is not None:
        query["dph_total"] = {"lte": float(max_dph)}
    if min_reliability is not None:
        query["reliability"] = {"gte": float(min_reliability)}
    if geolocation:
        codes = [geolocation] if isinstance(geolocation, str) else list(geolocation)
        query["geolocation"] = {"in": codes}
    if min_cuda is not None:
        query["cuda_max_good"] = {"gte": float(min_cuda)}
    if min_disk_gb:
        query["disk_space"] = {"gte": float(min_disk_gb)}
    query["order"] = order or [["dph_total", "asc"]]
    query["type"] = "bid" if offer_type == "bid" else "on-demand"
    query["limit"] = int(limit)
    return query


def parse_order(order):
    """``["dph_total", "-reliability"]`` → ``[["dph_total", "asc"], ["reliability", "desc"]]``."""
    out = []
    for item in order or []:
        item = item.strip()
        if item.startswith("-"):
            out.append([item[1:], "desc"])
        else:
            out.append([item.lstrip("+"), "asc"])
    return out


def query_from_params(params, offer_type="on-demand", limit=64):
    """The offer search of the ``vast.offer_filters`` doc fragment options."""
    return offer_query(gpu_name=params.get("gpu_name"), num_gpus=params.get("num_gpus"),
                       min_gpu_ram_gb=params.get("min_gpu_ram_gb"), max_dph=params.get("max_dph"),
                       min_reliability=params.get("min_reliability"),
                       verified=params.get("verified"), geolocation=params.get("geolocation"),
                       min_cuda=params.get("min_cuda"), offer_type=offer_type,
                       order=parse_order(params.get("order")), limit=limit)


def offer_view(offer):
    """The offer fields the collection returns, with VRAM in GB."""
    ram = offer.get("gpu_ram")
    return {
        "id": offer.get("id"),
        "gpu_name": offer.get("gpu_name"),
        "num_gpus": offer.get("num_gpus"),
        "gpu_ram_gb": round(float(ram) / 1000.0, 1) if ram is not None else None,
        "dph_total": offer.get("dph_total"),
        "min_bid": offer.get("min_bid"),
        "storage_cost": offer.get("storage_cost"),
        "reliability": offer.get("reliability"),
        "verified": offer.get("verified"),
        "inet_down": offer.get("inet_down"),
        "cuda_max_good": offer.get("cuda_max_good"),
        "geolocation": offer.get("geolocation"),
        "cpu_cores_effective": offer.get("cpu_cores_effective"),
        "cpu_ram": offer.get("cpu_ram"),
        "disk_space": offer.get("disk_space"),
    }


OFFER_FILTER_SPEC = dict(
    gpu_name=dict(type="list", elements="str"),
    num_gpus=dict(type="int", default=1),
    min_gpu_ram_gb=dict(type="float"),
    max_dph=dict(type="float"),
    min_reliability=dict(type="float"),
    verified=dict(type="bool", default=True),
    geolocation=dict(type="list", elements="str"),
    min_cuda=dict(type="float"),
    order=dict(type="list", elements="str", default=["dph_total", "-reliability"]),
)

VAST_AUTH_SPEC = dict(
    api_token=dict(type="str", required=True, no_log=True,
                   fallback=(env_fallback, ["VAST_API_KEY"])),
    api_endpoint=dict(type="str", default=DEFAULT_ENDPOINT,
                      fallback=(env_fallback, ["VAST_URL"])),
)


def client_from_module(module):
    """A client built from the ``vast`` doc fragment options of an AnsibleModule."""
    return VastClient(module.params["api_token"], module.params["api_endpoint"])
