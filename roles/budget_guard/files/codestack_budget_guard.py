# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Budget guard of a codestack stack.

Adds what the stack is billed and the gateway's token spend (LiteLLM's Prometheus counter
``litellm_spend_metric_total``, less the routes the providers bill: see ``token_spend``), warns
once at a threshold, and at 100 % of the blueprint's
budget runs the configured stop or destroy command, recording why. LiteLLM itself skips budgets
for self-hosted models with custom prices (BerriAI/litellm#25874), so the guard does its own
arithmetic, the way each provider bills:

- a pod or instance of the state file: its hourly price for the hours it ran (from
  ``created_at`` to its ``stopped_at`` or now, less the ``stopped_intervals`` a waker's stops
  and resumes left), plus the disk it keeps (``storage``: GB and USD per GB-hour while running
  and while stopped, per deployment, from the plan);
- a RunPod serverless endpoint: nothing per hour (its workers scale to zero); its worker-seconds
  as RunPod's serverless billing history reports them (``runpod_billing_url``: REST v2
  ``/billing/serverless?serverlessId=``, records ``{totalAmount, serverlessId, ...}``; a base
  ending in ``/v1`` still gets the retired REST v1 ``/billing/endpoints?endpointId=`` and its
  ``[{amount, timeBilledMs, endpointId}]``), with the ``RUNPOD_API_KEY`` of the command
  environment.
- a deployment on a cluster the user brings at an internal hourly price (``clusters``, from
  the plan): that price while KEDA keeps it up, from the gateway's per-route request counter
  (see ``cluster_spend``).

Standard library only: it is copied to the gateway host and run by a timer (or ``--loop``).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import re
import time
import urllib.parse
import urllib.request

SPEND_METRIC = "litellm_spend_metric_total"
REQUESTS_METRIC = "litellm_deployment_total_requests_total"
# LiteLLM's provider of the self-hosted routes (pods, instances, serverless endpoints): the gateway
# prices their request-seconds for its own budgets, but what they cost is the provider's bill.
PROVIDER_BILLED_API = ("hosted_vllm",)
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def is_serverless(res):
    return res.get("provider") == "runpod_serverless" and res.get("kind") == "endpoint"


def _hours(res, now):
    """(running hours, stopped hours) of one record up to ``now``."""
    start = parse_time(res["created_at"])
    stopped_at = parse_time(res["stopped_at"]) if res.get("stopped_at") else None
    paused = 0.0
    for interval in res.get("stopped_intervals") or []:
        begin, end = parse_time(interval[0]), parse_time(interval[1])
        paused += max(0.0, min(end, now) - max(begin, start))
    end = min(stopped_at, now) if stopped_at is not None else now
    running = max(0.0, end - start - paused)
    stopped = paused + (max(0.0, now - stopped_at) if stopped_at is not None else 0.0)
    return running / 3600.0, stopped / 3600.0


def gpu_spend(resources, now, storage=None):
    """USD spent so far by the rented machines: running hours x hourly cost, plus their disk
    while running and while stopped (``storage``: {deployment: {gb, running_gb,
    running_usd_per_gb_hour, stopped_usd_per_gb_hour}}; ``running_gb``, the disks up while
    running, defaults to ``gb``). Serverless endpoints are left to ``serverless_spend``.

    Returns (total, lines, bad): a record that cannot be priced (no provider or id, a time that
    is not YYYY-MM-DDTHH:MM:SSZ, a price that is not a number) is skipped and listed in ``bad``
    with the reason, so that one broken entry never stops the guard from counting the others.
    """
    total = 0.0
    lines = []
    bad = []
    for index, res in enumerate(resources):
        try:
            if not isinstance(res, dict):
                raise ValueError("not an object")
            missing = [key for key in ("provider", "id", "created_at") if not res.get(key)]
            if missing:
                raise ValueError("lacks %s" % ", ".join(missing))
            if is_serverless(res):
                continue
            hours, stopped = _hours(res, now)
            cost = hours * float(res.get("cost_per_hour") or 0.0)
            disk = (storage or {}).get((res.get("attributes") or {}).get("deployment")) or {}
            gb = float(disk.get("gb") or 0.0)
            disk_usd = (hours * float(disk.get("running_gb") or gb)
                        * float(disk.get("running_usd_per_gb_hour") or 0.0)
                        + stopped * gb * float(disk.get("stopped_usd_per_gb_hour") or 0.0))
        except (TypeError, ValueError, IndexError) as exc:
            ident = res.get("id") if isinstance(res, dict) else None
            bad.append({"index": index, "id": ident, "error": str(exc)})
            continue
        total += cost + disk_usd
        line = {"provider": res["provider"], "id": res["id"], "hours": round(hours, 4),
                "usd": round(cost + disk_usd, 4)}
        if stopped or disk_usd:
            line.update(stopped_hours=round(stopped, 4), storage_usd=round(disk_usd, 4))
        lines.append(line)
    return total, lines, bad


def billing_url(base_url, endpoint_id):
    """The billing-history request of one serverless endpoint: REST v2 (``/billing/serverless``,
    ``serverlessId``) unless the base is the retired REST v1 (``/billing/endpoints``)."""
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return "%s/billing/endpoints?%s" % (base, urllib.parse.urlencode(
            {"endpointId": endpoint_id, "bucketSize": "day", "grouping": "endpointId"}))
    return "%s/billing/serverless?%s" % (base, urllib.parse.urlencode(
        {"serverlessId": endpoint_id, "bucketSize": "day"}))


def billing_records(answer, endpoint_id):
    """(USD, billed seconds) of one endpoint from a billing-history answer: REST v2's
    ``{"records": [{totalAmount, serverlessId, timeBilledMs?}]}`` or REST v1's
    ``[{amount, endpointId, timeBilledMs}]``."""
    v2 = isinstance(answer, dict)
    records = (answer.get("records") or []) if v2 else (answer or [])
    usd = seconds = 0.0
    for rec in records:
        if not isinstance(rec, dict):
            raise ValueError("billing record is not an object: %r" % (rec,))
        if rec.get("serverlessId" if v2 else "endpointId") not in (None, endpoint_id):
            continue
        usd += float(rec.get("totalAmount" if v2 else "amount") or 0.0)
        seconds += float(rec.get("timeBilledMs") or 0.0) / 1000.0
    return usd, seconds


def fetch_billing(url, api_key, timeout=10):
    """The JSON of one GET with the RunPod key (a header, never in the URL)."""
    request = urllib.request.Request(url, headers={"Authorization": "Bearer %s" % api_key})
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # nosec - operator-given URL
        return json.loads(resp.read().decode("utf-8"))


def serverless_spend(resources, base_url, api_key, fetch=fetch_billing):
    """(USD, lines) the serverless endpoints of the state file were billed, from RunPod's
    serverless billing history (records ``{amount, timeBilledMs, endpointId, ...}``)."""
    total = 0.0
    lines = []
    for res in resources:
        if not isinstance(res, dict) or not is_serverless(res) or not res.get("id"):
            continue
        usd, seconds = billing_records(fetch(billing_url(base_url, res["id"]), api_key), res["id"])
        total += usd
        lines.append({"provider": res["provider"], "id": res["id"], "billed_s": round(seconds, 1),
                      "usd": round(usd, 4)})
    return total, lines


def read_state(path):
    """(resources, error) of the stack's state file; error is None when it could be read.

    A missing, unreadable or malformed state file is an alarm, never "no resources": the guard
    cannot see what bills.
    """
    try:
        with open(path, "rb") as handle:
            state = json.loads(handle.read().decode("utf-8"))
    except (IOError, OSError) as exc:
        return None, "cannot read the state file %s: %s" % (path, exc.strerror or exc)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, "the state file %s is not JSON: %s" % (path, exc)
    if not isinstance(state, dict) or not isinstance(state.get("resources", []), list):
        return None, "the state file %s has no list of resources" % path
    return state.get("resources", []), None


def token_spend(metrics_text, provider_billed=()):
    """Sum of LiteLLM's spend counter, from Prometheus text format, over the label sets of the
    routes nobody else bills (per-token APIs).

    The gateway also prices the self-hosted routes (``input_cost_per_second``, for LiteLLM's own
    budgets); their cost is already in the providers' bills (``gpu_spend``,
    ``serverless_spend``), so counting them here would count it twice. A series is the
    provider's when its ``api_provider`` is LiteLLM's self-hosted one (``hosted_vllm``) or its
    ``model_id`` (the route's ``model_info.id``, ``<group>--<deployment>``) names one of the
    ``provider_billed`` deployments.
    """
    suffixes = tuple("--" + name for name in provider_billed or ())
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(SPEND_METRIC + "{") or line.startswith(SPEND_METRIC + " "):
            head, _sep, value = line.rpartition(" ")
            labels = dict(_LABEL.findall(head.partition("{")[2]))
            if labels.get("api_provider") in PROVIDER_BILLED_API or (
                    suffixes and labels.get("model_id", "").endswith(suffixes)):
                continue
            try:
                total += float(value)
            except ValueError:
                continue
    return total


def request_counts(metrics_text, names):
    """{deployment: requests the gateway has sent it} for ``names``, from LiteLLM's per-route
    counter (its ``model_id`` is the route's ``model_info.id``, ``<group>--<deployment>``)."""
    counts = dict((name, 0.0) for name in names or ())
    for line in metrics_text.splitlines():
        if not line.startswith(REQUESTS_METRIC + "{"):
            continue
        head, _sep, value = line.rpartition(" ")
        model_id = dict(_LABEL.findall(head.partition("{")[2])).get("model_id", "")
        for name in counts:
            if model_id.endswith("--" + name):
                try:
                    counts[name] += float(value)
                except ValueError:
                    pass
    return counts


def cluster_spend(clusters, counts, prior, now):
    """USD so far of the deployments on a cluster the user brings that has an internal hourly
    price (``clusters``: {deployment: {usd_per_hour, idle_timeout_s}}), as the cluster's owner
    is charged: KEDA keeps the node up from a burst's first request until ``idle_timeout_s``
    (its scaledown period) after the last. The guard sees requests through the gateway's
    counter (``counts``) at each check: a check that finds new requests counts the whole
    interval since the previous one as up (a burst is never missed; at most one interval too
    many), and the idle tail after it. ``prior``: the previous check's {deployment: {count,
    at, up_until, up_s}}. Returns (total, lines, the new prior)."""
    total, lines, after = 0.0, [], {}
    for name, terms in sorted((clusters or {}).items()):
        last = (prior or {}).get(name) or {}
        count = float(counts.get(name) or 0.0)
        up_s, up_until, at = float(last.get("up_s") or 0.0), float(last.get("up_until") or 0.0), last.get("at")
        active = count != float(last.get("count") or 0.0)   # a restarted gateway counts again from 0
        if at is not None and now > at:
            up_s += (now - at) if active else max(0.0, min(now, up_until) - at)
        if active:
            up_until = max(up_until, now + float(terms.get("idle_timeout_s") or 0.0))
        after[name] = {"count": count, "at": now, "up_until": up_until, "up_s": up_s}
        usd = up_s / 3600.0 * float(terms.get("usd_per_hour") or 0.0)
        total += usd
        lines.append({"provider": "kubernetes", "id": name, "hours": round(up_s / 3600.0, 4), "usd": round(usd, 4)})
    return total, lines, after


def evaluate(budget, spent, warn_ratio, already_warned, already_enforced):
    """Return the level reached now: ok, warn (once), enforce (once), or enforced."""
    ratio = spent / budget if budget > 0 else float("inf")
    if ratio >= 1.0:
        return ("enforced" if already_enforced else "enforce"), ratio
    if ratio >= warn_ratio and not already_warned:
        return "warn", ratio
    return "ok", ratio


def read_json(path, default):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return default


def write_json(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".guard-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def fetch_metrics(url, timeout=10):
    if not url:
        return ""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec - operator-given URL
        return resp.read().decode("utf-8", "replace")


class Guard:
    def __init__(self, args, clock=time.time, runner=subprocess.run, fetch=fetch_metrics,
                 fetch_billing=fetch_billing):
        self.args = args
        self.clock = clock
        self.runner = runner
        self.fetch = fetch
        self.fetch_billing = fetch_billing

    def now(self):
        # --clock-scale lets tests run hours of billing in seconds.
        status = read_json(self.args.status_file, {})
        origin = status.get("clock_origin")
        real = self.clock()
        if self.args.clock_scale == 1.0 or origin is None:
            return real
        return origin + (real - origin) * self.args.clock_scale

    def check(self):
        status = read_json(self.args.status_file, {})
        status.setdefault("clock_origin", self.clock())
        status.setdefault("events", [])
        write_json(self.args.status_file, status)
        now = self.now()
        resources, state_error = read_state(self.args.state_file)
        if state_error is None:
            gpu, lines, bad = gpu_spend(resources, now, self.args.storage)
        else:
            # Keep the last figure the guard could compute: the spend has not gone down.
            gpu, lines, bad = status.get("gpu_usd", 0.0), status.get("resources", []), []
        billing_error = None
        serverless = status.get("serverless_usd", 0.0)
        if state_error is None and any(isinstance(r, dict) and is_serverless(r) for r in resources):
            key = (self.args.command_env or {}).get("RUNPOD_API_KEY") or os.environ.get("RUNPOD_API_KEY")
            try:
                if not key:
                    raise ValueError("RUNPOD_API_KEY is not set: serverless spend unknown")
                serverless, billed = serverless_spend(resources, self.args.runpod_billing_url, key,
                                                      self.fetch_billing)
                lines = lines + billed
            except (OSError, ValueError) as exc:
                billing_error = str(exc)   # keep the last known figure: spend never goes down
        if state_error is None:
            gpu += serverless   # (the kept figure of a state error already holds it)
        cluster, cluster_lines, prior = status.get("cluster_usd", 0.0), [], status.get("clusters") or {}
        try:
            metrics = self.fetch(self.args.metrics_url)
            tokens = token_spend(metrics, self.args.provider_billed)
            if self.args.clusters:
                cluster, cluster_lines, prior = cluster_spend(
                    self.args.clusters, request_counts(metrics, self.args.clusters), prior, now)
            metrics_error = None
        except (OSError, ValueError) as exc:
            tokens = status.get("token_usd", 0.0)  # keep the last known figure
            metrics_error = str(exc)
        if state_error is None:   # (the kept figure of a state error already holds it)
            lines = lines + cluster_lines
            gpu += cluster
        spent = gpu + tokens
        status.update({"cluster_usd": round(cluster, 6), "clusters": prior})
        level, ratio = evaluate(self.args.budget, spent, self.args.warn_ratio,
                                status.get("warned", False), status.get("enforced", False))
        previous_bad = status.get("bad_records") or []
        status.update({"serverless_usd": round(serverless, 6), "billing_error": billing_error})
        status.update({"checked_at": now, "gpu_usd": round(gpu, 4), "token_usd": round(tokens, 4),
                       "spent_usd": round(spent, 4), "budget_usd": self.args.budget,
                       "ratio": round(ratio, 4), "resources": lines, "level": level,
                       "metrics_error": metrics_error, "state_error": state_error,
                       "bad_records": bad})
        if bad and bad != previous_bad:
            self._event(status, "bad_record", "skipped %d record(s) of %s that cannot be priced: %s"
                        % (len(bad), self.args.state_file,
                           "; ".join("#%d %s: %s" % (b["index"], b["id"] or "?", b["error"]) for b in bad)))
        if level == "warn":
            status["warned"] = True
            self._event(status, "warn", "spend %.2f USD reached %.0f%% of the %.2f USD budget"
                        % (spent, ratio * 100, self.args.budget))
        elif level == "enforce":
            reason = ("spend %.2f USD reached the %.2f USD budget: running %s"
                      % (spent, self.args.budget, self.args.action))
            command = self.args.stop_command if self.args.action == "stop" else self.args.destroy_command
            # The command (teardown.yml) gets the credentials it needs from the 0600 settings, and
            # CODESTACK_BUDGET_GUARD=1 so that it leaves this guard running while it works.
            env = dict(os.environ)
            env.update(self.args.command_env or {})
            env["CODESTACK_BUDGET_GUARD"] = "1"
            result = self.runner(command, shell=False, capture_output=True, text=True, check=False,
                                 timeout=self.args.command_timeout, env=env)
            status["enforced"] = result.returncode == 0
            self._event(status, self.args.action, reason, rc=result.returncode,
                        output=(result.stdout or "")[-2000:] + (result.stderr or "")[-2000:])
        if state_error is not None and level in ("ok", "warn"):
            # Blind: the spend cannot be known, so it is never "ok". One event per new reason;
            # every check says it again on standard output (the journal or the loop's log).
            status["level"] = "alarm"
            if status.get("alarm") != state_error:
                self._event(status, "alarm", state_error)
            else:
                self._say("alarm", state_error)
        status["alarm"] = state_error
        write_json(self.args.status_file, status)
        return status

    def _event(self, status, kind, message, **extra):
        event = {"at": self.now(), "kind": kind, "message": message}
        event.update(extra)
        status["events"].append(event)
        self._say(kind, message)

    @staticmethod
    def _say(kind, message):
        sys.stdout.write("codestack-budget-guard: %s: %s\n" % (kind, message))
        sys.stdout.flush()


DEFAULTS = {"warn_ratio": 0.8, "action": "stop", "stop_command": ["true"],
            "destroy_command": ["true"], "command_timeout": 1800, "metrics_url": "",
            "clock_scale": 1.0, "command_env": {}, "storage": {}, "provider_billed": [], "clusters": {},
            "runpod_billing_url": "https://api.runpod.io/v2"}
REQUIRED = ("state_file", "status_file", "budget")


def load_config(path, overrides=None):
    """Settings come from a JSON file (mode 0600), so commands never pass through a shell."""
    with open(path) as handle:
        data = json.load(handle)
    config = dict(DEFAULTS)
    config.update(data)
    config.update(overrides or {})
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise ValueError("config %s lacks %s" % (path, ", ".join(missing)))
    if config["action"] not in ("stop", "destroy"):
        raise ValueError("action must be stop or destroy, not %r" % config["action"])
    config["budget"] = float(config["budget"])
    return argparse.Namespace(**config)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON settings written by the role")
    parser.add_argument("--clock-scale", type=float, default=None, help="tests only")
    parser.add_argument("--loop", type=float, default=0.0,
                        help="check every N seconds until enforced (no systemd timer)")
    return parser.parse_args(argv)


def main(argv=None):
    """Exit 0 when the spend is known, 2 on an alarm (one-shot runs: the timer's unit fails)."""
    cli = parse_args(argv if argv is not None else sys.argv[1:])
    overrides = {"clock_scale": cli.clock_scale} if cli.clock_scale is not None else {}
    guard = Guard(load_config(cli.config, overrides))
    while True:
        try:
            status = guard.check()
        except Exception as exc:  # pylint: disable=broad-except
            # A guard that dies guards nothing: report, and try again at the next check.
            sys.stderr.write("codestack-budget-guard: error: %s: %s\n" % (type(exc).__name__, exc))
            sys.stderr.flush()
            if not cli.loop:
                return 1
            status = {}
        if not cli.loop:
            return 2 if status.get("level") == "alarm" else 0
        if status.get("enforced"):
            return 0
        time.sleep(cli.loop)


if __name__ == "__main__":
    sys.exit(main())
