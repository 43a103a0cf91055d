"""The provider fakes' clock and billing ledger (test-only).

``SimClock``: the time the fakes bill and delay by. ``CODESTACK_CLOCK_SCALE`` (float, default 1)
makes one wall second count as that many provider seconds, so a simulated working day runs in
about a minute: billing seconds are scaled up and every configured delay (``created_delay``,
``running_delay``, ``resume_delay``) is in provider seconds, i.e. lasts ``delay / scale`` wall
seconds. At scale 1 the clock reads ``time.time()``. The scale can change while the fake runs
(``clock_scale`` through ``configure`` / ``POST /_control``); the clock stays continuous.

``Ledger``: what the provider would bill, as the providers bill rented machines: per second
while the GPU runs at the machine's hourly price, per GB-month for the disk kept while it is
stopped, nothing after terminate/destroy. Each line is a segment ``{resource, kind: gpu|storage,
start, end, seconds, usd_per_hour, usd}`` in provider time; open segments are priced up to now.

``catalog_price``: the fakes' own price tables are test data; with ``catalog_prices`` (a path, or
true for the collection's ``catalog/offers.yml``) the RunPod and Vast.ai fakes rent at the
catalog's prices instead, so a test can compare their ledgers with the plan priced from the
same catalog (a fake must never bill less than the plan's own source says the provider does).
"""

import os
import threading
import time

import yaml

CATALOG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "catalog")

# Hours of one billing month for storage priced per GB-month (365.25 x 24 / 12).
HOURS_PER_MONTH = 730.5


def env_scale(default=1.0):
    raw = os.environ.get("CODESTACK_CLOCK_SCALE") or ""
    try:
        scale = float(raw) if raw else float(default)
    except ValueError:
        raise ValueError("CODESTACK_CLOCK_SCALE must be a number, not %r" % raw)
    if scale <= 0:
        raise ValueError("CODESTACK_CLOCK_SCALE must be positive, not %r" % raw)
    return scale


class SimClock:
    """Provider time: continuous, ``scale`` provider seconds per wall second."""

    def __init__(self, scale=None):
        self._lock = threading.Lock()
        self._wall0 = time.time()
        self._sim0 = self._wall0
        self.scale = env_scale() if scale is None else float(scale)

    def now(self):
        with self._lock:
            return self._sim0 + (time.time() - self._wall0) * self.scale

    def set_scale(self, scale):
        scale = float(scale)
        if scale <= 0:
            raise ValueError("clock_scale must be positive, not %r" % scale)
        with self._lock:
            wall = time.time()
            self._sim0 = self._sim0 + (wall - self._wall0) * self.scale
            self._wall0 = wall
            self.scale = scale

    def advance(self, provider_seconds):
        """Jump ``provider_seconds`` ahead at once (a test skipping a gap in which nothing
        runs: open segments, stopped disks, are billed for it)."""
        if provider_seconds < 0:
            raise ValueError("the clock only moves forward, not by %r" % provider_seconds)
        with self._lock:
            self._sim0 += float(provider_seconds)

    def wall_seconds(self, provider_seconds):
        """How long ``provider_seconds`` last on the wall clock."""
        return float(provider_seconds) / self.scale


class Ledger:
    """Billing segments per resource (thread-safety: the fake's own lock)."""

    def __init__(self, clock):
        self.clock = clock
        self.closed = []
        self.open = {}

    def start(self, resource, kind, usd_per_hour, at=None):
        """Start billing ``resource`` as ``kind`` (closing what it billed before)."""
        at = self.clock.now() if at is None else at
        self.stop(resource, at)
        self.open[resource] = {"resource": resource, "kind": kind, "start": at,
                               "usd_per_hour": float(usd_per_hour)}

    def stop(self, resource, at=None):
        """Stop billing ``resource`` (terminated, destroyed, or before a new segment)."""
        seg = self.open.pop(resource, None)
        if seg is not None:
            self.closed.append(self._priced(seg, self.clock.now() if at is None else at))

    @staticmethod
    def _priced(seg, end):
        out = dict(seg, end=end)
        out["seconds"] = max(0.0, end - seg["start"])
        out["usd"] = out["seconds"] * seg["usd_per_hour"] / 3600.0
        return out

    def lines(self, since=None):
        """Every segment (open ones up to now), clipped to ``since`` (provider time)."""
        now = self.clock.now()
        rows = list(self.closed) + [self._priced(s, now) for s in self.open.values()]
        if since is not None:
            clipped = []
            for row in rows:
                if row["end"] <= since:
                    continue
                if row["start"] < since:
                    row = self._priced(dict(row, start=since), row["end"])
                clipped.append(row)
            rows = clipped
        return [dict(r, usd=round(r["usd"], 8), seconds=round(r["seconds"], 3)) for r in rows]

    def total(self, since=None, kind=None):
        return round(sum(r["usd"] for r in self.lines(since) if kind in (None, r["kind"])), 8)

    def view(self, since=None):
        lines = self.lines(since)
        return {"lines": lines, "total_usd": round(sum(r["usd"] for r in lines), 6),
                "gpu_usd": round(sum(r["usd"] for r in lines if r["kind"] == "gpu"), 6),
                "storage_usd": round(sum(r["usd"] for r in lines if r["kind"] == "storage"), 6),
                "now": now_or(self.clock), "clock_scale": self.clock.scale}


def now_or(clock):
    return clock.now()


def catalog_offers(catalog_prices=True):
    """The ``offers`` and ``scaling`` sections of a catalog: ``catalog_prices`` is a directory
    or offers file (its scaling.yml beside it), or true for the collection's own catalog."""
    base = CATALOG_DIR if catalog_prices is True else str(catalog_prices)
    offers_file = os.path.join(base, "offers.yml") if os.path.isdir(base) else base
    with open(offers_file) as handle:
        offers = yaml.safe_load(handle)["offers"]
    scaling_file = os.path.join(os.path.dirname(offers_file), "scaling.yml")
    scaling = {}
    if os.path.exists(scaling_file):
        with open(scaling_file) as handle:
            scaling = dict((s["id"], s) for s in yaml.safe_load(handle)["scaling"])
    return offers, scaling


def catalog_price(offers, provider, provider_gpu_id, pricing, country=None, count=1):
    """USD per GPU-hour of the catalog's offer (None when it lists none) for machines of
    ``count`` GPUs (else any count): the offer of that country when there is one, else the
    dearest of those for any region (what a plan for 'any region' may be billed)."""
    rows = [o for o in offers if o["provider"] == provider and o["pricing"] == pricing
            and o["provider_gpu_id"] == provider_gpu_id and o.get("currency", "USD") == "USD"]
    rows = [o for o in rows if int(o.get("count", 1)) == int(count)] or rows
    local = [o for o in rows if country and o.get("country") == country]
    rows = local or [o for o in rows if not o.get("country")] or rows
    return max(float(o["price_per_hour"]) for o in rows) if rows else None
