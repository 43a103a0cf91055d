"""The official ``vastai`` client against the Vast.ai fake (keeps the fake honest), and the
fake's own wire behaviour that the modules rely on."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from _vast_helpers import API_KEY, vast_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration

# The vastai package reads VAST_URL when it is imported, so the client runs in a subprocess
# whose environment points it at the fake.
SDK_SCRIPT = r"""
import json, sys, time
from vastai import VastAI
sdk = VastAI(api_key=sys.argv[1], raw=True)
out = {"server_url": sdk.client.server_url}
offers = sdk.search_offers(query="gpu_name=RTX_4090 num_gpus=1 reliability>0.95 verified=true",
                           order="dph_total")
out["offers"] = [[o["id"], o["dph_total"]] for o in offers]
created = sdk.create_instance(id=offers[0]["id"], image="vllm/vllm-openai:v0.6.3", disk=20,
                              label="codestack-sdk--coder", env={"-p 8000:8000": "1"})
out["created"] = created
iid = created["new_contract"]
deadline = time.time() + 20
while time.time() < deadline:
    inst = sdk.show_instance(id=iid)
    if inst["actual_status"] == "running":
        break
    time.sleep(0.2)
out["status"] = inst["actual_status"]
out["ports"] = inst["ports"]
out["listed"] = [[i["id"], i["label"]] for i in sdk.show_instances()]
out["label"] = sdk.label_instance(id=iid, label="codestack-sdk--renamed")
out["stopped"] = sdk.stop_instance(id=iid)
out["after_stop"] = sdk.show_instance(id=iid)["actual_status"]
out["destroyed"] = sdk.destroy_instance(id=iid)
out["gone"] = sdk.show_instance(id=iid)
print(json.dumps(out))
"""


def test_official_vastai_client_against_fake(vast_fake, tmp_path):  # noqa: F811
    pytest.importorskip("vastai")
    env = dict(os.environ, VAST_URL=vast_fake.url, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", SDK_SCRIPT, API_KEY], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["server_url"] == vast_fake.url
    # Verified RTX 4090 with reliability > 0.95, cheapest first (1004 is unverified).
    assert out["offers"] == [[1002, 0.35], [1001, 0.42]]
    assert out["created"]["success"] is True
    assert out["status"] == "running"
    assert out["ports"]["8000/tcp"][0]["HostPort"]
    assert out["listed"] == [[out["created"]["new_contract"], "codestack-sdk--coder"]]
    assert out["label"]["success"] and out["stopped"]["success"]
    assert out["after_stop"] == "exited"
    assert out["destroyed"] == {"success": True}
    assert out["gone"] is None
    snap = vast_fake.snapshot()
    assert snap["live_instances"] == 0
    assert "GET /api/v1/instances/" in snap["request_log"]  # the SDK lists through v1


def _call(fake, method, path, body=None, key=API_KEY):
    req = urllib.request.Request(fake.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer %s" % key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def test_fake_filters_pagination_errors(vast_fake):  # noqa: F811
    status, body, _headers = _call(vast_fake, "POST", "/api/v0/bundles/", {
        "gpu_name": {"in": ["RTX 4090", "A100 SXM4"]}, "gpu_ram": {"gte": 24000},
        "dph_total": {"lte": 1.2}, "geolocation": {"in": ["NO", "DE", "CA"]},
        "cuda_max_good": {"gte": 12.0}, "order": [["dph_total", "desc"]], "limit": 2,
        "type": "on-demand"})
    assert status == 200
    assert [o["id"] for o in body["offers"]] == [2001, 1001]
    status, body, _headers = _call(vast_fake, "POST", "/api/v0/bundles/",
                                   {"type": "bid", "gpu_name": {"eq": "H100 SXM"}})
    assert body["offers"][0]["dph_total"] == body["offers"][0]["min_bid"]
    status, body, _headers = _call(vast_fake, "POST", "/api/v0/bundles/", {"num_gpus": {"like": 1}})
    assert status == 400 and body["success"] is False
    ids = []
    for offer in (1001, 1002, 1003, 2001, 3001):
        status, body, _headers = _call(vast_fake, "PUT", "/api/v0/asks/%d/" % offer,
                                       {"client_id": "me", "image": "img", "label": "s--%d" % offer})
        ids.append(body["new_contract"])
    status, body, _headers = _call(vast_fake, "PUT", "/api/v0/asks/1001/", {"client_id": "me", "image": "img"})
    assert status == 200 and body["success"] is False and body["error"] == "no_such_ask"
    pages, token = [], None
    while True:
        query = "limit=2" + ("&after_token=%s" % token if token else "")
        status, body, _headers = _call(vast_fake, "GET", "/api/v1/instances/?" + query)
        pages.append([i["id"] for i in body["instances"]])
        assert body["total_instances"] == 5
        token = body["next_token"]
        if not token:
            break
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    status, body, _headers = _call(vast_fake, "DELETE", "/api/v0/instances/424242/", {})
    assert status == 404 and body["error"] == "no_such_instance"
    status, body, _headers = _call(vast_fake, "GET", "/api/v0/instances/", key="nope")
    assert status == 401
    vast_fake.configure(fail_next=[{"status": 429, "retry_after": 7}])
    status, body, headers = _call(vast_fake, "GET", "/api/v0/instances/")
    assert status == 429 and headers["Retry-After"] == "7"
    for iid in ids:
        assert _call(vast_fake, "DELETE", "/api/v0/instances/%d/" % iid, {})[0] == 200
    assert vast_fake.snapshot()["live_instances"] == 0
