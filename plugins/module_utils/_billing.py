# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a deployment is billed under its scaling policy (docs/cost-model.md, section 4b).

The planner's work model gives the active compute of a deployment (``work_s``) and its cold
start. How much of the deadline the provider bills depends on who stops the machine:

- ``always_on``: billed from creation until teardown (the deadline), storage while running;
- ``idle_stop`` (RunPod pods, Vast.ai instances): billed per wake for the start (the first a
  full cold start, later ones a resume), its share of the work and the idle tail
  (``idle_timeout_s``) before the waker stops it; storage while running and while stopped;
- ``serverless`` (RunPod serverless): per worker-second for a cold start per wake, the work
  and the idle tail of the endpoint's ``idleTimeout``; nothing while scaled to zero;
- ``keda`` (a cluster the user brings): like ``idle_stop`` at the node's internal price, no
  storage (the node is the owner's).

The number of wakes comes from the blueprint's usage model (``usage``): one wake per working
session in the deadline, more when the work does not fit the sessions. Pure functions of
numbers: the optimiser prices every block with ``bill``; the property tests hold a separate
reference of the same documented formula.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

MODES = ("always_on", "idle_stop", "serverless", "keda")
WAKE_POLICIES = ("wait", "fallback")
HOURS_PER_MONTH = 730.0   # storage is priced per GB-month; providers prorate 730 h a month
USAGE_DEFAULTS = {"sessions_per_day": 3.0, "session_hours": 2.5, "working_days_per_week": 5.0}


def usage_of(blueprint_usage=None):
    """The usage model with its documented defaults: {sessions_per_day, session_hours,
    working_days_per_week} (floats)."""
    out = dict(USAGE_DEFAULTS)
    for key, value in (blueprint_usage or {}).items():
        if value is not None and key in out:
            out[key] = float(value)
    return out


def sessions_within(deadline_h, usage):
    """Working sessions in the deadline: calendar days x working share of the week x sessions
    a day, rounded up, at least one."""
    days = deadline_h / 24.0 * usage["working_days_per_week"] / 7.0
    return max(1, int(math.ceil(days * usage["sessions_per_day"] - 1e-9)))


def expected_wakes(mode, deadline_h, work_h, usage):
    """Starts of a deployment over the deadline: 0 when it never stops, else one per session,
    or more when its work needs more sessions of ``session_hours`` than the deadline holds."""
    if mode == "always_on":
        return 0
    need = int(math.ceil(work_h / usage["session_hours"] - 1e-9)) if work_h > 0 else 0
    return max(sessions_within(deadline_h, usage), need)


def wake_timeout_s(start_s, factor, margin_s):
    """How long a first request may wait for a wake: the planned start x factor + margin."""
    return int(math.ceil(start_s * factor + margin_s))


def _periods(hours, period_h):
    if period_h:
        return math.ceil(hours / period_h - 1e-9) * period_h
    return hours


def disk_sizes(scaling, weight_gb):
    """(volume_gb, container_disk_gb) of a rented machine under its provider's ``scaling``
    terms (the catalog entry, or a plan's ``cost_terms.scaling``): the disk kept while stopped
    holds the weights (when a resume keeps them) plus ``disk_base_gb`` of headroom, rounded up
    to whole GB; the container disk (RunPod: erased at a stop, billed while running only) is
    the catalog's ``container_disk_gb``. The one sizing the plan prices and gpu_provision
    rents, so that the bill is what the plan priced."""
    scaling = scaling or {}
    keep = float(weight_gb or 0.0) if scaling.get("resume_keeps_weights") else 0.0
    volume = float(math.ceil(float(scaling.get("disk_base_gb") or 0.0) + keep))
    return volume, float(scaling.get("container_disk_gb") or 0.0)


def bill(mode, work_s, cold_s, resume_s, idle_timeout_s, wakes, window_h, price_per_hour,
         min_billing_h=0.0, period_h=0.0, setup_usd=0.0, storage_gb=0.0,
         storage_running_usd_gb_h=0.0, storage_stopped_usd_gb_h=0.0, container_gb=0.0):
    """{up_hours, billed_hours, stopped_hours, compute_usd, storage_usd, cost_usd} of one
    deployment over ``window_h`` (creation to teardown).

    Storage: ``storage_gb`` (the disk kept while stopped) and ``container_gb`` (a disk erased
    at a stop) at the running price while up, ``storage_gb`` at the stopped price while
    stopped.

    ``work_s`` is the active compute (interruptions included); ``cold_s`` the first start,
    ``resume_s`` every later wake's start. Billing terms: each up period is billed in whole
    ``period_h`` (0: per second), the total at least ``min_billing_h``, the setup fee once.
    An ``idle_stop``/``keda`` deployment that would be up the whole window is billed always-on.
    """
    if mode == "always_on" or wakes <= 0:
        up_h = max(window_h, (work_s + cold_s) / 3600.0)
        billed = max(_periods(up_h, period_h), min_billing_h)
        return _result(up_h, billed, 0.0, billed * price_per_hour + setup_usd,
                       (storage_gb + container_gb) * storage_running_usd_gb_h * up_h)
    share = work_s / float(wakes)
    first = (cold_s + share + idle_timeout_s) / 3600.0
    later = (resume_s + share + idle_timeout_s) / 3600.0
    up_h = first + (wakes - 1) * later
    if mode != "serverless" and up_h >= window_h:
        return bill("always_on", work_s, cold_s, resume_s, idle_timeout_s, 0, window_h,
                    price_per_hour, min_billing_h, period_h, setup_usd, storage_gb,
                    storage_running_usd_gb_h, storage_stopped_usd_gb_h, container_gb)
    billed = _periods(first, period_h) + (wakes - 1) * _periods(later, period_h)
    billed = max(billed, min_billing_h)
    stopped_h = max(0.0, window_h - up_h) if mode == "idle_stop" else 0.0
    storage = 0.0
    if mode == "idle_stop":
        storage = ((storage_gb + container_gb) * storage_running_usd_gb_h * up_h
                   + storage_gb * storage_stopped_usd_gb_h * stopped_h)
    return _result(up_h, billed, stopped_h, billed * price_per_hour + setup_usd, storage)


def _result(up_h, billed_h, stopped_h, compute, storage):
    return {"up_hours": up_h, "billed_hours": billed_h, "stopped_hours": stopped_h,
            "compute_usd": compute, "storage_usd": storage, "cost_usd": compute + storage}


def gb_hour(usd_per_gb_month):
    """A storage price per GB-month as USD per GB-hour."""
    return usd_per_gb_month / HOURS_PER_MONTH


def role_policy(roles, overrides, default_idle_s, default_policy):
    """(idle_timeout_s, wake_policy) of a deployment serving ``roles`` from the blueprint's
    per-role ``constraints.scaling``: the longest idle timeout its roles ask for (keeping it up
    serves them all); ``fallback`` only when every role accepts it."""
    idle = None
    policies = []
    for role in roles:
        entry = (overrides or {}).get(role) or {}
        if entry.get("idle_timeout_s") is not None:
            idle = entry["idle_timeout_s"] if idle is None else max(idle, entry["idle_timeout_s"])
        policies.append(entry.get("wake_policy") or default_policy)
    policy = "fallback" if policies and all(p == "fallback" for p in policies) else "wait"
    return (default_idle_s if idle is None else idle), policy


CONTROL_BILLING = ("per_second", "per_hour", "per_started_hour")


def _hourly_bill(hours, price, billing, cap):
    """(billed hours, cost) of ``hours`` of existence at ``price`` an hour."""
    if billing == "per_second":
        return hours, hours * price
    billed = float(math.ceil(hours - 1e-9)) if hours > 0 else 0.0
    cost, left = 0.0, billed
    while left > 0:
        month = min(left, HOURS_PER_MONTH)
        part = math.ceil(month - 1e-9) * price
        cost += min(part, float(cap)) if cap else part
        left -= month
    return billed, cost


def control_server_bill(hours, price_per_hour, billing, price_per_month=None, disk_gb=0.0,
                        disk_price_per_gb_hour=0.0, address_price_per_hour=0.0,
                        address_price_per_month=None):
    """What a control server (docs/control-host.md) is billed from creation until teardown,
    ``hours`` later, in its provider's currency; it bills whether it runs or not.

    - ``per_second`` (Exoscale): ``hours x price_per_hour``;
    - ``per_hour``, ``per_started_hour`` (Hetzner Cloud: a partial hour is billed as a full
      one): ``ceil(hours) x price_per_hour``, never more than ``price_per_month`` in one month
      (Hetzner's cap; a month here is ``HOURS_PER_MONTH`` hours, calendar months vary);
    - plus its public IPv4 address where it is billed on its own line (Hetzner's primary IP:
      the same rule at ``address_price_per_hour``, capped at ``address_price_per_month``);
    - plus the root disk per GB-hour, while the server exists (Exoscale).

    Returns ``{"billed_hours", "compute", "address", "disk", "cost"}``.
    """
    if billing not in CONTROL_BILLING:
        raise ValueError("control server billing must be one of %s, not %r"
                         % (", ".join(CONTROL_BILLING), billing))
    hours = max(0.0, float(hours))
    billed, compute = _hourly_bill(hours, float(price_per_hour), billing, price_per_month)
    address = _hourly_bill(hours, float(address_price_per_hour or 0.0), billing,
                           address_price_per_month)[1]
    disk = hours * float(disk_gb or 0.0) * float(disk_price_per_gb_hour or 0.0)
    return {"billed_hours": billed, "compute": compute, "address": address, "disk": disk,
            "cost": compute + address + disk}
