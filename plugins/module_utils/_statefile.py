# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading and writing a stack's state file (state.json), shared by the ``stack_state`` module and
the waker service (roles/waker), so both record resources the same way.

One JSON document per stack: ``resources`` (live, each keyed by provider, kind and id) and
``removed`` (what was removed, with ``removed_at``). Written atomically, mode 0600; never a
secret. Pure functions that raise :class:`StateFileError`; only the module calls ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import json
import os
import tempfile

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


# The options of the stack_state module, and of its action plugin (one spec, so they cannot drift).
ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    stack_id=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "stopped", "absent"]),
    provider=dict(type="str", required=True),
    kind=dict(type="str", required=True),
    resource_id=dict(type="str", required=True),
    name=dict(type="str"),
    cost_per_hour=dict(type="float", default=0.0),
    attributes=dict(type="dict", default={}),
)


class StateFileError(Exception):
    """The state file cannot be read or written, or belongs to another stack."""


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read(path, stack_id):
    if not os.path.exists(path):
        return {"stack_id": stack_id, "resources": [], "removed": [], "updated_at": None}
    try:
        with open(path) as handle:
            doc = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise StateFileError("cannot read stack state file %s: %s" % (path, exc))
    if doc.get("stack_id") != stack_id:
        raise StateFileError("state file %s belongs to stack %r, not %r" % (path, doc.get("stack_id"), stack_id))
    doc.setdefault("resources", [])
    doc.setdefault("removed", [])
    return doc


def write(path, doc):
    doc["updated_at"] = now()
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".stack-state-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except (IOError, OSError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise StateFileError("cannot write stack state file %s: %s" % (path, exc))


@contextlib.contextmanager
def locked(path):
    """Hold the state file's lock (``flock`` on ``<path>.lock``, 0600) for one read-change-write:
    on a control host the waker and the budget guard's teardown both rewrite the host's copy, and
    each change must start from the other's last write. Every writer through this module takes it."""
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except (IOError, OSError) as exc:
        raise StateFileError("cannot lock stack state file %s: %s" % (path, exc))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def find(doc, key):
    """(index, entry) of the resource with key (provider, kind, id), or (None, None)."""
    for index, entry in enumerate(doc["resources"]):
        if (entry["provider"], entry["kind"], entry["id"]) == tuple(key):
            return index, entry
    return None, None


def entry(provider, kind, resource_id, name, cost_per_hour, attributes, current=None):
    """The record of a resource; ``created_at`` is kept from ``current``."""
    stamp = now()
    record = {"provider": provider, "kind": kind, "id": resource_id, "name": name,
              "cost_per_hour": float(cost_per_hour), "attributes": attributes,
              "created_at": current["created_at"] if current else stamp, "updated_at": stamp}
    # A resumed machine (the waker's start after an idle stop): its stop becomes an interval,
    # so that the budget guard and teardown count running hours only while it ran.
    intervals = list((current or {}).get("stopped_intervals") or [])
    if current and current.get("stopped_at"):
        intervals.append([current["stopped_at"], stamp])
    if intervals:
        record["stopped_intervals"] = intervals
    return record


def same(current, desired):
    def strip(item):
        return dict((k, v) for k, v in item.items() if k not in ("updated_at", "created_at"))
    return current is not None and strip(current) == strip(desired)


def apply(doc, state, key, desired=None):
    """Change ``doc`` in place: ``present`` (record ``desired``), ``stopped`` (mark the recorded
    resource stopped from now) or ``absent`` (move it to ``removed``). Returns (changed,
    before, after)."""
    index, current = find(doc, key)
    if state == "stopped":
        if current is None:
            raise StateFileError("resource %s/%s/%s is not recorded; nothing to mark stopped" % tuple(key))
        after = dict(current)
        if not after.get("stopped_at"):
            after["stopped_at"] = now()
            after["updated_at"] = after["stopped_at"]
        doc["resources"][index] = after
        return after != current, current, after
    if state == "present":
        changed = not same(current, desired)
        after = desired if changed else current
        if changed:
            if current is None:
                doc["resources"].append(desired)
            else:
                doc["resources"][index] = desired
        return changed, current, after
    if current is None:
        return False, None, None
    del doc["resources"][index]
    doc["removed"].append(dict(current, removed_at=now()))
    return True, current, None


def update(path, stack_id, state, key, desired_fn=None):
    """Read, apply one change and write ``path``; ``desired_fn(current)`` builds the record for
    ``present``. Returns the record after the change (None when absent)."""
    with locked(path):
        doc = read(path, stack_id)
        _index, current = find(doc, key)
        desired = desired_fn(current) if desired_fn else None
        changed, _before, after = apply(doc, state, key, desired)
        if changed:
            write(path, doc)
    return after


def record(params, check_mode=False, diff=False):
    """What llmops.codestack.stack_state does with its (validated) ``params``: the result dict
    (``changed``, ``stack_state``, ``diff`` when asked); writes unless ``check_mode``."""
    key = (params["provider"], params["kind"], params["resource_id"])
    # check mode writes nothing, not even the lock file
    with (contextlib.nullcontext() if check_mode else locked(params["path"])):
        doc = read(params["path"], params["stack_id"])
        _index, current = find(doc, key)
        desired = (entry(params["provider"], params["kind"], params["resource_id"], params["name"],
                         params["cost_per_hour"], params["attributes"], current)
                   if params["state"] == "present" else None)
        changed, current, after = apply(doc, params["state"], key, desired)
        if changed and not check_mode:
            write(params["path"], doc)
    result = {"changed": changed, "stack_state": doc}
    if diff:
        result["diff"] = {"before": current or {}, "after": after or {}}
    return result


def _key(item):
    return (item.get("provider"), item.get("kind"), str(item.get("id")))


def last_change(item):
    """The latest stamp a record carries (its update, its stop, the end of its last stopped
    interval, its removal): which of two copies of a record is the newer one. The stamps are
    ``now()``'s ISO 8601 UTC strings, which sort as they are."""
    stamps = [item.get("updated_at"), item.get("created_at"), item.get("stopped_at"), item.get("removed_at")]
    stamps += [end for _start, end in (item.get("stopped_intervals") or [])]
    return max([s for s in stamps if s] or [""])


def merge(doc, others):
    """``doc`` (the controller's state file) with what each of ``others`` (the copies on control
    hosts, which the waker and the budget guard there rewrite) recorded since: a new document,
    the inputs untouched.

    By resource key (provider, kind, id): a record only a copy lists is added (a pod the waker
    deployed to replace one whose resume was refused), unless ``doc`` lists it as removed; a
    record both list is the newer of the two (``last_change``; ``doc``'s on a tie); a record a
    copy lists as removed after ``doc``'s last change to it moves to ``removed`` (the pod that
    replacement terminated). What only ``doc`` lists stays. Raises StateFileError for a copy of
    another stack."""
    merged = json.loads(json.dumps(doc))
    merged.setdefault("resources", [])
    merged.setdefault("removed", [])
    for other in others:
        if not other:
            continue
        if other.get("stack_id") != merged.get("stack_id"):
            raise StateFileError("a copy of stack %r cannot be merged into stack %r's state"
                                 % (other.get("stack_id"), merged.get("stack_id")))
        removed = set((_key(item), item.get("removed_at")) for item in merged["removed"])
        removed_keys = set(key for key, _stamp in removed)
        for item in other.get("removed") or []:
            key = _key(item)
            index = next((i for i, res in enumerate(merged["resources"]) if _key(res) == key), None)
            if index is not None and item.get("removed_at", "") >= last_change(merged["resources"][index]):
                del merged["resources"][index]
            elif index is not None:
                continue   # recorded again since (a re-run's provision): the live record stays
            if (key, item.get("removed_at")) not in removed:
                merged["removed"].append(json.loads(json.dumps(item)))
                removed.add((key, item.get("removed_at")))
                removed_keys.add(key)
        for item in other.get("resources") or []:
            key = _key(item)
            index = next((i for i, res in enumerate(merged["resources"]) if _key(res) == key), None)
            if index is None:
                gone = [r for r in merged["removed"] if _key(r) == key]
                if key in removed_keys and max(r.get("removed_at", "") for r in gone) >= last_change(item):
                    continue
                merged["resources"].append(json.loads(json.dumps(item)))
            elif last_change(item) > last_change(merged["resources"][index]):
                merged["resources"][index] = json.loads(json.dumps(item))
        stamps = [s for s in (merged.get("updated_at"), other.get("updated_at")) if s]
        merged["updated_at"] = max(stamps) if stamps else None
    return merged


# The local services that work from a control host's copy of the state file.
COPY_READERS = ("waker", "budget-guard")
SERVER_PROVIDERS = ("hetzner", "exoscale")


def copy_hosts(doc, known=None):
    """The control hosts that hold a copy of the state file (the hosts of its waker and budget
    guard records, not the controller), in order, each once; only those in ``known`` (the
    inventory's hosts) when it is given."""
    hosts = []
    for res in (doc or {}).get("resources") or []:
        if not isinstance(res, dict) or res.get("provider") != "local" or res.get("id") not in COPY_READERS:
            continue
        host = (res.get("attributes") or {}).get("host")
        if host and host != "localhost" and host not in hosts and (known is None or host in known):
            hosts.append(host)
    return hosts


def created_servers(doc):
    """The created control servers the state file records (Hetzner, Exoscale) that joined the
    inventory (``attributes.inventory_name``)."""
    return [res for res in (doc or {}).get("resources") or []
            if isinstance(res, dict) and res.get("kind") == "server" and res.get("provider") in SERVER_PROVIDERS
            and (res.get("attributes") or {}).get("inventory_name")]
