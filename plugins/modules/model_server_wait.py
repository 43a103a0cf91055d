#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: model_server_wait
short_description: Wait until an OpenAI-compatible model server answers and exports its metrics
version_added: 0.1.0
description:
  - Polls C(/v1/models) of a model server (vLLM, llama.cpp, LiteLLM) until it lists O(model), then
    C(/metrics) until every series of O(metrics_required) is exported.
  - With O(systemd_unit), the unit is watched while waiting. When it dies or enters a restart loop
    while the model loads, the module fails at once with the last O(log_lines) lines of the
    unit's journal instead of waiting for the timeout; the same lines come with a timeout.
  - A wrong API key (HTTP 401 or 403) fails at once.
  - Runs on the host that serves the model; nothing is waited for in check mode.
author:
  - llmops.codestack maintainers (@llmops)
extends_documentation_fragment:
  - llmops.codestack.wait
attributes:
  check_mode:
    support: full
    description: Nothing is probed in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
options:
  url:
    description:
      - Base URL of the server, without C(/v1), for example V(http://127.0.0.1:8000).
    type: str
    required: true
  api_key:
    description:
      - Bearer token of the server, if it requires one.
    type: str
  model:
    description:
      - Model name that C(/v1/models) must list (the served model name). Any model will do when
        omitted.
    type: str
  models_path:
    description:
      - Path of the model list.
    type: str
    default: /v1/models
  metrics_path:
    description:
      - Path of the Prometheus metrics. Set to an empty string to skip the metrics check.
    type: str
    default: /metrics
  metrics_required:
    description:
      - Metric names that must be exported before the server counts as ready, for example
        V(vllm:num_requests_running). A histogram or counter matches through its
        C(_bucket), C(_count), C(_sum), C(_total) or C(_created) series.
    type: list
    elements: str
    default: []
  systemd_unit:
    description:
      - Name of the systemd unit that runs the server. When given, the module fails as soon as
        the unit fails, stops or restarts, with the end of its journal.
    type: str
  log_lines:
    description:
      - Number of journal lines returned when the server dies or the wait times out.
    type: int
    default: 40
  ca_path:
    description:
      - CA certificate (PEM) that an C(https://) server's certificate must chain to, instead of
        the system store, for example the private authority of a Vast.ai instance serving its own TLS
        (C(tls_ca_file) of the P(llmops.codestack.gpu_provision#role) results).
    type: path
  request_timeout:
    description:
      - Seconds allowed for one HTTP request.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Wait for vLLM to load the coder model (up to 15 minutes)
  llmops.codestack.model_server_wait:
    url: http://127.0.0.1:8000
    api_key: "{{ vllm_api_key }}"
    model: coder
    metrics_required:
      - vllm:num_requests_running
      - vllm:num_requests_waiting
      - vllm:kv_cache_usage_perc
    systemd_unit: vllm-coder.service
    wait_timeout: 900
  no_log: false

- name: Probe a llama.cpp server once, without waiting
  llmops.codestack.model_server_wait:
    url: http://127.0.0.1:8001
    metrics_path: ""
    wait: false
"""

RETURN = r"""
model_server:
  description: What the server answered.
  returned: success, not in check mode
  type: dict
  contains:
    url:
      description: The base URL that was probed.
      type: str
      sample: http://127.0.0.1:8000
    models:
      description: Model ids listed by C(/v1/models).
      type: list
      elements: str
      sample: [coder]
    metrics:
      description: The required metric names that were found.
      type: list
      elements: str
      sample: [vllm:num_requests_running]
    elapsed:
      description: Seconds spent waiting.
      type: float
      sample: 47.3
progress:
  description:
    - What the server said while it was waited for, one line per change, C(<seconds>s) then the
      status (connection refused while the container starts, errors while vLLM loads, model not
      listed, metrics missing, ready). Also returned on failure; the last line is the last status seen.
  returned: always, except in check mode
  type: list
  elements: str
  sample: ["0s: cannot reach https://203.0.113.7:40011: [Errno 111] Connection refused", "52s: ready"]
last_status:
  description: The last status seen, when the wait timed out.
  returned: failure
  type: str
log_lines:
  description: The last lines of the unit's journal.
  returned: failure, when O(systemd_unit) is set
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient
from ansible_collections.llmops.codestack.plugins.module_utils._wait import WaitTimeout, wait_for

_SUFFIXES = ("", "_bucket", "_count", "_sum", "_total", "_created")


def metric_names(text):
    """Names of the series in a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        end = len(line)
        for sep in ("{", " "):
            pos = line.find(sep)
            if pos != -1:
                end = min(end, pos)
        names.add(line[:end])
    return names


def missing_metrics(names, required):
    return [r for r in required if not any(r + s in names for s in _SUFFIXES)]


class UnitDied(Exception):
    pass


class ModelServerWait:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = HttpClient(self.params["url"], token=self.params["api_key"],
                                 timeout=self.params["request_timeout"], retries=0,
                                 ca_path=self.params["ca_path"])
        self._restarts = None
        self.progress = []

    def _progress(self, seen, elapsed):
        """Keep one line per change of what the server says (connection refused, loading, ...)."""
        what = "ready" if seen["ready"] else (seen["error"] or "not ready")
        if what.startswith("cannot reach "):
            # the container is up but its server is not: one status, however the socket ends
            lowered = what.lower()
            if "refused" in lowered:
                what = "not listening yet (connection refused)"
            elif "reset" in lowered or "eof" in lowered or "closed" in lowered:
                what = "port open, model server not answering yet (connection closed)"
        if not self.progress or self.progress[-1][1] != what:
            self.progress.append((round(elapsed, 1), what))
            self.module.log("model_server_wait %s: %.0fs: %s" % (self.params["url"], elapsed, what))

    def progress_lines(self):
        return ["%.0fs: %s" % item for item in self.progress[-50:]]

    def _unit_state(self):
        unit = self.params["systemd_unit"]
        rc, out, err = self.module.run_command(
            ["systemctl", "show", unit, "--property=ActiveState,SubState,NRestarts,Result"])
        if rc != 0:
            self.module.fail_json(msg="cannot read the state of %s: %s" % (unit, err.strip()))
        state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        state["NRestarts"] = int(state.get("NRestarts") or 0)
        return state

    def journal(self):
        unit = self.params["systemd_unit"]
        if not unit:
            return []
        rc, out, dummy = self.module.run_command(
            ["journalctl", "--unit", unit, "--lines", str(self.params["log_lines"]),
             "--no-pager", "--output", "cat"])
        return out.splitlines() if rc == 0 else []

    def _check_unit(self):
        if not self.params["systemd_unit"]:
            return
        state = self._unit_state()
        if self._restarts is None:
            self._restarts = state["NRestarts"]
        dead = (state.get("ActiveState") in ("failed", "inactive")
                or state.get("SubState") == "auto-restart"
                or state["NRestarts"] > self._restarts)
        if dead:
            raise UnitDied("%s stopped while the model was loading (state %s/%s, result %s)" % (
                self.params["systemd_unit"], state.get("ActiveState"), state.get("SubState"),
                state.get("Result")))

    def probe(self):
        """One look at the server: returns a dict with ``ready`` and what was seen."""
        self._check_unit()
        seen = {"ready": False, "models": [], "metrics": [], "error": None}
        try:
            body = self.client.request("GET", self.params["models_path"])
        except ApiError as exc:
            if exc.status in (401, 403):
                raise
            seen["error"] = str(exc)
            return seen
        data = body.get("data") if isinstance(body, dict) else None
        seen["models"] = [m.get("id") for m in data or [] if isinstance(m, dict)]
        model = self.params["model"]
        if not seen["models"] or (model and model not in seen["models"]):
            seen["error"] = "model %s not listed yet (listed: %s)" % (
                model or "(any)", ", ".join(seen["models"]) or "none")
            return seen
        if self.params["metrics_path"]:
            try:
                body = self.client.request("GET", self.params["metrics_path"])
            except ApiError as exc:
                if exc.status in (401, 403):
                    raise
                seen["error"] = "metrics: %s" % exc
                return seen
            text = body.get("raw", "") if isinstance(body, dict) else ""
            missing = missing_metrics(metric_names(text), self.params["metrics_required"])
            if missing:
                seen["error"] = "metrics not exported yet: %s" % ", ".join(missing)
                return seen
            seen["metrics"] = list(self.params["metrics_required"])
        seen["ready"] = True
        return seen

    def run(self):
        start = time.monotonic()
        timeout = self.params["wait_timeout"] if self.params["wait"] else 0
        try:
            seen = wait_for(self.probe, lambda s: s["ready"], timeout=timeout,
                            sleep=self.params["wait_sleep"], what="the model server",
                            progress=self._progress)
        except UnitDied as exc:
            self.module.fail_json(msg="%s; last log lines:\n%s" % (exc, "\n".join(self.journal())),
                                  log_lines=self.journal(), progress=self.progress_lines())
        except WaitTimeout as exc:
            last = exc.last or {}
            self.module.fail_json(
                msg="%s at %s (last: %s)" % (exc, self.params["url"], last.get("error")),
                log_lines=self.journal(), last_status=last.get("error"),
                progress=self.progress_lines())
        except ApiError as exc:
            self.module.fail_json(msg="the model server refused the API key: %s" % exc,
                                  status_code=exc.status)
        return {"url": self.params["url"], "models": seen["models"], "metrics": seen["metrics"],
                "elapsed": round(time.monotonic() - start, 1)}


def define_module():
    return AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            api_key=dict(type="str", no_log=True),
            model=dict(type="str"),
            models_path=dict(type="str", default="/v1/models"),
            metrics_path=dict(type="str", default="/metrics"),
            metrics_required=dict(type="list", elements="str", default=[]),
            systemd_unit=dict(type="str"),
            log_lines=dict(type="int", default=40),
            ca_path=dict(type="path"),
            request_timeout=dict(type="int", default=10),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
            wait_sleep=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )


def main():
    module = define_module()
    if module.check_mode:
        module.exit_json(changed=False, msg="not probed in check mode")
    waiter = ModelServerWait(module)
    result = waiter.run()
    module.exit_json(changed=False, model_server=result, progress=waiter.progress_lines())


if __name__ == "__main__":
    main()
