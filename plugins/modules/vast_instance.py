#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vast_instance
short_description: Rent, start, stop and destroy Vast.ai GPU instances of a stack
version_added: 0.1.0
description:
  - Manages one Vast.ai GPU instance through the Vast.ai REST API. Without O(offer_id) the module
    searches the offers matching the filters (GPU model and count, memory, price, reliability,
    verified host, region, CUDA), best first per O(order), and rents the first one it can.
  - An instance is identified by O(name) within O(stack_id), through its label
    C(<stack_id>--<name>). A second run with the same arguments finds it and changes nothing.
  - On-demand by default; with O(bid=true) the instance is an interruptible bid at
    O(bid_price) USD per hour for the whole machine.
  - When an offer is rented by someone else between the search and the create, the next
    matching offer is tried (up to O(max_offers)). When none is left, or O(offer_id) is gone, the
    module fails with C(capacity_error=true) so that a playbook can fall back to another
    provider or plan option (see role C(llmops.codestack.gpu_provision)).
  - With O(wait=true) the module waits until Vast.ai reports the instance C(running) and returns
    its public IP address and port mappings. When the wait times out on an instance created by
    this run, the instance is destroyed (no paid orphan) and the module fails with the last
    C(actual_status).
  - A bid instance found exited while it should be running was outbid (preempted). It is
    reported with C(vast_instance.preempted=true) and a warning; O(state=started) starts it again.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.vast
  - llmops.codestack.vast.offer_filters
  - llmops.codestack.wait
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Offers are searched (read only) and the offer that would be rented is returned.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description: Name of the instance within the stack.
    type: str
    required: true
  stack_id:
    description: Stack the instance belongs to (the plan's C(stack_id)). Must not contain C(--).
    type: str
    required: true
  state:
    description:
      - V(present) rents an instance if there is none (and starts it); an existing one is left as
        it is, a preempted one is reported.
      - V(started) also starts a stopped or preempted instance.
      - V(stopped) stops the instance (renting it first if missing). Vast.ai bills the disk of
        a stopped instance until it is destroyed.
      - V(absent) destroys every instance with the label.
    type: str
    choices: [present, started, stopped, absent]
    default: present
  offer_id:
    description:
      - Rent this offer (for example the plan's choice) instead of searching. The filters are
        then ignored; a gone offer fails with C(capacity_error=true).
    type: int
  max_offers:
    description: How many matching offers to try, best first, when offers are rented away.
    type: int
    default: 3
  bid:
    description: Rent an interruptible instance with a bid instead of an on-demand one.
    type: bool
    default: false
  bid_price:
    description:
      - Bid in USD per hour for the whole machine. Defaults to the offer's current minimum bid
        (C(min_bid)), which is the cheapest and the first to be outbid.
    type: float
  image:
    description: Container image. Required to rent an instance.
    type: str
  args:
    description: Arguments passed to the image's entrypoint (Vast.ai run type C(args)).
    type: list
    elements: str
  entrypoint:
    description:
      - Replaces the image's entrypoint (run type C(args) only; sent in the C(onstart) field, as
        the official client's C(--entrypoint) does). Mutually exclusive with O(onstart).
    type: str
  https_ports:
    description:
      - Container ports that the container itself serves over TLS; their C(urls) start with
        C(https://). Vast.ai puts no proxy in front of a port, so any other port is plain TCP.
    type: list
    elements: int
    default: []
  env:
    description: Environment variables of the container.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables holding secrets (Hugging Face token, vLLM API key). Never logged
        nor returned.
    type: dict
    default: {}
  ports:
    description:
      - Container TCP ports to expose (sent as Vast.ai C(-p PORT:PORT) environment entries). The
        public port of each is returned once the instance runs.
    type: list
    elements: int
    default: [8000]
  disk_gb:
    description: Disk size in GB.
    type: int
    default: 20
  onstart:
    description: Shell commands run when the instance starts.
    type: str
seealso:
  - module: llmops.codestack.vast_offer_info
  - module: llmops.codestack.vast_info
  - name: Vast.ai API
    description: Vast.ai REST API reference.
    link: https://docs.vast.ai/api-reference/introduction
"""

EXAMPLES = r"""
- name: Serve a coder model on the cheapest reliable RTX 4090
  llmops.codestack.vast_instance:
    name: coder
    stack_id: codestack-shop
    gpu_name: [RTX 4090]
    max_dph: 0.6
    min_reliability: 0.95
    min_cuda: 12.1
    geolocation: ["NO", SE, DE, PL]
    image: vllm/vllm-openai:v0.32.0
    args: [--model, Qwen/Qwen2.5-Coder-7B-Instruct-AWQ, --quantization, awq, --port, "8000"]
    ports: [8000]
    secret_env:
      HF_TOKEN: "{{ hf_token }}"
    wait_timeout: 1200
  register: coder

- name: Show where the model listens
  ansible.builtin.debug:
    msg: "http://{{ coder.vast_instance.public_ipaddr }}:{{ coder.vast_instance.ports['8000/tcp'].host_port }}/v1"

- name: Rent the plan's offer as an interruptible bid
  llmops.codestack.vast_instance:
    name: reviewer
    stack_id: codestack-shop
    offer_id: 1234567
    bid: true
    bid_price: 0.3
    image: vllm/vllm-openai:v0.32.0
  register: reviewer
  ignore_errors: true

- name: Fall back when the offer was rented away
  ansible.builtin.debug:
    msg: "offer gone, try the next plan option"
  when: reviewer is failed and reviewer.capacity_error | default(false)

- name: Destroy it
  llmops.codestack.vast_instance:
    name: coder
    stack_id: codestack-shop
    state: absent
"""

RETURN = r"""
vast_instance:
  description: The instance after the change (in check mode, what it would be).
  returned: success, and on wait failure
  type: dict
  contains:
    id:
      description: Vast.ai instance (contract) id; null in check mode before creation.
      type: int
      sample: 9000001
    name:
      description: Name within the stack.
      type: str
      sample: coder
    label:
      description: Label at Vast.ai, C(<stack_id>--<name>).
      type: str
      sample: codestack-shop--coder
    stack_id:
      description: Stack id.
      type: str
      sample: codestack-shop
    actual_status:
      description: Vast.ai C(actual_status) (V(created), V(loading), V(running), V(exited)); V(absent) when destroyed.
      type: str
      sample: running
    intended_status:
      description: Vast.ai C(intended_status).
      type: str
      sample: running
    status_msg:
      description: Vast.ai's last status message.
      type: str
      sample: ""
    ready:
      description: Whether the instance was seen running by this run.
      type: bool
      sample: true
    offer_id:
      description: The offer rented by this run (null when the instance already existed).
      type: int
      sample: 1002
    dph_total:
      description: Price in USD per hour (the bid for interruptible instances).
      type: float
      sample: 0.35
    is_bid:
      description: Whether it is an interruptible bid instance.
      type: bool
      sample: false
    preempted:
      description: A bid instance that was outbid (exited) while it should have been running.
      type: bool
      sample: false
    gpu_name:
      description: GPU model.
      type: str
      sample: RTX 4090
    num_gpus:
      description: Number of GPUs.
      type: int
      sample: 1
    geolocation:
      description: Where the host is.
      type: str
      sample: Warsaw, PL
    image:
      description: Container image.
      type: str
      sample: vllm/vllm-openai:v0.32.0
    public_ipaddr:
      description: Public IP address once running.
      type: str
      sample: 203.0.113.7
    ports:
      description: Public mapping of each exposed container port, keyed C(<port>/tcp).
      type: dict
      sample: {"8000/tcp": {"host_ip": "0.0.0.0", "host_port": 40011}}
    urls:
      description: C(http://<public_ipaddr>:<public port>) of each exposed port (C(https://) for O(https_ports)), keyed by container port.
      type: dict
      sample: {"8000": "http://203.0.113.7:40011"}
    ssh_host:
      description: SSH proxy host.
      type: str
      sample: ssh4.vast.ai
    ssh_port:
      description: SSH proxy port.
      type: int
      sample: 40010
offers_tried:
  description: Offers this run tried to rent, best first, with the outcome of each.
  returned: when an offer was rented or tried
  type: list
  elements: dict
  sample: [{"id": 1002, "dph_total": 0.35, "outcome": "rented away"}, {"id": 1001, "dph_total": 0.42, "outcome": "rented"}]
progress:
  description: One line per poll while waiting (shown with C(-v)).
  returned: when the module waited
  type: list
  elements: str
  sample: ["0s: created", "2s: loading", "4s: running"]
capacity_error:
  description: True when no matching offer could be rented (all rented away, or none match); fall back.
  returned: failure
  type: bool
  sample: true
last_status:
  description: The last C(actual_status) when a wait failed.
  returned: failure while waiting
  type: str
  sample: loading
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError
from ansible_collections.llmops.codestack.plugins.module_utils._vast import (
    OFFER_FILTER_SPEC,
    SEPARATOR,
    VAST_AUTH_SPEC,
    CapacityError,
    client_from_module,
    make_label,
    query_from_params,
)
from ansible_collections.llmops.codestack.plugins.module_utils._wait import WaitTimeout, wait_for

FINAL_STATUSES = ("exited", "offline", "stopped")


def _is_preempted(inst):
    return bool(inst.get("is_bid")) and inst.get("intended_status") == "running" \
        and inst.get("actual_status") in FINAL_STATUSES


def _port_map(inst):
    out = {}
    for spec, bindings in (inst.get("ports") or {}).items():
        if not bindings:
            continue
        first = bindings[0]
        try:
            host_port = int(first.get("HostPort"))
        except (TypeError, ValueError):
            host_port = first.get("HostPort")
        out[spec] = {"host_ip": first.get("HostIp"), "host_port": host_port}
    return out


class VastInstance:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = client_from_module(module)
        self.label = make_label(self.params["stack_id"], self.params["name"])
        self.changed = False
        self.created_id = None
        self.offer_id = None
        self.offers_tried = []
        self.preempted = False
        self.progress = []
        self.instance = None
        self.before = None

    # ------------------------------------------------------------ views
    def _state_view(self, inst):
        if inst is None:
            return {"state": "absent"}
        return {"state": "stopped" if inst.get("intended_status") == "stopped" else "running",
                "image": inst.get("image_uuid"), "gpu_name": inst.get("gpu_name"),
                "num_gpus": inst.get("num_gpus"), "is_bid": bool(inst.get("is_bid")),
                "dph_total": inst.get("dph_total")}

    def _result_view(self, inst, ready=False):
        p = self.params
        base = {"name": p["name"], "label": self.label, "stack_id": p["stack_id"],
                "offer_id": self.offer_id, "preempted": self.preempted, "ready": ready}
        if inst is None:
            base.update(id=None, actual_status="absent", intended_status=None)
            return base
        ports = _port_map(inst)
        ip = inst.get("public_ipaddr")
        urls = {}
        if ip:
            for spec, binding in ports.items():
                number, _sep, proto = spec.partition("/")
                if proto in ("tcp", "") and number != "22":
                    scheme = "https" if int(number) in p["https_ports"] else "http"
                    urls[number] = "%s://%s:%s" % (scheme, ip, binding["host_port"])
        base.update(
            id=inst.get("id"), actual_status=inst.get("actual_status"),
            intended_status=inst.get("intended_status"), status_msg=inst.get("status_msg"),
            dph_total=inst.get("dph_total"), is_bid=bool(inst.get("is_bid")),
            gpu_name=inst.get("gpu_name"), num_gpus=inst.get("num_gpus"),
            geolocation=inst.get("geolocation"), image=inst.get("image_uuid"),
            public_ipaddr=ip, ports=ports, urls=urls, ssh_host=inst.get("ssh_host"),
            ssh_port=inst.get("ssh_port"))
        return base

    # ------------------------------------------------------------ CRUD
    def _find_all(self):
        rows = self.client.list_instances({"label": {"eq": self.label}})
        return [r for r in rows if r.get("label") == self.label]

    def _get(self):
        matches = self._find_all()
        if len(matches) > 1:
            self.module.fail_json(
                msg="%d instances are labelled %s; remove the extra ones (ids: %s)"
                % (len(matches), self.label, ", ".join(str(m["id"]) for m in matches)))
        return matches[0] if matches else None

    def _candidates(self):
        p = self.params
        offer_type = "bid" if p["bid"] else "on-demand"
        if p["offer_id"] is not None:
            query = query_from_params({"num_gpus": None, "verified": None, "order": []}, offer_type)
            query["id"] = {"eq": p["offer_id"]}
            offers = self.client.search_offers(query)
            if not offers:
                raise CapacityError(200, "offer %s is no longer available (rented or withdrawn)"
                                    % p["offer_id"], code="no_such_ask")
            return offers[:1]
        offers = self.client.search_offers(query_from_params(p, offer_type, limit=max(p["max_offers"], 1)))
        if not offers:
            raise CapacityError(200, "no Vast.ai offer matches the filters", code="no_offers")
        return offers[:p["max_offers"]]

    def _spec(self, offer):
        p = self.params
        env = dict((k, str(v)) for k, v in p["env"].items())
        env.update((k, str(v)) for k, v in p["secret_env"].items())
        for port in p["ports"]:
            env["-p %d:%d" % (port, port)] = "1"
        spec = {"client_id": "me", "image": p["image"], "env": env, "disk": p["disk_gb"],
                "label": self.label}
        if p["args"] is not None:
            spec["runtype"] = "args"
            spec["args"] = list(p["args"])
        if p["onstart"]:
            spec["onstart"] = p["onstart"]
        if p["entrypoint"]:
            spec["onstart"] = p["entrypoint"]
        if p["bid"]:
            spec["price"] = p["bid_price"] if p["bid_price"] is not None else offer.get("min_bid")
        return spec

    def _planned(self, offer):
        p = self.params
        price = offer.get("dph_total")
        if p["bid"]:
            price = p["bid_price"] if p["bid_price"] is not None else offer.get("min_bid")
        return {"id": None, "label": self.label, "image_uuid": p["image"],
                "actual_status": "stopped" if p["state"] == "stopped" else "running",
                "intended_status": "stopped" if p["state"] == "stopped" else "running",
                "gpu_name": offer.get("gpu_name"), "num_gpus": offer.get("num_gpus"),
                "geolocation": offer.get("geolocation"), "dph_total": price, "is_bid": p["bid"],
                "ports": {}}

    def _create(self):
        """Rent the best offer that is still there. Returns the new instance (or the plan)."""
        offers = self._candidates()
        if self.module.check_mode:
            self.offer_id = offers[0].get("id")
            self.offers_tried.append({"id": self.offer_id, "dph_total": offers[0].get("dph_total"),
                                      "outcome": "would rent"})
            return self._planned(offers[0])
        gone = []
        for offer in offers:
            try:
                inst_id = self.client.create_instance(offer["id"], self._spec(offer))
            except CapacityError as exc:
                gone.append("%s (%s)" % (offer["id"], exc.message))
                self.offers_tried.append({"id": offer["id"], "dph_total": offer.get("dph_total"),
                                          "outcome": "rented away"})
                continue
            self.created_id = inst_id
            self.offer_id = offer["id"]
            self.offers_tried.append({"id": offer["id"], "dph_total": offer.get("dph_total"),
                                      "outcome": "rented"})
            inst = self.client.get_instance(inst_id) or {"id": inst_id, "label": self.label}
            if inst.get("label") != self.label:
                self.client.set_label(inst_id, self.label)
                inst["label"] = self.label
            return inst
        raise CapacityError(200, "every matching offer was rented by someone else: %s"
                            % "; ".join(gone), code="no_such_ask")

    def _set_state(self, inst, state):
        self.changed = True
        if self.module.check_mode:
            return dict(inst, intended_status=state,
                        actual_status="exited" if state == "stopped" else "running")
        self.client.set_state(inst["id"], state)
        return self.client.get_instance(inst["id"]) or inst

    def _update(self, inst):
        p = self.params
        if _is_preempted(inst):
            self.preempted = True
            self.module.warn("bid instance %s (%s) exited while it should run: it was outbid "
                             "(preempted): %s" % (self.label, inst["id"],
                                                  inst.get("status_msg") or "no reason given"))
        if p["image"] and inst.get("image_uuid") and inst.get("image_uuid") != p["image"]:
            self.module.warn("instance %s runs image %s, not %s; destroy it (state=absent) to "
                             "replace it" % (self.label, inst.get("image_uuid"), p["image"]))
        stopped = inst.get("intended_status") == "stopped" or inst.get("actual_status") in FINAL_STATUSES
        if p["state"] == "started" and stopped:
            return self._set_state(inst, "running")
        if p["state"] == "stopped" and inst.get("intended_status") != "stopped":
            return self._set_state(inst, "stopped")
        return inst

    def _destroy(self, inst):
        self.changed = True
        if not self.module.check_mode:
            self.client.destroy_instance(inst["id"])

    # ------------------------------------------------------------ wait
    def _wait(self, inst):
        def probe():
            return self.client.get_instance(inst["id"])

        # A restarted instance may still read "exited" for a moment; only a new one that exits
        # has failed for good.
        terminal = ("running",) + (FINAL_STATUSES if self.created_id is not None else ())

        def done(value):
            return value is None or value.get("actual_status") in terminal

        def progress(value, elapsed):
            # actual_status and what Vast.ai says about it (image pull while loading, errors)
            what = (value or {}).get("actual_status", "gone")
            if (value or {}).get("status_msg"):
                what = "%s (%s)" % (what, value["status_msg"])
            if not self.progress or self.progress[-1].split(": ", 1)[1] != what:
                self.progress.append("%.0fs: %s" % (elapsed, what))
                self.module.log("vast_instance %s: %.0fs: %s" % (self.label, elapsed, what))

        try:
            value = wait_for(probe, done, timeout=self.params["wait_timeout"],
                             sleep=self.params["wait_sleep"], progress=progress,
                             what="instance %s to run" % self.label)
        except WaitTimeout as exc:
            self._fail_wait(str(exc), exc.last or inst)
        if value is None:
            self._fail_wait("instance %s disappeared while starting" % self.label, inst)
        if value.get("actual_status") != "running":
            if _is_preempted(value):
                self.preempted = True
            self._fail_wait("instance %s stopped before it ran (%s)"
                            % (self.label, value.get("status_msg") or "no reason given"), value)
        return value

    def _fail_wait(self, message, last):
        status = (last or {}).get("actual_status") or "unknown"
        extra = ""
        view = self._result_view(last)
        if self.created_id is not None:
            try:
                self.client.destroy_instance(self.created_id)
                extra = "; the instance created by this run was destroyed"
                view = self._result_view(None)
            except ApiError as exc:
                extra = "; destroying instance %s FAILED, destroy it by hand: %s" % (self.created_id, exc)
        said = (last or {}).get("status_msg")
        said = " (%s)" % said if said else ""
        self.module.fail_json(msg="%s; last actual_status: %s%s%s" % (message, status, said, extra),
                              last_status=status, vast_instance=view, changed=self.changed,
                              progress=self.progress[-50:], offers_tried=self.offers_tried)

    def cleanup_after_error(self):
        """Destroy an instance this run created before an API call failed (no paid orphan)."""
        if self.created_id is None:
            return ""
        try:
            self.client.destroy_instance(self.created_id)
            return "; the instance created by this run was destroyed"
        except ApiError as exc:
            return "; destroying instance %s FAILED, destroy it by hand: %s" % (self.created_id, exc)

    # ------------------------------------------------------------ states
    def present(self):
        p = self.params
        inst = self._get()
        self.before = self._state_view(inst)
        if inst is None:
            if not p["image"]:
                self.module.fail_json(msg="image is required to rent instance %s" % self.label)
            self.changed = True
            inst = self._create()
            if p["state"] == "stopped" and not self.module.check_mode:
                inst = self._set_state(inst, "stopped")
        else:
            inst = self._update(inst)
        ready = inst.get("actual_status") == "running"
        left_preempted = self.preempted and p["state"] == "present"
        if (p["wait"] and not self.module.check_mode and p["state"] != "stopped"
                and inst.get("intended_status") != "stopped" and not ready and not left_preempted):
            inst = self._wait(inst)
            ready = True
        self.instance = inst
        return self._result_view(inst, ready)

    def absent(self):
        found = self._find_all()
        self.before = self._state_view(found[0] if found else None)
        for inst in found:
            self._destroy(inst)
        self.instance = None
        return self._result_view(None)


def define_module():
    argument_spec = dict(VAST_AUTH_SPEC)
    argument_spec.update(OFFER_FILTER_SPEC)
    argument_spec.update(
        name=dict(type="str", required=True),
        stack_id=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "started", "stopped", "absent"]),
        offer_id=dict(type="int"),
        max_offers=dict(type="int", default=3),
        bid=dict(type="bool", default=False),
        bid_price=dict(type="float"),
        image=dict(type="str"),
        args=dict(type="list", elements="str"),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        ports=dict(type="list", elements="int", default=[8000]),
        disk_gb=dict(type="int", default=20),
        onstart=dict(type="str"),
        entrypoint=dict(type="str"),
        https_ports=dict(type="list", elements="int", default=[]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=900),
        wait_sleep=dict(type="int", default=5),
    )
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                         mutually_exclusive=[("onstart", "entrypoint")])


def main():
    module = define_module()
    p = module.params
    if SEPARATOR in p["stack_id"] or not p["stack_id"]:
        module.fail_json(msg="stack_id must be set and must not contain %r" % SEPARATOR)
    if p["max_offers"] < 1:
        module.fail_json(msg="max_offers must be at least 1")
    if p["bid_price"] is not None and p["bid_price"] <= 0:
        module.fail_json(msg="bid_price must be positive")
    inst = VastInstance(module)
    try:
        result = inst.absent() if p["state"] == "absent" else inst.present()
    except CapacityError as exc:
        module.fail_json(msg="Vast.ai has no capacity for %s: %s" % (inst.label, exc.message),
                         capacity_error=True, error_code=exc.code, changed=False,
                         offers_tried=inst.offers_tried)
    except ApiError as exc:
        module.fail_json(msg="Vast.ai API call failed for instance %s: %s%s"
                         % (inst.label, exc, inst.cleanup_after_error()),
                         status_code=exc.status, error_code=exc.code, capacity_error=False,
                         offers_tried=inst.offers_tried)
    out = dict(changed=inst.changed, vast_instance=result)
    if inst.offers_tried:
        out["offers_tried"] = inst.offers_tried
    if inst.progress:
        out["progress"] = inst.progress[-50:]
    if module._diff:
        out["diff"] = dict(before=inst.before, after=inst._state_view(inst.instance))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
