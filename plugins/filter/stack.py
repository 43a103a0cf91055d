# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between site.yml's stages.

``usable_alternatives`` drops the capacity fallbacks a run cannot use (no key for their
provider); ``gateway_endpoints`` turns what llmops.codestack.gpu_provision rented into the
endpoints the LiteLLM gateway routes to; ``stack_endpoints`` derives the same from the state file
alone (so the route stage runs by itself); ``stack_service`` reads a local service's record. Their documentation lives in the YAML files beside
this one.
"""

from __future__ import annotations

import json
import time

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.module_utils import _stack, _statefile


def usable_alternatives(deployments, providers):
    """The deployments with only the alternatives whose provider is in ``providers``."""
    if not isinstance(deployments, list):
        raise AnsibleFilterError("usable_alternatives: expected the plan's deployments (a list)")
    return _stack.usable_alternatives(deployments, providers)


def stack_endpoints(state, plan, local_api_key="", vllm_api_key=""):
    """{deployment: {api_base, api_key, model}} for the gateway, from the stack's state file."""
    try:
        return _stack.stack_endpoints(plan or {}, state or {}, local_api_key, vllm_api_key)
    except _stack.StackError as exc:
        raise AnsibleFilterError("stack_endpoints: %s" % exc)


def same_plan(previous, plan):
    """Whether ``previous`` (plan.json as read by slurp: base64, or text) plans the same stack as
    ``plan``: equal but for the time it was generated."""
    if not previous:
        return False
    try:
        old = _stack.decode_document(previous)
    except _stack.StackError:
        return False
    if not isinstance(old, dict) or not isinstance(plan, dict):
        return False
    return dict(old, generated_at=plan.get("generated_at")) == plan


def plan_document(text, path="plan.json"):
    """A reviewed plan.json's text as a plan, with one error naming the file when it is not one."""
    try:
        return _stack.parse_plan(text, path)
    except _stack.StackError as exc:
        raise AnsibleFilterError(str(exc))


def plan_storage(plan):
    """{deployment: {gb, running_gb, running_usd_per_gb_hour, stopped_usd_per_gb_hour}} from the plan."""
    if not isinstance(plan, dict):
        raise AnsibleFilterError("plan_storage: expected the plan (a mapping)")
    return _stack.plan_storage(plan)


def plan_clusters(plan):
    """{deployment: {usd_per_hour, idle_timeout_s}}: the plan's deployments on a user's cluster
    that have an internal hourly price (what the budget guard counts)."""
    if not isinstance(plan, dict):
        raise AnsibleFilterError("plan_clusters: expected the plan (a mapping)")
    return _stack.plan_clusters(plan)


def stack_model_servers(state):
    """[{deployment, url, model, id, provider}]: the rented model servers the state file lists."""
    return _stack.model_servers(state or {})


def stack_scaling(state, plan):
    """[{deployment, provider, kind, mode, idle_billing}]: how each deployment really scales."""
    return _stack.scaling_report(plan or {}, state or {})


def stack_waker(state, plan):
    """{deployment: settings} of the idle_stop pods and instances the waker keeps (roles/waker)."""
    try:
        return _stack.waker_deployments(plan or {}, state or {})
    except _stack.StackError as exc:
        raise AnsibleFilterError("stack_waker: %s" % exc)


def stack_state_merge(state, copies):
    """The controller's state document with what the control hosts' copies recorded since."""
    if isinstance(copies, dict):
        copies = [copies]
    try:
        return _statefile.merge(state or {}, list(copies or []))
    except _statefile.StateFileError as exc:
        raise AnsibleFilterError("stack_state_merge: %s" % exc)


def stack_state_hosts(state, known=None):
    """The control hosts that hold a copy of the state file, among ``known`` (inventory hosts)."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("stack_state_hosts: the state must be a dict (state.json), not %r" % (state,))
    return _statefile.copy_hosts(state, None if known is None else list(known))


def stack_created_servers(state):
    """The created control servers of the state file that joined the inventory."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("stack_created_servers: the state must be a dict (state.json), not %r" % (state,))
    return _statefile.created_servers(state)


def stack_summary(state, plan, directory):
    """The lines that end site.yml: where the plan, gateway, IDE and guard are, and teardown."""
    return _stack.summary(plan or {}, state or {}, directory)


def stack_would_create(plan, stage, host="localhost"):
    """What a stage would create in a check run on a stack not built yet (one line each)."""
    try:
        return _stack.check_report(plan or {}, stage, host)
    except _stack.StackError as exc:
        raise AnsibleFilterError(str(exc))


def stack_host_conflicts(results, own_dirs):
    """The other stacks' services that run on a control host: one line per active unit whose
    ExecStart lies outside this stack's directories (results of slurp + systemctl is-active)."""
    try:
        return _stack.host_conflicts(results or [], own_dirs or [])
    except _stack.StackError as exc:
        raise AnsibleFilterError(str(exc))


def stack_rendered_only(state, plan):
    """{alias: manifest dir} of the aliases served by a cluster deployment that was only rendered."""
    return _stack.rendered_only_aliases(plan or {}, state or {})


def stack_service(state, resource_id):
    """The attributes of the stack's local service ``resource_id`` (empty when not recorded)."""
    res = _stack.find_resource(state or {}, resource_id)
    return dict((res or {}).get("attributes") or {})


def stack_gateway_client(state, client_host="localhost"):
    """How a client on ``client_host`` (an inventory name; the controller is ``localhost``)
    reaches the stack's gateway: ``{url, api_base, ca_file, via}``.

    The gateway listens on its host's loopback. On that same host a client uses it directly
    (``via: loopback``). Anywhere else it goes through the reverse proxy recorded by expose.yml
    (``reverse-proxy`` with ``urls.gateway`` and, for the internal CA, ``ca_file`` on the
    controller; ``via: proxy``). Without a proxy the answer is ``via: none`` with an empty url
    (the gateway is not reachable from there), unless the gateway runs on the controller and the
    client is the controller. No gateway recorded: ``via: none`` too.
    """
    gateway = stack_service(state, "litellm")
    if not gateway.get("url") and not gateway.get("api_base"):
        return {"url": "", "api_base": "", "ca_file": "", "via": "none"}
    url = (gateway.get("url") or gateway["api_base"]).rstrip("/")
    url = url[:-3] if url.endswith("/v1") else url
    gateway_host = gateway.get("host") or "localhost"
    if gateway_host == (client_host or "localhost"):
        return {"url": url, "api_base": gateway.get("api_base") or url + "/v1", "ca_file": "", "via": "loopback"}
    proxy = stack_service(state, "reverse-proxy")
    proxied = ((proxy.get("urls") or {}).get("gateway") or "").rstrip("/")
    if proxied and (proxy.get("host") or "localhost") == gateway_host:
        return {"url": proxied, "api_base": proxied + "/v1", "ca_file": proxy.get("ca_file") or "", "via": "proxy"}
    return {"url": "", "api_base": "", "ca_file": "", "via": "none"}


def gateway_endpoints(results, api_key=""):
    """{deployment: {api_base, api_key, model}} for the gateway, from gpu_provision_results."""
    endpoints = {}
    for name, result in sorted((results or {}).items()):
        url = result.get("endpoint_url")
        if not url:
            raise AnsibleFilterError("gateway_endpoints: deployment %s has no endpoint URL yet (%s %s); "
                                     "wait for it before routing" % (name, result.get("provider"), result.get("id")))
        endpoints[name] = {"api_base": url, "api_key": _stack.endpoint_key(result, api_key),
                           "model": result.get("served_model_name") or name}
        if result.get("tls_ca_pem"):
            # the model server's own TLS: the gateway trusts this authority alone for the route
            endpoints[name]["ca_pem"] = result["tls_ca_pem"]
    return endpoints


def packages_missing(probe, packages):
    """The packages of ``packages`` to hand to the package manager, given ``probe``: the
    registered result of ``dpkg-query --show --showformat='${Package}\\t${db:Status-Abbrev}\\n'``
    run with those names. A name dpkg lists as installed (status ``ii``) is left out; every name
    is kept when the probe did not run or could not answer (a host without dpkg: rc other than
    0 or 1), and so is a name with a version or a wildcard, which only the package manager can
    judge. So a host whose packages are all there needs no package-manager run (which opens the
    package cache: 2-3 s on Debian), and any other host gets the run it got before."""
    if isinstance(packages, str):
        packages = [packages]
    if not isinstance(packages, (list, tuple)) or not all(isinstance(p, str) for p in packages):
        raise AnsibleFilterError("packages_missing: expected a list of package names, not %r" % (packages,))
    if not isinstance(probe, dict) or probe.get("skipped") or probe.get("rc") not in (0, 1):
        return list(packages)
    installed = set()
    for line in str(probe.get("stdout") or "").splitlines():
        name, _sep, status = line.partition("\t")
        if status.startswith("ii"):
            installed.add(name.strip())
    missing = []
    for name in packages:
        plain = name.split(":", 1)[0]
        if any(c in name for c in "=<>*?[") or plain not in installed:
            missing.append(name)
    return missing


def _probed_json(found):
    """The JSON document of a file ``host_probe`` read (its ``files.<name>`` entry), or None when
    the file is missing, too large or not JSON."""
    if not isinstance(found, dict) or not found.get("exists") or found.get("too_large"):
        return None
    try:
        return json.loads(found.get("content") or "")
    except ValueError:
        return None


def package_version(found):
    """The ``version`` of a package.json that ``host_probe`` read (its ``files.<name>`` entry),
    or '' when the file is missing, too large or not a JSON object with a version."""
    document = _probed_json(found)
    version = document.get("version") if isinstance(document, dict) else None
    return str(version) if isinstance(version, (str, int, float)) else ""


def vscode_extensions(found):
    """The extensions an extensions directory's ``extensions.json`` records, as ``id@version``
    strings in lower case (what ``code-server --list-extensions --show-versions`` prints, also
    lower-cased), from the ``files.<name>`` entry ``host_probe`` returned for that file. A missing,
    too large or unreadable manifest, or one that is not a JSON list, records nothing."""
    document = _probed_json(found)
    if not isinstance(document, list):
        return []
    refs = []
    for entry in document:
        if not isinstance(entry, dict):
            continue
        identifier = entry.get("identifier")
        ident = identifier.get("id") if isinstance(identifier, dict) else None
        version = entry.get("version")
        if isinstance(ident, str) and ident and isinstance(version, str) and version:
            ref = ("%s@%s" % (ident, version)).lower()
            if ref not in refs:
                refs.append(ref)
    return refs


def agent_model_limits(plan, aliases, overrides=None, output_share=0.25, output_max=16384):
    """{alias: {context, output}} the coding agents' configurations declare per gateway model."""
    try:
        return _stack.agent_model_limits(plan or {}, aliases, overrides, output_share, output_max)
    except _stack.StackError as exc:
        raise AnsibleFilterError(str(exc))


def extension_retry_wait(found, ref, retry_after, now=None):
    """Seconds until the extension gallery is tried again for ``ref`` (0: try now), from the
    ``files.<name>`` entry host_probe returned for the role's deferral record (JSON ``{ref, at}``,
    written when the gallery was unreachable). No record, another extension, a record that
    cannot be read or ``retry_after`` 0 give 0."""
    try:
        retry_after = int(retry_after)
    except (TypeError, ValueError):
        raise AnsibleFilterError("extension_retry_wait: retry_after must be a number of seconds, not %r" % (retry_after,))
    record = _probed_json(found)
    if retry_after <= 0 or not isinstance(record, dict) or str(record.get("ref", "")).lower() != str(ref).lower():
        return 0
    try:
        at = float(record.get("at"))
    except (TypeError, ValueError):
        return 0
    now = time.time() if now is None else float(now)
    if at > now:  # a clock set back: try now
        return 0
    return max(0, int(round(at + retry_after - now)))


def node_links(targets, prefix, link_dir, system_bin=""):
    """The links ``host_files`` makes in ``link_dir`` for node, npm and npx, from ``targets``
    (name to what it runs): a path inside ``prefix`` becomes relative to ``link_dir`` (a direct
    child of ``prefix``), so that the prefix can be moved or mounted elsewhere; another absolute
    path stays as it is; a bare command name is looked up in ``system_bin`` (where the system's
    npm lives)."""
    if not isinstance(targets, dict):
        raise AnsibleFilterError("node_links: expected a mapping of name to target, not %r" % (targets,))
    prefix = str(prefix).rstrip("/")
    links = []
    for name, target in targets.items():
        target = str(target)
        if target.startswith(prefix + "/"):
            src = "../" + target[len(prefix) + 1:]
        elif target.startswith("/"):
            src = target
        elif system_bin:
            src = str(system_bin).rstrip("/") + "/" + target
        else:
            raise AnsibleFilterError("node_links: %s runs %r, but no directory of system commands was given"
                                     % (name, target))
        links.append({"dest": str(link_dir).rstrip("/") + "/" + str(name), "src": src})
    return links


def links_in_place(links, probed):
    """Whether every link of ``links`` (``host_files`` entries, ``{dest, src}``) is on the host
    already: ``probed`` is the ``paths`` part of a ``host_probe`` result that looked at each
    ``dest``, and each must be a link whose target is ``src``. A link the probe did not look at
    counts as missing, so the caller writes it."""
    if not isinstance(links, (list, tuple)) or not all(isinstance(link, dict) and "dest" in link and "src" in link
                                                       for link in links):
        raise AnsibleFilterError("links_in_place: expected a list of {dest, src} entries, not %r" % (links,))
    if not isinstance(probed, dict):
        return False
    by_path = dict((entry.get("path"), entry) for entry in probed.values() if isinstance(entry, dict))
    for link in links:
        entry = by_path.get(str(link["dest"]))
        if not entry or not entry.get("islink") or entry.get("target") != str(link["src"]):
            return False
    return True


def file_in_place(probed, path, content, mode, owner, group):
    """Whether ``host_probe`` found the file ``host_files`` would write at ``path`` already
    there as it would write it: ``probed`` is the probe's entry for that path (a ``files``
    entry), which must name ``path``, exist, and have this ``content``, ``mode`` (octal
    string), ``owner`` and ``group``. Anything else, a probe of another path or none, counts as
    not in place, so the caller writes it."""
    if not isinstance(probed, dict):
        return False
    return (probed.get("path") == str(path) and bool(probed.get("exists")) and not probed.get("too_large")
            and probed.get("content") == str(content)
            and [probed.get("mode"), probed.get("owner"), probed.get("group")] == [str(mode), str(owner), str(group)])


class FilterModule(object):
    def filters(self):
        return {"usable_alternatives": usable_alternatives, "gateway_endpoints": gateway_endpoints,
                "stack_endpoints": stack_endpoints, "stack_service": stack_service,
                "stack_gateway_client": stack_gateway_client,
                "same_plan": same_plan, "plan_document": plan_document,
                "stack_model_servers": stack_model_servers, "stack_scaling": stack_scaling,
                "stack_summary": stack_summary, "stack_would_create": stack_would_create,
                "stack_host_conflicts": stack_host_conflicts, "stack_waker": stack_waker,
                "stack_state_merge": stack_state_merge,
                "stack_state_hosts": stack_state_hosts,
                "stack_created_servers": stack_created_servers,
                "plan_storage": plan_storage, "plan_clusters": plan_clusters,
                "stack_rendered_only": stack_rendered_only, "packages_missing": packages_missing,
                "node_links": node_links, "links_in_place": links_in_place, "file_in_place": file_in_place,
                "package_version": package_version,
                "vscode_extensions": vscode_extensions, "agent_model_limits": agent_model_limits,
                "extension_retry_wait": extension_retry_wait}
