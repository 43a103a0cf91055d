# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clusters the user brings: catalog section ``kubernetes`` (docs/autoscaling.md).

A user catalog file lists each cluster with its GPU node pools. Every pool becomes an owned
offer of provider ``kubernetes`` (internal hourly price per GPU, default 0), which the planner
prices like any other offer (scaling mode ``keda``, catalog ``scaling``); the cluster's
placement (kubeconfig context, namespace, interceptor address, node selector, tolerations,
replicas) is copied into each plan deployment on it as ``deployments[].kubernetes``, so that the
later stages need nothing but plan.json. The catalog loader validates this section with the
others (``_catalog.Catalog``): every problem at once, naming file, cluster and field.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from typing import Dict, List, Optional

from ansible_collections.llmops.codestack.plugins.module_utils._pydantic import (  # noqa: F401
    HAS_PYDANTIC,
    BaseModel,
    ConfigDict,
    Field,
)

PROVIDER = "kubernetes"
SECTION = "kubernetes"
_DNS = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

if HAS_PYDANTIC:
    class NodePool(BaseModel):
        """GPU nodes of one kind: one replica of a deployment takes ``count`` GPUs of a node."""
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
        name: str = Field(min_length=1, max_length=40, pattern=_DNS)
        gpu: str = Field(min_length=1)
        count: int = Field(default=1, ge=1)
        nodes: int = Field(default=1, ge=1)
        price_per_hour: float = Field(default=0.0, ge=0)
        node_selector: Dict[str, str] = Field(default_factory=dict)
        tolerations: List[Dict[str, object]] = Field(default_factory=list)

    class Cluster(BaseModel):
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
        id: str = Field(min_length=1, max_length=40, pattern=_DNS)
        source: str = Field(min_length=1)
        as_of: datetime.date
        # the fields whose figure the source does not confirm (docs/catalog.md)
        unverified: List[str] = Field(default_factory=list)
        context: str = ""
        namespace: str = Field(default="codestack", pattern=_DNS)
        interceptor_url: str = ""
        currency: str = "USD"
        region: str = "ALL"
        country: Optional[str] = None
        nodes: List[NodePool] = Field(min_length=1)
else:  # pragma: no cover
    Cluster = None


def offer_id(cluster_id, pool_name):
    return "%s:%s:%s:owned" % (PROVIDER, cluster_id, pool_name)


def offer_entries(cluster):
    """The catalog ``offers`` entries (plain dicts) of a validated ``Cluster``."""
    return [{
        "id": offer_id(cluster.id, pool.name), "provider": PROVIDER, "pricing": "owned",
        "gpu": pool.gpu, "provider_gpu_id": pool.name, "count": pool.count,
        "price_per_hour": pool.price_per_hour, "currency": cluster.currency,
        "region": cluster.region, "country": cluster.country,
        "source": "cluster %s, node pool %s: %s" % (cluster.id, pool.name, cluster.source),
        "as_of": cluster.as_of,
    } for pool in cluster.nodes]


def check(catalog, need):
    """Cross-references of the clusters (``need`` as in ``Catalog.check``); problems found here
    name the cluster's field, so offers made from a pool are left out of the offer checks.
    Returns the problems ``need`` does not cover."""
    problems = []
    for cluster in catalog.sections.get(SECTION, {}).values():
        names = set()
        for index, pool in enumerate(cluster.nodes):
            where = "kubernetes[id=%s].nodes[%d]" % (cluster.id, index)
            if pool.name in names:
                problems.append("catalog: %s.name: node pool '%s' is given twice; fix: give "
                                "each pool of a cluster its own name" % (where, pool.name))
            names.add(pool.name)
            need("gpus", pool.gpu, where + ".gpu")
        need("currencies", cluster.currency, "kubernetes[id=%s].currency" % cluster.id)
    return problems


def derived_offers(catalog):
    """Ids of the offers made from a cluster's node pools."""
    return set(offer_id(c.id, p.name) for c in catalog.sections.get(SECTION, {}).values()
               for p in c.nodes)


def placement(catalog, offer):
    """``deployments[].kubernetes`` of a plan option on ``offer`` (its id), or None."""
    for cluster in catalog.sections.get(SECTION, {}).values():
        for pool in cluster.nodes:
            if offer_id(cluster.id, pool.name) == offer:
                return {"cluster": cluster.id, "context": cluster.context,
                        "namespace": cluster.namespace,
                        "interceptor_url": cluster.interceptor_url, "node_pool": pool.name,
                        "node_selector": dict(pool.node_selector),
                        "tolerations": [dict(t) for t in pool.tolerations],
                        "max_replicas": pool.nodes}
    return None


def place(plan, catalog):
    """Add ``kubernetes`` (the cluster's placement) to every deployment and alternative of
    ``plan`` on a cluster of ``catalog``; returns the plan (changed in place)."""
    for dep in plan.get("deployments") or []:
        for option in [dep] + list(dep.get("alternatives") or []):
            if option.get("provider") == PROVIDER:
                where = placement(catalog, option.get("offer_id"))
                if where is not None:
                    option["kubernetes"] = where
    return plan
