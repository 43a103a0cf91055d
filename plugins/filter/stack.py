# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between site.yml's stages.

``usable_alternatives`` drops the capacity fallbacks a run cannot use (no key for their
provider); ``gateway_endpoints`` turns what llmops.codestack.gpu_provision rented into the
endpoints the LiteLLM gateway routes to. Their documentation lives in the YAML files beside
this one.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def usable_alternatives(deployments, providers):
    """The deployments with only the alternatives whose provider is in ``providers``."""
    if not isinstance(deployments, list):
        raise AnsibleFilterError("usable_alternatives: expected the plan's deployments (a list)")
    allowed = set(providers or [])
    out = []
    for dep in deployments:
        dep = dict(dep)
        dep["alternatives"] = [alt for alt in dep.get("alternatives") or [] if alt.get("provider") in allowed]
        out.append(dep)
    return out


def gateway_endpoints(results, api_key=""):
    """{deployment: {api_base, api_key, model}} for the gateway, from gpu_provision_results."""
    endpoints = {}
    for name, result in sorted((results or {}).items()):
        url = result.get("endpoint_url")
        if not url:
            raise AnsibleFilterError("gateway_endpoints: deployment %s has no endpoint URL yet (%s %s); "
                                     "wait for it before routing" % (name, result.get("provider"), result.get("id")))
        endpoints[name] = {"api_base": url, "api_key": api_key or "none",
                           "model": result.get("served_model_name") or name}
        if result.get("tls_ca_pem"):
            # the model server's own TLS: the gateway trusts this authority alone for the route
            endpoints[name]["ca_pem"] = result["tls_ca_pem"]
    return endpoints


class FilterModule(object):
    def filters(self):
        return {"usable_alternatives": usable_alternatives, "gateway_endpoints": gateway_endpoints}
