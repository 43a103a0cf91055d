"""A cluster the user brings: catalog section ``kubernetes`` -> owned offers -> a keda plan."""

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils import _billing
from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import validate_blueprint
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan
from ansible_collections.llmops.codestack.plugins.module_utils._user_catalog import (
    offer_id,
    place,
)

CLUSTER = {
    "id": "homelab",
    "source": "kubectl get nodes -L nvidia.com/gpu.product (2026-12-01)",
    "as_of": "2026-12-01",
    "namespace": "llm",
    "interceptor_url": "http://192.0.2.10:8080",
    "nodes": [{"name": "rtx4090", "gpu": "rtx4090", "count": 1, "nodes": 2,
               "price_per_hour": 0.05,
               "node_selector": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"},
               "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                "effect": "NoSchedule"}]}],
}


def _cluster_file(tmp_path, *clusters):
    path = tmp_path / "cluster.yml"
    path.write_text(yaml.safe_dump({"kubernetes": list(clusters)}))
    return str(path)


def _blueprint(**constraints):
    base = {"budget_usd": 20, "deadline_hours": 24, "providers": ["kubernetes"]}
    base.update(constraints)
    return validate_blueprint({
        "project": {"name": "k8s-demo", "description": "A CLI tool."},
        "features": [{"name": "cli", "description": "A small command line tool.",
                      "complexity": "low"}],
        "constraints": base, "ide": "none"})


def _plan(catalog, blueprint):
    plan = build_plan(blueprint, estimate(blueprint, catalog), catalog)
    return place(plan, catalog)


def test_node_pools_become_owned_offers(tmp_path):
    catalog = load_catalog([_cluster_file(tmp_path, CLUSTER)])
    offer = catalog.offers[offer_id("homelab", "rtx4090")]
    assert (offer.provider, offer.pricing, offer.gpu, offer.count) == \
        ("kubernetes", "owned", "rtx4090", 1)
    assert offer.price_per_hour == 0.05 and offer.currency == "USD"
    assert "homelab" in offer.source and "rtx4090" in offer.source
    assert catalog.kubernetes["homelab"].namespace == "llm"
    assert "kubernetes" in catalog.scaling and catalog.scaling["kubernetes"].mode == "keda"


def test_unverified_names_fields_of_the_cluster(tmp_path):
    catalog = load_catalog([_cluster_file(tmp_path, dict(CLUSTER, unverified=["nodes"]))])
    assert catalog.kubernetes["homelab"].unverified == ["nodes"]
    with pytest.raises(CatalogError, match=r"kubernetes\[id=homelab\].unverified: 'nodse' is not a "
                                           r"field of the entry; fix: did you mean 'nodes'\?"):
        load_catalog([_cluster_file(tmp_path, dict(CLUSTER, unverified=["nodse"]))])


def test_internal_price_defaults_to_zero(tmp_path):
    pool = dict(CLUSTER["nodes"][0])
    del pool["price_per_hour"]
    catalog = load_catalog([_cluster_file(tmp_path, dict(CLUSTER, nodes=[pool]))])
    assert catalog.offers[offer_id("homelab", "rtx4090")].price_per_hour == 0.0


def test_every_problem_at_once_naming_the_field(tmp_path):
    bad = dict(CLUSTER, id="Home Lab", namespce="llm", nodes=[
        {"name": "a100", "gpu": "a100-80gb", "count": 0},
        {"name": "l4", "gpu": "rtx4090", "price_per_hour": -1},
    ])
    del bad["as_of"]
    with pytest.raises(CatalogError) as err:
        load_catalog([_cluster_file(tmp_path, bad)])
    text = str(err.value)
    for field in ("kubernetes[id=Home Lab].id", "kubernetes[id=Home Lab].as_of",
                  "kubernetes[id=Home Lab].namespce", "did you mean 'namespace'?",
                  "kubernetes[id=Home Lab].nodes.0.count",
                  "kubernetes[id=Home Lab].nodes.1.price_per_hour"):
        assert field in text, (field, text)
    assert "(5 problems in all)" in text


def test_unknown_gpu_and_twice_named_pool_name_the_pool(tmp_path):
    pools = [dict(CLUSTER["nodes"][0], gpu="rtx409"), dict(CLUSTER["nodes"][0])]
    with pytest.raises(CatalogError) as err:
        load_catalog([_cluster_file(tmp_path, dict(CLUSTER, nodes=pools))])
    text = str(err.value)
    assert "kubernetes[id=homelab].nodes[0].gpu refers to unknown gpus 'rtx409'" in text
    assert "did you mean 'rtx4090'?" in text
    assert "kubernetes[id=homelab].nodes[1].name: node pool 'rtx4090' is given twice" in text
    assert "offers[id=" not in text   # named once, where the user wrote it


def test_the_optimiser_chooses_the_cluster_billed_as_keda(tmp_path):
    catalog = load_catalog([_cluster_file(tmp_path, CLUSTER)])
    plan = _plan(catalog, _blueprint())
    assert plan["deployments"]
    usage = _billing.usage_of(plan["blueprint"]["usage"])
    for dep in plan["deployments"]:
        assert dep["provider"] == "kubernetes" and dep["pricing"] == "owned"
        assert dep["offer_id"] == offer_id("homelab", "rtx4090")
        scaling = dep["scaling"]
        assert scaling["mode"] == "keda"
        assert scaling["idle_timeout_s"] == catalog.scaling["kubernetes"].idle_timeout_s
        # the billed formula of docs/cost-model.md (section 4b) at the internal price
        work_s = dep["hours"] * 3600.0 - dep["cost_terms"]["cold_start_s"]
        assert scaling["expected_wakes"] == _billing.expected_wakes(
            "keda", 24, work_s / 3600.0, usage) >= 1
        bill = _billing.bill("keda", work_s, dep["cost_terms"]["cold_start_s"],
                             dep["cost_terms"]["cold_start_s"], scaling["idle_timeout_s"],
                             scaling["expected_wakes"], 24, 0.05)
        assert dep["cost_usd"] == pytest.approx(bill["cost_usd"], abs=2e-4)
        assert dep["billed"]["storage_usd"] == 0.0
        assert dep["cost_usd"] < dep["billed"]["always_on_cost_usd"]
        assert dep["kubernetes"] == {
            "cluster": "homelab", "context": "", "namespace": "llm",
            "interceptor_url": "http://192.0.2.10:8080", "node_pool": "rtx4090",
            "node_selector": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"},
            "tolerations": CLUSTER["nodes"][0]["tolerations"], "max_replicas": 2}
    assert plan["totals"]["cost_usd"] == pytest.approx(
        sum(d["cost_usd"] for d in plan["deployments"]), abs=1e-3)


def test_a_free_cluster_costs_nothing(tmp_path):
    pool = dict(CLUSTER["nodes"][0], price_per_hour=0)
    catalog = load_catalog([_cluster_file(tmp_path, dict(CLUSTER, nodes=[pool]))])
    plan = _plan(catalog, _blueprint())
    assert plan["totals"]["cost_usd"] == 0.0
    assert all(d["scaling"]["mode"] == "keda" for d in plan["deployments"])


def test_without_a_cluster_file_kubernetes_has_no_offer():
    with pytest.raises(Exception, match="no catalog offer can serve any model for providers "
                                        "kubernetes"):
        _plan(load_catalog(), _blueprint())


def test_place_marks_alternatives_on_the_cluster_too(tmp_path):
    catalog = load_catalog([_cluster_file(tmp_path, CLUSTER)])
    plan = {"deployments": [{"provider": "runpod", "offer_id": "x", "alternatives": [
        {"provider": "kubernetes", "offer_id": offer_id("homelab", "rtx4090")},
        {"provider": "kubernetes", "offer_id": "kubernetes:gone:pool:owned"}]}]}
    place(plan, catalog)
    dep = plan["deployments"][0]
    assert "kubernetes" not in dep
    assert dep["alternatives"][0]["kubernetes"]["cluster"] == "homelab"
    assert "kubernetes" not in dep["alternatives"][1]
