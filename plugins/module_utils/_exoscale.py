# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's control server at Exoscale, through Exoscale's own SDK (``exoscale.api.v2.Client``).

``ExoscaleControl`` wraps an SDK client (its ``url`` option points it at another API base, such
as the test fake) and does what the control_server role needs: an SSH key registered under the
stack's name, a security group that lets in TCP on the SSH port and the proxy's public ports
only, an instance with the stack's label, each found by name (or label) before anything is
created; asynchronous operations are polled at ``/operation/{id}`` until they succeed; every
call is retried with backoff on 429 and 5xx (creates only on 429 and 503, answers that say the
request was not carried out). Every API error becomes an :class:`ExoscaleError` naming what was
being done and the API's own ``message``; neither the key nor the secret appears in one.

Exoscale labels only instances: the security group and the SSH key are found by name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.llmops.codestack.plugins.module_utils._http import Backoff

# Statuses that are retried: the API's rate limit and its server errors.
RETRY_READ = (429, 500, 502, 503, 504)
# A create is retried only when the answer says it was not carried out (a retried 500 could
# make a second instance).
RETRY_CREATE = (429, 503)
LABEL = "codestack-stack"

# The options every Exoscale module takes (plugins/doc_fragments/exoscale.py documents them).
AUTH_SPEC = dict(
    api_key=dict(type="str", no_log=True),
    api_secret=dict(type="str", no_log=True),
    api_url=dict(type="str"),
    zone=dict(type="str", default="ch-gva-2"),
)


def connect(module, client_class):
    """The SDK client for the module's credentials (options, else the environment), or one clear
    failure naming what is missing."""
    p = module.params
    key = p["api_key"] or os.environ.get("EXOSCALE_API_KEY")
    secret = p["api_secret"] or os.environ.get("EXOSCALE_API_SECRET")
    if not key or not secret:
        module.fail_json(msg="Exoscale needs EXOSCALE_API_KEY and EXOSCALE_API_SECRET (or api_key and api_secret)")
    url = p["api_url"] or os.environ.get("EXOSCALE_API_ENDPOINT") or None
    try:
        return client_class(key, secret, url=url) if url else client_class(key, secret, zone=p["zone"])
    except TypeError as exc:
        module.fail_json(msg="Exoscale: %s" % exc)


class ExoscaleError(Exception):
    """An Exoscale call failed; ``status`` is the HTTP status (0 without an answer)."""

    def __init__(self, message, status=0):
        super(ExoscaleError, self).__init__(message)
        self.status = status


def _status(exc):
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None), response


def api_message(response):
    """The ``message`` of an Exoscale error body (``{"message": ...}``), else its text."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return (getattr(response, "text", "") or "").strip()[:300]


def type_name(instance_type):
    """``standard.medium`` of an instance type object (family, size)."""
    return "%s.%s" % (instance_type.get("family"), instance_type.get("size"))


def wanted_rules(rules):
    """The ingress rules, one per (port, network): [{start-port, end-port, network, ...}]."""
    out = []
    for rule in rules:
        for network in rule["sources"]:
            out.append({"flow-direction": "ingress", "protocol": "tcp", "start-port": int(rule["port"]),
                        "end-port": int(rule["port"]), "network": network,
                        "description": rule.get("description") or ""})
    return out


def _rule_key(rule):
    return (rule.get("flow-direction"), rule.get("protocol"), rule.get("start-port"), rule.get("end-port"),
            rule.get("network"))


class ExoscaleControl:
    """The control server's resources at one Exoscale zone."""

    def __init__(self, client, retries=5, backoff=1.0, max_backoff=30.0, poll=2.0, sleep=time.sleep,
                 clock=time.monotonic, progress=None):
        self.client = client
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll = poll
        self._sleep = sleep
        self._clock = clock
        self.progress = progress or (lambda message: None)
        self.attempts = 0

    def call(self, what, operation, retry=RETRY_READ, missing_ok=False, **kwargs):
        """One SDK operation (``client.<operation>(**kwargs)``), retried on ``retry`` statuses and
        on connection errors (reads only). ``missing_ok``: a 404 answers None."""
        backoff = Backoff(self.retries, self.backoff, self.max_backoff, self._sleep)
        while True:
            self.attempts += 1
            try:
                return getattr(self.client, operation)(**kwargs)
            except Exception as exc:  # pylint: disable=broad-except
                status, response = _status(exc)
                if status == 404 and missing_ok:
                    return None
                if status is None and not _is_connection_error(exc):
                    raise
                retryable = (status in retry) if status is not None else retry is RETRY_READ
                if not retryable or backoff.exhausted():
                    if status is None:
                        raise ExoscaleError("Exoscale: cannot %s: no answer from the API (%s)" % (what, exc))
                    message = api_message(response)
                    if status in (401, 403):
                        message = "authentication failed, check EXOSCALE_API_KEY and EXOSCALE_API_SECRET (%s)" % message
                    raise ExoscaleError("Exoscale: cannot %s: HTTP %s: %s" % (what, status, message), status)
                wait = backoff.next_wait(status, getattr(response, "headers", None) or {})
                self.progress("Exoscale answered HTTP %s to %s; retrying in %.1f s" % (status, what, wait))
                backoff.pause(wait=wait)

    def wait_operation(self, operation, what, timeout):
        """Poll an asynchronous operation until it succeeds; returns it (``reference.id`` is the
        resource). A failed or timed-out operation, or ``timeout`` seconds, raise."""
        start = self._clock()
        while True:
            state = operation.get("state")
            if state == "success":
                return operation
            if state in ("failure", "timeout"):
                raise ExoscaleError("Exoscale: cannot %s: the operation %s ended in %s (%s%s)" % (
                    what, operation.get("id"), state, operation.get("reason") or "no reason",
                    (": " + operation["message"]) if operation.get("message") else ""))
            if state != "pending":
                raise ExoscaleError("Exoscale: cannot %s: the operation %s is in an unknown state %r"
                                    % (what, operation.get("id"), state))
            elapsed = self._clock() - start
            if elapsed + self.poll > timeout:
                raise ExoscaleError("Exoscale: cannot %s: its operation %s was still pending after %.0f s"
                                    % (what, operation.get("id"), elapsed))
            self._sleep(self.poll)
            operation = self.call("follow the operation of: " + what, "get_operation", id=operation["id"])

    # --- finding -------------------------------------------------------------------------

    def find_key(self, name):
        keys = self.call("list the SSH keys", "list_ssh_keys").get("ssh-keys") or []
        return next((k for k in keys if k.get("name") == name), None)

    def find_group(self, name):
        groups = self.call("list the security groups", "list_security_groups").get("security-groups") or []
        found = next((g for g in groups if g.get("name") == name), None)
        if found is None:
            return None
        return self.call("read security group %s" % name, "get_security_group", missing_ok=True, id=found["id"])

    def labelled_instances(self, labels):
        """Every instance whose labels include ``labels`` (filtered here: the API's label filter
        syntax is not documented)."""
        listed = self.call("list the instances", "list_instances").get("instances") or []
        return [i for i in listed if all((i.get("labels") or {}).get(k) == v for k, v in labels.items())]

    def find_instance(self, name, labels):
        return next((i for i in self.labelled_instances(labels) if i.get("name") == name), None)

    def instance_type(self, name):
        listed = self.call("list the instance types", "list_instance_types").get("instance-types") or []
        found = next((t for t in listed if type_name(t) == name), None)
        if found is None:
            raise ExoscaleError("Exoscale: no instance type %r (there are %s)" % (
                name, ", ".join(sorted(type_name(t) for t in listed if t.get("family") == "standard")) or "none"))
        return found

    def template(self, name):
        listed = self.call("list the public templates", "list_templates", visibility="public").get("templates") or []
        found = sorted((t for t in listed if t.get("name") == name), key=lambda t: t.get("created-at") or "")
        if not found:
            raise ExoscaleError("Exoscale: no public template named %r in this zone" % name)
        return found[-1]

    def get_instance(self, instance_id):
        return self.call("read instance %s" % instance_id, "get_instance", missing_ok=True, id=instance_id)

    # --- creating ------------------------------------------------------------------------

    def ensure_key(self, name, public_key, check_mode=False):
        """(changed, key). An existing key of that name is kept (Exoscale cannot update one)."""
        key = self.find_key(name)
        if key is not None or check_mode:
            return key is None, key or {"name": name}
        operation = self.call("register SSH key %s" % name, "register_ssh_key", retry=RETRY_CREATE,
                              name=name, public_key=public_key)
        self.wait_operation(operation, "register SSH key %s" % name, 120)
        return True, self.find_key(name) or {"name": name}

    def ensure_group(self, name, rules, check_mode=False):
        """(changed, group): the group with exactly the ingress rules ``wanted_rules(rules)``."""
        group = self.find_group(name)
        changed = False
        if group is None:
            if check_mode:
                return True, {"name": name, "rules": wanted_rules(rules)}
            operation = self.call("create security group %s" % name, "create_security_group", retry=RETRY_CREATE,
                                  name=name, description="codestack control server: SSH and the TLS ports only")
            operation = self.wait_operation(operation, "create security group %s" % name, 120)
            group = self.call("read security group %s" % name, "get_security_group",
                              id=operation["reference"]["id"])
            changed = True
        wanted = dict((_rule_key(r), r) for r in wanted_rules(rules))
        present = dict((_rule_key(r), r) for r in group.get("rules") or [])
        missing = [r for k, r in wanted.items() if k not in present]
        extra = [r for k, r in present.items() if k not in wanted]
        if check_mode:
            return changed or bool(missing or extra), group
        for rule in missing:
            operation = self.call("add a rule to security group %s" % name, "add_rule_to_security_group",
                                  retry=RETRY_CREATE, id=group["id"], **_kwargs(rule))
            self.wait_operation(operation, "add a rule to security group %s" % name, 120)
        for rule in extra:
            operation = self.call("remove a rule from security group %s" % name, "delete_rule_from_security_group",
                                  id=group["id"], rule_id=rule["id"])
            self.wait_operation(operation, "remove a rule from security group %s" % name, 120)
        if missing or extra:
            group = self.call("read security group %s" % name, "get_security_group", id=group["id"])
        return changed or bool(missing or extra), group

    def create_instance(self, name, labels, instance_type, template, disk_size, key_name, group_id, timeout):
        """Create the instance; returns it as soon as the create operation names it (the caller
        records it before waiting for it to run)."""
        type_id = self.instance_type(instance_type)["id"]
        template_id = self.template(template)["id"]
        what = "create instance %s" % name
        operation = self.call(what, "create_instance", retry=RETRY_CREATE, name=name, labels=dict(labels),
                              instance_type={"id": type_id}, template={"id": template_id},
                              disk_size=int(disk_size), ssh_keys=[{"name": key_name}],
                              security_groups=[{"id": group_id}], public_ip_assignment="inet4")
        operation = self.wait_operation(operation, what, timeout)
        return self.get_instance(operation["reference"]["id"])

    def wait_running(self, instance, timeout):
        """Poll the instance until it runs with a public address; returns it."""
        start = self._clock()
        while True:
            state = instance.get("state")
            if state == "running" and instance.get("public-ip"):
                return instance
            if state in ("error", "destroyed", "destroying", "expunging"):
                raise ExoscaleError("Exoscale: instance %s is %s, not starting" % (instance.get("name"), state))
            elapsed = self._clock() - start
            self.progress("instance %s is %s after %.0f s" % (instance.get("name"), state, elapsed))
            if elapsed + self.poll > timeout:
                raise ExoscaleError("Exoscale: instance %s was still %s after %.0f s (wait_timeout)"
                                    % (instance.get("name"), state, elapsed))
            self._sleep(self.poll)
            found = self.get_instance(instance["id"])
            if found is None:
                raise ExoscaleError("Exoscale: instance %s disappeared while starting" % instance.get("name"))
            instance = found

    # --- removing ------------------------------------------------------------------------

    def delete(self, kind, ident, timeout=300):
        """Delete an instance, a security group or an SSH key (its name); False when it was
        already gone."""
        operation_name, param = {"instance": ("delete_instance", "id"),
                                 "security_group": ("delete_security_group", "id"),
                                 "ssh_key": ("delete_ssh_key", "name")}[kind]
        what = "delete %s %s" % (kind.replace("_", " "), ident)
        operation = self.call(what, operation_name, missing_ok=True, **{param: ident})
        if operation is None:
            return False
        self.wait_operation(operation, what, timeout)
        return True


def _kwargs(rule):
    return dict((k.replace("-", "_"), v) for k, v in rule.items() if v not in (None, ""))


def _is_connection_error(exc):
    try:
        import requests  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - the SDK needs requests
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def summary(instance):
    """What the module returns of an instance."""
    if not instance:
        return {}
    return {"id": instance.get("id"), "name": instance.get("name"), "state": instance.get("state"),
            "public_ip": instance.get("public-ip"), "labels": instance.get("labels") or {},
            "instance_type": type_name(instance.get("instance-type") or {}) if (instance.get("instance-type") or {}).get("family") else None,
            "security_groups": [g.get("id") for g in instance.get("security-groups") or []],
            "ssh_keys": [k.get("name") for k in instance.get("ssh-keys") or []]}
