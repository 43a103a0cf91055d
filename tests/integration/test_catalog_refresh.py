"""playbooks/refresh_catalog.yml against the RunPod, Vast.ai and Hetzner fakes."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from _vast_helpers import API_KEY as VAST_KEY, vast_fake  # noqa: F401  pylint: disable=unused-import

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from hetzner_fake import HetznerFake  # noqa: E402  pylint: disable=wrong-import-position
from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog  # noqa: E402

pytestmark = pytest.mark.integration
AS_OF = "2026-11-23"


@pytest.fixture
def fakes(vast_fake):  # noqa: F811
    runpod = RunPodFake(api_key="rp-key").start()
    hetzner = HetznerFake(api_key="hz-token").start()
    try:
        yield {"vast": vast_fake, "runpod": runpod, "hetzner": hetzner}
    finally:
        runpod.stop()
        hetzner.stop()


def _refresh(fakes, tmp_path, *args):
    env = dict(os.environ, RUNPOD_API_KEY="rp-key", RUNPOD_API_BASE_URL=fakes["runpod"].url,
               VAST_API_KEY=VAST_KEY, VAST_URL=fakes["vast"].url, HCLOUD_TOKEN="hz-token",
               HCLOUD_ENDPOINT=fakes["hetzner"].url, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    cmd = ["ansible-playbook", "-i", "localhost,", os.path.join(REPO, "playbooks", "refresh_catalog.yml"),
           "-e", json.dumps({"catalog_dest": str(tmp_path / "catalog"), "catalog_as_of": AS_OF}),
           "-v"] + list(args)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_refresh_catalog_from_three_fakes(fakes, tmp_path):
    check = _refresh(fakes, tmp_path, "--check", "--diff")
    assert check.returncode == 0, check.stdout[-5000:] + check.stderr[-2000:]
    assert "changed=1" in check.stdout
    assert not (tmp_path / "catalog").exists(), "check mode must not write"
    # --diff shows the file that would be written, line by line
    assert "+offers:" in check.stdout and "+  provider: runpod" in check.stdout

    real = _refresh(fakes, tmp_path)
    assert real.returncode == 0, real.stdout[-5000:] + real.stderr[-2000:]
    assert "changed=1" in real.stdout
    path = tmp_path / "catalog" / ("catalog-refresh-%s.yml" % AS_OF)
    data = yaml.safe_load(path.read_text())
    offers = dict((o["id"], o) for o in data["offers"])
    # RunPod: lowestPrice of the fake (community prices), Vast.ai: cheapest verified offer with
    # reliability >= 0.95 (1002 at 0.35; bid: its min_bid 0.22), each with source and date.
    assert offers["runpod:NVIDIA GeForce RTX 4090:on_demand"]["price_per_hour"] == 0.60
    assert offers["runpod:NVIDIA GeForce RTX 4090:spot"]["price_per_hour"] == 0.34
    assert offers["vast:RTX 4090:on_demand"]["price_per_hour"] == 0.35
    assert offers["vast:RTX 4090:bid"]["price_per_hour"] == 0.22
    assert offers["vast:A100 SXM4:on_demand"]["price_per_hour"] == 1.10
    assert offers["vast:H100 SXM:on_demand"]["gpu"] == "h100-sxm"
    for offer in data["offers"]:
        assert str(offer["as_of"]) == AS_OF and offer["source"]
    assert any(o["source"].startswith("RunPod GraphQL gpuTypes") for o in data["offers"])
    assert any(o["source"].startswith("Vast.ai POST") for o in data["offers"])

    # The planner's loader takes it over the bundled catalog: refreshed prices win.
    catalog = load_catalog([str(path)])
    assert catalog.offers["vast:RTX 4090:on_demand"].price_per_hour == 0.35
    assert str(catalog.offers["vast:RTX 4090:on_demand"].as_of) == AS_OF

    # Hetzner's server types in the same file, as the catalog's control_servers: gross EUR, what
    # the control_server role records and the planner prices a created control server at.
    cx22 = [s for s in data["control_servers"] if s["id"] == "hetzner:cx22:fsn1"][0]
    assert cx22["price_per_hour"] == 0.00714 and cx22["currency"] == "EUR" and cx22["cpus"] == 2
    assert cx22["source"].startswith("Hetzner Cloud GET") and str(cx22["as_of"]) == AS_OF
    assert catalog.control_servers["hetzner:cx22:fsn1"].price_per_month == 4.5101
    assert fakes["hetzner"].snapshot()["counters"]["paths"]["GET /v1/server_types"] >= 1

    again = _refresh(fakes, tmp_path)
    assert again.returncode == 0, again.stdout[-5000:]
    assert "changed=0" in again.stdout, "same prices the same day: nothing to write"

    # The next day RunPod rate-limits every try (429 past the client's 5 retries): Vast.ai and
    # Hetzner are refreshed, RunPod's entries of the day before are kept with their own date,
    # and a warning says so.
    fakes["runpod"].configure(fail_next=[{"status": 429, "retry_after": 0}] * 6)
    later = _refresh(fakes, tmp_path, "-e", '{"catalog_as_of": "2026-11-24"}')
    assert later.returncode == 0, later.stdout[-5000:] + later.stderr[-2000:]
    said = " ".join((later.stdout + later.stderr).split())   # warnings go to stderr, wrapped
    assert "[WARNING]: catalog_refresh: runpod did not answer after retries (HTTP 429" in said
    next_day = yaml.safe_load((tmp_path / "catalog" / "catalog-refresh-2026-11-24.yml").read_text())
    kept = [o for o in next_day["offers"] if o["provider"] == "runpod"]
    assert kept and sorted(o["id"] for o in kept) == sorted(
        o["id"] for o in data["offers"] if o["provider"] == "runpod")
    assert all(str(o["as_of"]) == AS_OF and o["source"].startswith("RunPod GraphQL") for o in kept)
    assert "kept its %d entries of catalog-refresh-%s.yml (as of %s)" % (len(kept), AS_OF, AS_OF) \
        in said
    assert all(str(o["as_of"]) == "2026-11-24" for o in next_day["offers"] if o["provider"] == "vast")
    assert fakes["runpod"].counters["injected"]["429"] == 6


def test_refresh_fails_clearly_on_bad_key_and_writes_nothing(fakes, tmp_path):
    fakes["vast"].configure(api_key="another-key")
    proc = _refresh(fakes, tmp_path, "-e", '{"catalog_providers": ["vast"]}')
    assert proc.returncode != 0
    assert "Vast.ai rejected the API key" in proc.stdout
    assert not (tmp_path / "catalog").exists()
