# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What teardown.yml removes, and what it cost.

Five filters share this file: ``teardown_search`` (which providers to ask for the stack's
labelled resources, and the keys missing to ask the ones it needs), ``teardown_targets`` (the
stack's state file + what the providers list under the stack's label -> one entry per resource,
each with its source), ``teardown_report`` (those entries + the outcome of each removal ->
hours, USD, totals), ``serverless_billed`` (RunPod's serverless billing history -> USD and
seconds per endpoint) and ``plan_billed`` (the plan's billed estimate beside what its
resources were billed so far, per deployment: the comparison calibrate.yml reports, by
``teardown_report``'s own arithmetic).
Their documentation lives in the ``teardown_*.yml`` files beside this one.
"""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.module_utils import _stack

# Removal order: what bills most first (GPUs), then the free local services, the guard last.
# A control server goes before its firewall (Hetzner refuses to delete one still applied) and
# its SSH key; the control server's services are stopped on it before it goes.
ORDER = {"pod": 0, "instance": 0, "endpoint": 1, "service": 2, "guard": 3, "server": 4,
         "firewall": 5, "security_group": 5, "ssh_key": 6}


def _parse_time(text):
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise AnsibleFilterError("teardown: %r is not a UTC timestamp (YYYY-MM-DDTHH:MM:SSZ)" % (text,))


# The providers teardown can ask for labelled resources, the state-file providers each covers,
# and the environment variable of its key.
SEARCHES = {
    "runpod": {"providers": ("runpod", "runpod_serverless"), "key": "RUNPOD_API_KEY"},
    "vast": {"providers": ("vast",), "key": "VAST_API_KEY"},
    # The control server's tasks read their keys from the environment only.
    "hetzner": {"providers": ("hetzner",), "key": "HCLOUD_TOKEN", "env_only": True},
    "exoscale": {"providers": ("exoscale",), "key": "EXOSCALE_API_KEY and EXOSCALE_API_SECRET", "env_only": True},
}


def teardown_search(state, plan=None, keyed=None, search=None, state_found=True, control_server=None):
    """Which providers to ask, and which keys are missing to find what the stack may have.

    ``keyed``: {runpod: bool, vast: bool}, whether each key is set; ``search``: {runpod: auto|
    always|never, ...}. A provider is needed when the state file lists its resources, or, with no
    state file (teardown by labels alone), when the plan rents on it (a rented deployment or one
    of its alternatives) or there is no plan either. Hetzner and Exoscale hold only a created
    control server: they are needed when the state file lists its resources or, without a state
    file, when ``control_server`` (the ``codestack_control_server`` variable) names them; their
    tasks read the keys from the environment only. A needed provider in mode auto without its key
    is missing: teardown cannot list what the stack has there.
    """
    state = state or {}
    listed = set(r.get("provider") for r in state.get("resources") or [] if isinstance(r, dict))
    rented = set()
    for dep in (plan or {}).get("deployments") or []:
        if dep.get("provider") != "local":
            rented.add(dep.get("provider"))
            rented.update(alt.get("provider") for alt in dep.get("alternatives") or [])
    control = (control_server or {}).get("provider") if isinstance(control_server, dict) else None
    ask, needed, missing = {}, [], []
    for name, spec in sorted(SEARCHES.items()):
        mode = (search or {}).get(name, "auto")
        if mode not in ("auto", "always", "never"):
            raise AnsibleFilterError("teardown_search_%s must be auto, always or never, not %r" % (name, mode))
        has_key = bool((keyed or {}).get(name))
        in_state = bool(listed.intersection(spec["providers"]))
        if spec.get("env_only"):
            # A control server exists only where codestack_control_server asked for one.
            may_have = in_state or (not state_found and control in spec["providers"])
        else:
            may_have = in_state or (not state_found and (not plan or bool(rented.intersection(spec["providers"]))))
        in_state_keyed = in_state and not spec.get("env_only")
        ask[name] = mode == "always" or (mode == "auto" and (has_key or in_state_keyed))
        if may_have and mode != "never":
            needed.append(name)
            if mode == "auto" and not has_key and not in_state_keyed:
                missing.append(spec["key"])
    return {"ask": ask, "needed": needed, "missing": missing}


def _key(entry):
    return (entry["provider"], entry["kind"], str(entry["id"]))


def teardown_targets(state, runpod=None, vast=None, hetzner=None, exoscale=None):
    """Merge the state file's resources with what the providers list under the stack's label.

    ``hetzner``/``exoscale``: {servers|instances, firewalls|security_groups, ssh_keys}, each a
    list of {id, name} the provider lists under the stack's label."""
    state = state or {}
    if not isinstance(state, dict):
        raise AnsibleFilterError("teardown_targets: the state must be a dict (state.json), got %s"
                                 % type(state).__name__)
    targets = {}
    for res in state.get("resources") or []:
        missing = [k for k in ("provider", "kind", "id") if res.get(k) in (None, "")]
        if missing:
            raise AnsibleFilterError("teardown_targets: a state entry lacks %s: %r" % (", ".join(missing), res))
        entry = {
            "provider": res["provider"], "kind": res["kind"], "id": str(res["id"]),
            "name": res.get("name") or "", "cost_per_hour": float(res.get("cost_per_hour") or 0.0),
            "created_at": res.get("created_at"), "stopped_at": res.get("stopped_at"),
            "stopped_intervals": list(res.get("stopped_intervals") or []),
            "uptime_seconds": None, "in_state": True, "labelled": False,
            "stop_argv": list((res.get("attributes") or {}).get("stop_argv") or []),
            # Where a local service runs (the control host's inventory name); older records: here.
            "host": (res.get("attributes") or {}).get("host") or "localhost",
            "deployment": (res.get("attributes") or {}).get("deployment"),
        }
        targets[_key(entry)] = entry

    def found(provider, kind, item, cost, uptime=None):
        entry = {"provider": provider, "kind": kind, "id": str(item["id"]), "name": item.get("name") or "",
                 "cost_per_hour": float(cost or 0.0), "created_at": None, "stopped_at": None,
                 "uptime_seconds": uptime, "in_state": False, "labelled": True, "stop_argv": [],
                 "host": "localhost"}
        known = targets.get(_key(entry))
        if known is None:
            targets[_key(entry)] = entry
        else:
            known["labelled"] = True
            known["uptime_seconds"] = uptime
            if not known["name"]:
                known["name"] = entry["name"]

    runpod = runpod or {}
    for pod in runpod.get("pods") or []:
        found("runpod", "pod", pod, pod.get("cost_per_hr"), pod.get("uptime_seconds"))
    for endpoint in runpod.get("endpoints") or []:
        found("runpod_serverless", "endpoint", endpoint, 0.0)
    for inst in (vast or {}).get("instances") or []:
        found("vast", "instance", inst, inst.get("dph_total"))
    for provider, listed, kinds in (("hetzner", hetzner, (("servers", "server"), ("firewalls", "firewall"),
                                                          ("ssh_keys", "ssh_key"))),
                                    ("exoscale", exoscale, (("instances", "server"),
                                                            ("security_groups", "security_group"),
                                                            ("ssh_keys", "ssh_key")))):
        for field, kind in kinds:
            for item in (listed or {}).get(field) or []:
                found(provider, kind, item, 0.0)
    return sorted(targets.values(), key=lambda e: (ORDER.get(e["kind"], 3), e["provider"], e["name"], e["id"]))


def _already_stopped(result):
    """Whether a local service's failed stop command says it was not running.

    start-stop-daemon --stop exits 1 when no process matched ("none killed"); systemctl stop
    exits 5 for a unit that is not loaded. Both mean nothing of the service was left to stop.
    """
    output = "%s %s" % (result.get("stdout") or "", result.get("stderr") or "")
    argv = (result.get("item") or {}).get("stop_argv") or [""]
    program = str(argv[0]).rsplit("/", 1)[-1]
    if program == "start-stop-daemon":
        return result.get("rc") == 1 and ("none killed" in output or "No process" in output)
    if program == "systemctl":
        return result.get("rc") == 5 and "not loaded" in output
    return False


def _outcome(result, mode, kind, provider=None):
    if result.get("failed"):
        if provider == "local" and _already_stopped(result):
            return "gone"
        return "failed"
    if result.get("skipped"):
        return "kept"
    if mode == "stop" and kind in ("pod", "instance"):
        return "stopped"
    return "removed"


def _running_hours(target, moment):
    """Hours a machine ran: created_at to stopped_at (or now), less its stopped intervals."""
    start = _parse_time(target.get("created_at"))
    if start is None:
        return None
    end = _parse_time(target.get("stopped_at")) or moment
    seconds = max(0.0, (end - start).total_seconds())
    for interval in target.get("stopped_intervals") or []:
        begin, finish = _parse_time(interval[0]), _parse_time(interval[1])
        if begin is not None and finish is not None:
            seconds -= max(0.0, (min(finish, end) - max(begin, start)).total_seconds())
    return max(0.0, seconds) / 3600.0


def _existed_hours(target, moment):
    start = _parse_time(target.get("created_at"))
    return None if start is None else max(0.0, (moment - start).total_seconds()) / 3600.0


def teardown_report(targets, results=None, mode="destroy", now=None, billed=None, plan=None):
    """Outcome, hours and USD per resource (state file times, else the provider's uptime;
    serverless endpoints from the provider's billing history ``billed``: {id: {usd, seconds}};
    a machine's disk while running and while stopped from the plan's storage terms), and the
    plan's billed estimate beside what was billed (``plan``: plan.json), per deployment too."""
    if mode not in ("destroy", "stop"):
        raise AnsibleFilterError("teardown_report: mode must be destroy or stop, not %r" % (mode,))
    moment = datetime.datetime.now(datetime.timezone.utc) if now is None else _parse_time(now)
    done = {}
    for result in results or []:
        item = result.get("item") or {}
        if item.get("provider"):
            done[_key(item)] = result
    storage = _stack.plan_storage(plan) if isinstance(plan, dict) else {}
    lines = []
    for target in targets or []:
        result = done.get(_key(target))
        if result is not None:
            outcome = _outcome(result, mode, target["kind"], target["provider"])
            message = result.get("msg") if outcome == "failed" else None
            if outcome == "gone":
                message = "already stopped"
            if outcome == "failed" and not message and result.get("rc"):
                message = "exit status %s: %s" % (result["rc"], (result.get("stderr") or "")[-300:])
        elif target["provider"] not in ("local", "kubernetes") and target.get("in_state") \
                and not target.get("labelled"):
            outcome, message = "gone", None   # the provider no longer knows it
        else:
            outcome, message = "kept", None
        hours = _running_hours(target, moment)
        if hours is None and target.get("uptime_seconds") is not None:
            hours = float(target["uptime_seconds"]) / 3600.0
        usd = None if hours is None else hours * float(target.get("cost_per_hour") or 0.0)
        disk = storage.get(target.get("deployment")) if target["kind"] in ("pod", "instance") else None
        disk_usd = stopped_h = None
        existed = _existed_hours(target, moment)
        if disk and usd is not None and existed is not None:
            # what the provider bills for the disk the machine keeps: running and stopped
            stopped_h = max(0.0, existed - hours)
            disk_usd = (hours * disk.get("running_gb", disk["gb"]) * disk["running_usd_per_gb_hour"]
                        + stopped_h * disk["gb"] * disk["stopped_usd_per_gb_hour"])
            usd += disk_usd
        if target["kind"] == "endpoint" and target["provider"] == "runpod_serverless":
            # billed per worker-second, not per hour of existence: the provider's ledger or unknown
            ledger = (billed or {}).get(target["id"])
            hours = None if ledger is None else float(ledger.get("seconds") or 0.0) / 3600.0
            usd = None if ledger is None else float(ledger.get("usd") or 0.0)
        line = {
            "provider": target["provider"], "kind": target["kind"], "id": target["id"],
            "name": target.get("name") or "", "outcome": outcome, "message": message,
            "in_state": bool(target.get("in_state")),
            "source": "+".join(s for s, flag in (("state", target.get("in_state")),
                                                 ("label", target.get("labelled"))) if flag),
            "cost_per_hour": round(float(target.get("cost_per_hour") or 0.0), 6),
            "hours": None if hours is None else round(hours, 4),
            "usd": None if usd is None else round(usd, 4),
            "deployment": target.get("deployment"),
        }
        if disk_usd is not None:
            line.update(storage_usd=round(disk_usd, 4), stopped_hours=round(stopped_h, 4))
        line["text"] = "%s %s %s %s (%s): %s, %s h, USD %s" % (
            line["outcome"], line["provider"], line["kind"], line["name"] or "-", line["id"], line["source"],
            "?" if line["hours"] is None else line["hours"], "?" if line["usd"] is None else line["usd"])
        if message:
            line["text"] += ": " + message
        lines.append(line)
    known = [line["usd"] for line in lines if line["usd"] is not None]
    report = {
        "at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "resources": lines,
        "removed": len([line for line in lines if line["outcome"] in ("removed", "stopped", "gone")]),
        "failed": [line for line in lines if line["outcome"] == "failed"],
        "total_usd": round(sum(known), 4),
        "unpriced": len(lines) - len(known),
    }
    totals = (plan or {}).get("totals") or {}
    if totals.get("cost_usd") is not None:
        report["plan"] = {"billed_estimate_usd": totals.get("cost_usd"),
                          "always_on_cost_usd": totals.get("always_on_cost_usd"),
                          "billed_usd": report["total_usd"],
                          "deployments": _by_deployment(plan, lines)}
        control = plan.get("control_plane")
        if control:
            # the created control server: what the plan priced beside what its lines were billed
            servers = [line["usd"] for line in lines if line["kind"] == "server" and line["usd"] is not None]
            report["plan"]["control_plane"] = {
                "planned_usd": control.get("cost_usd"), "server_type": control.get("server_type"),
                "billed_usd": round(sum(servers), 4) if servers else None}
    return report


def _by_deployment(plan, lines):
    """Per plan deployment: its billed estimate beside what its resources were billed (a
    replaced pod and its replacement both count), and their ratio."""
    out = []
    for dep in plan.get("deployments") or []:
        mine = [line for line in lines if line.get("deployment") == dep.get("name")]
        known = [line["usd"] for line in mine if line["usd"] is not None]
        estimate = dep.get("cost_usd")
        billed_usd = round(sum(known), 4) if known else None
        ratio = None
        if billed_usd is not None and estimate:
            ratio = round(billed_usd / float(estimate), 3)
        entry = {"name": dep.get("name"), "provider": dep.get("provider"),
                 "mode": (dep.get("scaling") or {}).get("mode"),
                 "billed_estimate_usd": estimate, "billed_usd": billed_usd,
                 "billed_over_estimate": ratio, "resources": len(mine)}
        entry["text"] = "deployment %s (%s, %s): planned USD %s, billed USD %s%s" % (
            entry["name"], entry["provider"], entry["mode"] or "-",
            "?" if estimate is None else estimate, "?" if billed_usd is None else billed_usd,
            "" if ratio is None else " (x%s)" % ratio)
        out.append(entry)
    return out


def serverless_billed(results):
    """{endpoint id: {usd, seconds}} from the ``ansible.builtin.uri`` results of RunPod's
    serverless billing history, one per endpoint (``item``: the endpoint): REST v2
    ``{records: [{totalAmount, timeBilledMs, ...}]}`` or the retired REST v1 list of
    ``{amount, timeBilledMs}``. Failed or unreadable answers are left out (unpriced)."""
    out = {}
    for result in results or []:
        body = result.get("json")
        if result.get("status") != 200 or body is None or not (result.get("item") or {}).get("id"):
            continue
        v2 = isinstance(body, dict)
        records = (body.get("records") or []) if v2 else body
        if not isinstance(records, list):
            continue
        amount = "totalAmount" if v2 else "amount"
        out[str(result["item"]["id"])] = {
            "usd": sum(float(r.get(amount) or 0.0) for r in records if isinstance(r, dict)),
            "seconds": sum(float(r.get("timeBilledMs") or 0.0) for r in records if isinstance(r, dict)) / 1000.0,
        }
    return out


def plan_billed(plan, state, billed=None, now=None):
    """The plan's billed estimate beside what the stack's resources (``state``: state.json)
    were billed up to ``now``, per deployment: ``teardown_report``'s ``plan`` section (the
    same arithmetic as teardown's report) with ``elapsed_hours`` (since the first resource was
    created) of the plan's ``window_hours`` (the deadline it priced). {} without a plan total."""
    if not isinstance(plan, dict) or not isinstance(state, dict):
        raise AnsibleFilterError("plan_billed: the plan and the state must be dicts (plan.json, state.json)")
    report = teardown_report(teardown_targets(state), [], "stop", now, billed, plan)
    out = report.get("plan")
    if out is None:
        return {}
    moment = _parse_time(report["at"])
    starts = [_parse_time(r.get("created_at")) for r in state.get("resources") or [] if r.get("created_at")]
    out = dict(out, at=report["at"], unpriced=report["unpriced"],
               elapsed_hours=round((moment - min(starts)).total_seconds() / 3600.0, 4) if starts else 0.0,
               window_hours=((plan.get("blueprint") or {}).get("constraints") or {}).get("deadline_hours"))
    return out


class FilterModule(object):
    def filters(self):
        return {"teardown_search": teardown_search, "teardown_targets": teardown_targets,
                "teardown_report": teardown_report, "serverless_billed": serverless_billed,
                "plan_billed": plan_billed}
