# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin RunPod GraphQL client over :mod:`_http`.

Every value travels in ``variables``; the query texts below are constants. GraphQL errors
arrive as HTTP 200 with ``errors[]`` and are raised as :class:`ApiError` (``code`` from
``extensions.code``); running out of GPUs raises :class:`CapacityError` so that callers can
fall back to another offer.

Stack identity: RunPod pods and endpoints have no labels, so the stack id is encoded in the
resource name as ``<stack_id>--<name>`` (see :func:`remote_name`); pods also carry it in the
``CODESTACK_STACK_ID`` environment variable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback
from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient

DEFAULT_ENDPOINT = "https://api.runpod.io"
DEFAULT_PROXY_URL_TEMPLATE = "https://{pod_id}-{port}.proxy.runpod.net"
DEFAULT_OPENAI_URL_TEMPLATE = "https://api.runpod.ai/v2/{endpoint_id}/openai/v1"
SEPARATOR = "--"
STACK_ENV = "CODESTACK_STACK_ID"
CAPACITY_CODES = ("SUPPLY_CONSTRAINT",)
CAPACITY_MESSAGES = ("no longer any instances available", "not enough free gpus")

POD_FIELDS = """
  id name imageName env machineId desiredStatus lastStatusChange costPerHr gpuCount
  vcpuCount memoryInGb volumeInGb containerDiskInGb volumeMountPath dockerArgs ports podType
  uptimeSeconds
  machine { podHostId gpuDisplayName }
  runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } }
"""

Q_PODS = "query Pods { myself { pods {%s} } }" % POD_FIELDS
Q_POD = "query Pod($input: PodFilter!) { pod(input: $input) {%s} }" % POD_FIELDS
M_DEPLOY = ("mutation Deploy($input: PodFindAndDeployOnDemandInput!) {"
            " podFindAndDeployOnDemand(input: $input) {%s} }" % POD_FIELDS)
M_RENT_SPOT = ("mutation RentSpot($input: PodRentInterruptableInput!) {"
               " podRentInterruptable(input: $input) {%s} }" % POD_FIELDS)
M_STOP = "mutation Stop($input: PodStopInput!) { podStop(input: $input) { id desiredStatus } }"
M_RESUME = ("mutation Resume($input: PodResumeInput!) {"
            " podResume(input: $input) { id desiredStatus costPerHr } }")
M_BID_RESUME = ("mutation BidResume($input: PodBidResumeInput!) {"
                " podBidResume(input: $input) { id desiredStatus costPerHr } }")
M_TERMINATE = "mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }"

Q_GPU_TYPES = """
query GpuTypes($input: GpuTypeFilter, $price: GpuLowestPriceInput) {
  gpuTypes(input: $input) {
    id displayName memoryInGb securePrice communityPrice secureSpotPrice communitySpotPrice
    maxGpuCount lowestPrice(input: $price) { minimumBidPrice uninterruptablePrice stockStatus }
  }
}
"""

ENDPOINT_FIELDS = """
  id name templateId gpuIds networkVolumeId locations idleTimeout scalerType scalerValue
  workersMin workersMax gpuCount flashBootType
"""
Q_ENDPOINTS = "query Endpoints { myself { endpoints {%s} } }" % ENDPOINT_FIELDS
M_SAVE_ENDPOINT = ("mutation SaveEndpoint($input: EndpointInput!) {"
                   " saveEndpoint(input: $input) {%s} }" % ENDPOINT_FIELDS)
M_DELETE_ENDPOINT = "mutation DeleteEndpoint($id: String!) { deleteEndpoint(id: $id) }"

TEMPLATE_FIELDS = "id name imageName dockerArgs containerDiskInGb env { key value } isServerless"
Q_TEMPLATES = "query Templates { myself { podTemplates {%s} } }" % TEMPLATE_FIELDS
M_SAVE_TEMPLATE = ("mutation SaveTemplate($input: SaveTemplateInput!) {"
                   " saveTemplate(input: $input) {%s} }" % TEMPLATE_FIELDS)
M_DELETE_TEMPLATE = ("mutation DeleteTemplate($name: String!) {"
                     " deleteTemplate(templateName: $name) }")


class CapacityError(ApiError):
    """RunPod has no GPU matching the request right now (``SUPPLY_CONSTRAINT``)."""


def remote_name(stack_id, name):
    """The provider-side name that carries the stack id."""
    return "%s%s%s" % (stack_id, SEPARATOR, name)


def split_name(remote):
    """``(stack_id, name)`` of a provider-side name, or ``(None, remote)``."""
    if remote and SEPARATOR in remote:
        stack_id, name = remote.split(SEPARATOR, 1)
        return stack_id, name
    return None, remote


def pod_env(pod):
    """A pod's ``env`` (a list of ``KEY=value`` strings) as a dict."""
    out = {}
    for item in pod.get("env") or []:
        key, _sep, value = item.partition("=")
        out[key] = value
    return out


def pod_stack_id(pod):
    stack_id = pod_env(pod).get(STACK_ENV)
    return stack_id or split_name(pod.get("name"))[0]


def _graphql_error(errors, body):
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = first.get("message") or "GraphQL error"
    code = (first.get("extensions") or {}).get("code")
    if len(errors) > 1:
        message += " (and %d more errors)" % (len(errors) - 1)
    lowered = message.lower()
    if code in CAPACITY_CODES or any(m in lowered for m in CAPACITY_MESSAGES):
        return CapacityError(200, message, body=body, code=code or "SUPPLY_CONSTRAINT")
    if code in ("UNAUTHENTICATED", "FORBIDDEN"):
        return ApiError(401, _AUTH_MESSAGE, body=body, code=code)
    return ApiError(200, message, body=body, code=code)


_AUTH_MESSAGE = "RunPod rejected the API key: check api_token (or RUNPOD_API_KEY)"


class RunPodClient:
    """RunPod GraphQL calls used by the collection. Raises :class:`ApiError`."""

    def __init__(self, token, endpoint=DEFAULT_ENDPOINT, http=None, **http_args):
        self.http = http or HttpClient(endpoint or DEFAULT_ENDPOINT, token=token, **http_args)

    def graphql(self, query, variables=None):
        try:
            body = self.http.request("POST", "/graphql",
                                     body={"query": query, "variables": variables or {}})
        except ApiError as exc:
            if exc.status == 401:
                raise ApiError(401, _AUTH_MESSAGE, body=exc.body, code="UNAUTHENTICATED")
            raise
        if not isinstance(body, dict):
            raise ApiError(200, "unexpected response from RunPod: %r" % (body,), body=body)
        if body.get("errors"):
            raise _graphql_error(body["errors"], body)
        return body.get("data") or {}

    # pods ---------------------------------------------------------------
    def list_pods(self):
        return (self.graphql(Q_PODS).get("myself") or {}).get("pods") or []

    def get_pod(self, pod_id):
        return self.graphql(Q_POD, {"input": {"podId": pod_id}}).get("pod")

    def deploy_pod(self, spec, interruptible=False):
        if interruptible:
            return self.graphql(M_RENT_SPOT, {"input": spec})["podRentInterruptable"]
        return self.graphql(M_DEPLOY, {"input": spec})["podFindAndDeployOnDemand"]

    def stop_pod(self, pod_id):
        return self.graphql(M_STOP, {"input": {"podId": pod_id}})["podStop"]

    def resume_pod(self, pod_id, gpu_count, bid_per_gpu=None):
        if bid_per_gpu is not None:
            data = {"podId": pod_id, "gpuCount": gpu_count, "bidPerGpu": bid_per_gpu}
            return self.graphql(M_BID_RESUME, {"input": data})["podBidResume"]
        return self.graphql(M_RESUME, {"input": {"podId": pod_id, "gpuCount": gpu_count}})["podResume"]

    def terminate_pod(self, pod_id):
        self.graphql(M_TERMINATE, {"input": {"podId": pod_id}})

    def gpu_types(self, gpu_type_id=None, gpu_count=1):
        variables = {"price": {"gpuCount": gpu_count}}
        if gpu_type_id:
            variables["input"] = {"id": gpu_type_id}
        return self.graphql(Q_GPU_TYPES, variables).get("gpuTypes") or []

    # serverless ---------------------------------------------------------
    def list_endpoints(self):
        return (self.graphql(Q_ENDPOINTS).get("myself") or {}).get("endpoints") or []

    def save_endpoint(self, spec):
        return self.graphql(M_SAVE_ENDPOINT, {"input": spec})["saveEndpoint"]

    def delete_endpoint(self, endpoint_id):
        self.graphql(M_DELETE_ENDPOINT, {"id": endpoint_id})

    def list_templates(self):
        return (self.graphql(Q_TEMPLATES).get("myself") or {}).get("podTemplates") or []

    def save_template(self, spec):
        return self.graphql(M_SAVE_TEMPLATE, {"input": spec})["saveTemplate"]

    def delete_template(self, name):
        self.graphql(M_DELETE_TEMPLATE, {"name": name})


RUNPOD_AUTH_SPEC = dict(
    api_token=dict(type="str", required=True, no_log=True,
                   fallback=(env_fallback, ["RUNPOD_API_KEY"])),
    api_endpoint=dict(type="str", default=DEFAULT_ENDPOINT,
                      fallback=(env_fallback, ["RUNPOD_API_BASE_URL"])),
)


def client_from_module(module):
    """A client built from the ``runpod`` doc fragment options of an AnsibleModule."""
    return RunPodClient(module.params["api_token"], module.params["api_endpoint"])
