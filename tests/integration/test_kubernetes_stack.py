"""site.yml for a blueprint whose plan lands on a cluster the user brings (provider kubernetes).

Offline (no KUBECONFIG, the case on these machines): the real stage playbooks plan on the
user's cluster catalog, render the vllm_server and KEDA manifests into the stack directory, start
the REAL LiteLLM gateway routed through the KEDA HTTP interceptor, and teardown.yml removes it
all. Asserted: plan.json (provider kubernetes, scaling mode keda, the billed formula of
docs/cost-model.md), the manifests against the Kubernetes 1.33 schemas and the vendored KEDA CRDs,
the gateway's routes (interceptor URL, Host header of the HTTPScaledObject), and one request
through the gateway that the interceptor stand-in (tests/integration/_coldstart.py, configured
from the rendered HTTPScaledObject) routes on that Host header to a backend it wakes.

Live: with KUBECONFIG the same blueprint is applied to that cluster and torn down again
(CODESTACK_TEST_INTERCEPTOR_URL: how this machine reaches the cluster's KEDA interceptor, for
the route stage's request to every alias; a GPU node labelled like the catalog below).
"""

import glob
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import crd_schema  # noqa: E402
from _coldstart import Interceptor, Workload  # noqa: E402
from _services import free_port  # noqa: E402

from ansible_collections.llmops.codestack.plugins.module_utils import _billing  # noqa: E402

pytestmark = pytest.mark.integration

PRICE = 0.05   # the cluster's internal price per GPU-hour
BLUEPRINT = """\
schema_version: 1
project:
  name: k8s-e2e
  description: A small CLI tool built on the team's own GPU cluster.
features:
  - {name: cli, description: "A small command line tool.", priority: must, complexity: low}
constraints:
  budget_usd: 20
  deadline_hours: 24
  providers: [kubernetes]
ide: none
"""


def _cluster_catalog(path, interceptor_url):
    path.write_text(yaml.safe_dump({"kubernetes": [{
        "id": "homelab", "source": "kubectl get nodes -L nvidia.com/gpu.product (test)",
        "as_of": "2026-12-01", "namespace": "llm", "interceptor_url": interceptor_url,
        "nodes": [{"name": "rtx4090", "gpu": "rtx4090", "count": 1, "nodes": 2,
                   "price_per_hour": PRICE,
                   "node_selector": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"}}],
    }]}))


def _run(playbook, variables, env, timeout=600):
    proc = subprocess.run(["ansible-playbook", os.path.join(REPO, "playbooks", playbook),
                           "-e", json.dumps(variables)], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc


def _env(tmp_path, kubeconfig=None):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_DEPRECATION_WARNINGS="0", LITELLM_LOCAL_MODEL_COST_MAP="True",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    for name in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG"):
        env.pop(name, None)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return env


def _site_vars(tmp_path, catalog):
    (tmp_path / "blueprint.yml").write_text(BLUEPRINT)
    return {"blueprint": str(tmp_path / "blueprint.yml"), "codestack_output": str(tmp_path / "stack"),
            "codestack_catalog": [str(catalog)], "codestack_calibrate": False,
            "litellm_gateway_port": free_port(), "litellm_gateway_dir": str(tmp_path / "litellm")}


def _stop_gateway(tmp_path):
    ctl = tmp_path / "litellm" / "ctl.sh"
    if ctl.exists():
        subprocess.run([str(ctl), "stop"], check=False, capture_output=True, timeout=60)


def _docs(path):
    with open(path) as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def test_site_on_a_users_cluster_offline(tmp_path):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    start = time.monotonic()
    stack = tmp_path / "stack"
    with Interceptor() as interceptor:
        _cluster_catalog(tmp_path / "cluster.yml", interceptor.url)
        variables = _site_vars(tmp_path, tmp_path / "cluster.yml")
        env = _env(tmp_path)
        workload = None
        try:
            site = _run("site.yml", variables, env)
            assert "No KUBECONFIG: rendering only (nothing is applied) for homelab" in site.stdout

            # plan.json: on the user's cluster, scaled by KEDA, billed at the internal price
            plan = json.loads((stack / "plan.json").read_text())
            usage = _billing.usage_of(plan["blueprint"]["usage"])
            (dep,) = plan["deployments"]
            assert (dep["provider"], dep["pricing"], dep["offer_id"]) == \
                ("kubernetes", "owned", "kubernetes:homelab:rtx4090:owned")
            assert dep["scaling"]["mode"] == "keda" and dep["scaling"]["idle_timeout_s"] == 300
            cold = dep["cost_terms"]["cold_start_s"]
            work_s = dep["hours"] * 3600.0 - cold
            billed = _billing.bill("keda", work_s, cold, cold, 300, dep["scaling"]["expected_wakes"],
                                   24, PRICE)
            assert dep["scaling"]["expected_wakes"] == _billing.expected_wakes(
                "keda", 24, work_s / 3600.0, usage)
            assert dep["cost_usd"] > 0
            assert dep["cost_usd"] == pytest.approx(billed["cost_usd"], abs=2e-4)
            assert plan["totals"]["cost_usd"] == pytest.approx(dep["cost_usd"], abs=1e-4)
            assert plan["totals"]["cost_usd"] < plan["totals"]["always_on_cost_usd"]
            assert dep["kubernetes"]["interceptor_url"] == interceptor.url

            # the rendered manifests, valid against the Kubernetes and KEDA schemas
            render = stack / "kubernetes" / "homelab"
            name = dep["name"]   # a DNS-1123 label already: the objects carry it
            vllm_objs = _docs(render / ("%s.yaml" % name))
            secret = render / ("%s-secret.yaml" % name)
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            schemas = crd_schema.load_schemas()
            keda_objs = [d for f in sorted(glob.glob(str(render / "keda" / "keda-*.yml"))) for d in _docs(f)]
            for obj in vllm_objs + _docs(secret) + [o for o in keda_objs if o["kind"] == "Namespace"]:
                kubernetes_validate.validate(obj, "1.33", strict=True)
            for obj in keda_objs:
                if obj["kind"] != "Namespace":
                    crd_schema.validate(obj, schemas)
                    crd_schema.check_cel_rules(obj)
            deployment = next(o for o in vllm_objs if o["kind"] == "Deployment")
            assert "replicas" not in deployment["spec"]    # KEDA owns it
            pod = deployment["spec"]["template"]["spec"]
            assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"}
            args = pod["containers"][0]["args"]
            assert args[args.index("--max-model-len") + 1] == str(dep["serving"]["max_model_len"])
            assert args[args.index("--max-num-seqs") + 1] == str(dep["serving"]["max_num_seqs"])
            httpso = next(o for o in keda_objs if o["kind"] == "HTTPScaledObject")
            assert httpso["spec"]["replicas"] == {"min": 0, "max": 2}
            assert httpso["spec"]["scaledownPeriod"] == 300
            host = httpso["spec"]["hosts"][0]
            assert host == "%s.llm.svc.cluster.local" % name

            # the gateway routes every alias through the interceptor with that Host header
            config = yaml.safe_load((tmp_path / "litellm" / "config.yaml").read_text())
            routes = dict((m["model_name"], m["litellm_params"]) for m in config["model_list"])
            for alias in ("architect", "coder", "debugger", "reviewer"):
                assert routes[alias]["api_base"] == interceptor.url + "/v1"
                assert routes[alias]["extra_headers"] == {"Host": host}
            state = json.loads((stack / "state.json").read_text())
            (kube,) = [r for r in state["resources"] if r["provider"] == "kubernetes"]
            assert kube["attributes"]["applied"] is False and kube["attributes"]["host_header"] == host
            # the cluster has an internal price: the budget guard watches it like a rented machine
            (guard,) = [r for r in state["resources"] if r["kind"] == "guard"]
            settings = json.loads(open(guard["attributes"]["status_file"].replace("-status.json", ".json")).read())
            assert settings["clusters"] == {name: {"usd_per_hour": dep["price_per_hour_usd"],
                                                   "idle_timeout_s": dep["scaling"]["idle_timeout_s"]}}

            # one request through the real gateway: the interceptor routes it on the Host header,
            # wakes the workload from zero and forwards it
            workload = Workload(name, 0, str(tmp_path), model=routes["coder"]["model"].split("/", 1)[1],
                                tiny=True)
            interceptor.add(httpso, workload)
            key = (tmp_path / "litellm" / "master_key").read_text().strip()
            request = urllib.request.Request(
                "http://127.0.0.1:%d/v1/chat/completions" % variables["litellm_gateway_port"],
                data=json.dumps({"model": "coder", "max_tokens": 8,
                                 "messages": [{"role": "user", "content": "Say hello."}]}).encode(),
                headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["choices"][0]["message"]["content"]
            assert host in interceptor.hosts_seen and workload.starts == 1 and workload.forwarded == 1

            # teardown removes the rendered deployment and the gateway, and says so
            _run("teardown.yml", {"codestack_output": str(stack)}, env)
            assert not render.exists()
            state = json.loads((stack / "state.json").read_text())
            assert state["resources"] == []
            report = json.loads((stack / "teardown.json").read_text())
            outcomes = dict((r["provider"], r["outcome"]) for r in report["resources"])
            assert outcomes == {"kubernetes": "removed", "local": "removed"}
        finally:
            _stop_gateway(tmp_path)
            if workload is not None:
                workload.stop()
    print("kubernetes stack offline: %.1f s (load %.1f)" % (time.monotonic() - start, os.getloadavg()[0]))


def test_site_on_a_live_cluster(tmp_path):
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        pytest.skip("no Kubernetes cluster: set KUBECONFIG to a cluster (k3s or any) with KEDA's "
                    "charts reachable, helm on PATH and a GPU node labelled like the catalog below")
    kubernetes = pytest.importorskip("kubernetes")
    _cluster_catalog(tmp_path / "cluster.yml", os.environ.get("CODESTACK_TEST_INTERCEPTOR_URL", ""))
    variables = _site_vars(tmp_path, tmp_path / "cluster.yml")
    env = _env(tmp_path, kubeconfig)
    try:
        _run("site.yml", variables, env, timeout=1800)
        state = json.loads((tmp_path / "stack" / "state.json").read_text())
        (kube,) = [r for r in state["resources"] if r["provider"] == "kubernetes"]
        assert kube["attributes"]["applied"] is True
        kubernetes.config.load_kube_config(config_file=kubeconfig)
        client = kubernetes.dynamic.DynamicClient(kubernetes.client.ApiClient())
        for ref in kube["attributes"]["objects"]:
            api = client.resources.get(api_version=ref["api_version"], kind=ref["kind"])
            assert api.get(name=ref["name"], namespace=ref["namespace"])
        _run("teardown.yml", {"codestack_output": str(tmp_path / "stack")}, env)
        for ref in kube["attributes"]["objects"]:
            api = client.resources.get(api_version=ref["api_version"], kind=ref["kind"])
            with pytest.raises(kubernetes.dynamic.exceptions.NotFoundError):
                api.get(name=ref["name"], namespace=ref["namespace"])
    finally:
        _stop_gateway(tmp_path)
