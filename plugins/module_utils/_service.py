# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to run a service: its control script and systemd unit, and writing files in place.

``ctl_script(svc)`` and ``systemd_unit(svc)`` render what the roles' ``ctl.sh.j2`` and
``unit.service.j2`` rendered (one copy instead of one per role); ``svc`` holds ``name``,
``description``, ``dir``, ``log``, ``argv``, ``restart_delay``, ``stop_timeout`` and ``user``.
``split_files`` is the controller side of run_service and host_files (``src`` read, secrets set
apart); ``FileSet`` their host side: directories, links and files compared, then changed only
where they differ, each file written atomically by ``write_file`` with the mode and owner asked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible.module_utils.common.text.converters import to_text

try:
    from shlex import quote
except ImportError:  # pragma: no cover - Python 2
    from pipes import quote  # pylint: disable=deprecated-module

MANAGED = "# Ansible managed: llmops.codestack.run_service"

_CTL = r"""#!/usr/bin/env bash
%(managed)s
# Runs %(name)s where systemd is not PID 1 (containers, sandboxes, CI):
#   ctl.sh start     detach a supervisor (own session) that restarts the server when it exits
#   ctl.sh stop      stop the supervisor and the server (TERM, then KILL after %(stop_timeout)ss)
#   ctl.sh restart   stop, then start
#   ctl.sh status    exit 0 when running, 3 when not (LSB)
#   ctl.sh run       the server in the foreground (what the systemd unit starts)
set -u
SELF=%(self_q)s
PIDFILE=%(pidfile_q)s
LOG=%(log_q)s
ENVFILE=%(envfile_q)s
CMD=(%(cmd)s)

run() {
  if [ -f "$ENVFILE" ]; then set -a; . "$ENVFILE"; set +a; fi
  cd %(dir_q)s && exec "${CMD[@]}"
}

supervise() {
  echo $$ > "$PIDFILE"
  stopping=0
  child=
  trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
  while [ "$stopping" = 0 ]; do
    "$SELF" run &
    child=$!
    wait "$child"
    rc=$?
    if [ "$stopping" = 1 ]; then wait "$child" 2>/dev/null; break; fi
    echo "$(date -u +%%FT%%TZ) %(name)s exited (rc=$rc), restarting in %(restart_delay)ss"
    sleep %(restart_delay)s &
    wait $!
  done
  rm -f "$PIDFILE"
}

status() {
  [ -f "$PIDFILE" ] || return 3
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 3
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 3
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$SELF supervise" || return 3
  return 0
}

start() {
  status && return 0
  setsid "$SELF" supervise >> "$LOG" 2>&1 < /dev/null &
  for _ in $(seq 50); do status && return 0; sleep 0.1; done
  echo "%(name)s: supervisor did not start, see $LOG" >&2
  return 1
}

stop() {
  status || { rm -f "$PIDFILE"; return 0; }
  pid=$(cat "$PIDFILE")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq %(stop_ticks)s); do
    kill -0 -- "-$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) status ;;
  run) run ;;
  supervise) supervise ;;
  *) echo "usage: $0 start|stop|restart|status|run" >&2; exit 2 ;;
esac
"""

_UNIT = """%(managed)s
[Unit]
Description=%(description)s
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=%(dir)s/ctl.sh run
Restart=on-failure
RestartSec=%(restart_delay)s
TimeoutStopSec=%(stop_timeout)s
%(user_line)sStandardOutput=append:%(log)s
StandardError=append:%(log)s

[Install]
WantedBy=multi-user.target
"""

REQUIRED = ("name", "dir", "log", "argv")


def _check(svc):
    missing = [key for key in REQUIRED if not svc.get(key)]
    if missing:
        raise ValueError("a service needs %s" % ", ".join(missing))
    if "\n" in svc["name"] or "/" in svc["name"]:
        raise ValueError("service name %r: no slash or newline" % svc["name"])


def ctl_script(svc):
    """The supervisor script ``<dir>/ctl.sh`` of a service (start, stop, restart, status, run)."""
    _check(svc)
    directory = svc["dir"]
    return _CTL % dict(
        managed=MANAGED,
        name=svc["name"],
        stop_timeout=int(svc.get("stop_timeout", 10)),
        stop_ticks=int(svc.get("stop_timeout", 10)) * 10,
        restart_delay=int(svc.get("restart_delay", 5)),
        self_q=quote(directory + "/ctl.sh"),
        pidfile_q=quote(directory + "/supervisor.pid"),
        log_q=quote(svc["log"]),
        envfile_q=quote(directory + "/env"),
        dir_q=quote(directory),
        cmd="".join(quote(str(arg)) + " " for arg in svc["argv"]),
    )


def systemd_unit(svc):
    """The systemd unit of a service: ``ctl.sh run`` in the foreground, restarted on failure."""
    _check(svc)
    return _UNIT % dict(
        managed=MANAGED,
        description=svc.get("description") or svc["name"],
        dir=svc["dir"],
        restart_delay=int(svc.get("restart_delay", 5)),
        stop_timeout=int(svc.get("stop_timeout", 10)),
        user_line=("User=%s\n" % svc["user"]) if svc.get("user") else "",
        log=svc["log"],
    )


def split_files(entries, read_src):
    """Controller side of run_service and host_files: each entry's ``src`` replaced by its
    content (``read_src(src)``), the entries split into (plain, secret) so that the secret ones
    can travel in a ``no_log`` argument. Raises ValueError naming the bad entry."""
    plain, secret = [], []
    for entry in entries:
        entry = dict(entry)
        if not entry.get("dest"):
            raise ValueError("every file needs a dest")
        if entry.get("src") is not None:
            if entry.get("content") is not None:
                raise ValueError("%s has both src and content" % entry["dest"])
            entry["content"] = read_src(entry.pop("src"))
        elif entry.get("content") is None:
            raise ValueError("%s needs src or content" % entry["dest"])
        entry["content"] = to_text(entry["content"])
        (secret if entry.get("secret") else plain).append(entry)
    return plain, secret


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except (IOError, OSError):
        return None


def file_state(path):
    """(text or None, mode or None, uid or None) of ``path``."""
    text = read_text(path)
    if text is None:
        return None, None, None
    info = os.stat(path)
    return text, info.st_mode & 0o7777, info.st_uid


def write_file(path, content, mode, uid=None, gid=None):
    """Write ``content`` to ``path`` atomically (temporary file in the same directory, then
    rename), with ``mode`` and, when given, owner ``uid`` and group ``gid``."""
    directory = os.path.dirname(path) or "."
    handle, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode("utf-8", "surrogateescape"))
        os.chmod(tmp, mode)
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _merge_json(old, content):
    """``content`` (a JSON object) over the JSON object in ``old`` (kept keys the content does
    not name), as Ansible's ``to_nice_json(indent=2)`` writes it. An empty, missing or
    unparsable file, or one that holds no object, counts as ``{}``."""
    try:
        current = json.loads(old) if old and old.strip() else {}
    except ValueError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    wanted = json.loads(content)
    if not isinstance(wanted, dict):
        raise ValueError("json_merge needs a JSON object as content")
    current.update(wanted)
    return json.dumps(current, indent=2, sort_keys=True, separators=(",", ": "))


class FileSet(object):
    """Directories, links and files put right on the host in one pass: each is compared first
    and changed only where it differs (content, mode, owner, group, link target), in check mode
    only reported. ``uid``/``gid`` (or None) are the owner of the entries marked ``owned``.
    With ``own_parents``, directories created on the way get the entry's owner and mode too,
    as ``ansible.builtin.file`` does; otherwise they are root's, mode 0755.

    After the calls, ``written`` lists what changed (directories end in ``/``, links in
    `` -> target``), ``diff`` the before/after of every changed file not marked secret and
    ``restart`` whether a changed file was marked ``restart``."""

    def __init__(self, check_mode=False, want_diff=False, uid=None, gid=None, own_parents=False):
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.uid = uid
        self.gid = gid
        self.own_parents = own_parents
        self.written = []
        self.diff = []
        self.restart = False

    def _owner(self, owned):
        return (self.uid, self.gid) if owned else (None, None)

    def _needs_owner(self, info, uid, gid):
        return (uid is not None and info.st_uid != uid) or (gid is not None and info.st_gid != gid)

    def _makedirs(self, path, mode, uid, gid):
        """Create ``path`` and its missing parents (the parents with the same owner and mode
        when ``own_parents``)."""
        missing = []
        head = path
        while head and head != os.path.dirname(head) and not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        for directory in reversed(missing):
            parent_owned = directory == path or self.own_parents
            os.mkdir(directory, mode if parent_owned else 0o755)
            os.chmod(directory, mode if parent_owned else 0o755)
            if parent_owned and (uid is not None or gid is not None):
                os.chown(directory, -1 if uid is None else uid, -1 if gid is None else gid)

    def directories(self, entries):
        for entry in entries:
            if not entry.get("enabled", True):
                continue
            path, mode = entry["path"], int(entry.get("mode") or "0750", 8)
            uid, gid = self._owner(entry.get("owned", True))
            if os.path.isdir(path):
                info = os.stat(path)
                if info.st_mode & 0o7777 == mode and not self._needs_owner(info, uid, gid):
                    continue
            self.written.append(path + "/")
            if self.check_mode:
                continue
            if not os.path.isdir(path):
                self._makedirs(path, mode, uid, gid)
            os.chmod(path, mode)
            if uid is not None or gid is not None:
                os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)

    def links(self, entries):
        for entry in entries:
            if not entry.get("enabled", True):
                continue
            dest, src = entry["dest"], entry["src"]
            if os.path.islink(dest) and os.readlink(dest) == src:
                continue
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise ValueError("%s is a directory, not a link" % dest)
            self.written.append("%s -> %s" % (dest, src))
            if self.check_mode:
                continue
            tmp = "%s.%d.tmp" % (dest, os.getpid())
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(src, tmp)
            os.rename(tmp, dest)

    def files(self, entries):
        for entry in entries:
            if not entry.get("enabled", True):
                continue
            dest, content, mode = entry["dest"], entry.get("content") or "", int(entry.get("mode") or "0644", 8)
            uid, gid = self._owner(entry.get("owned", True))
            old, old_mode, old_uid = file_state(dest)
            if entry.get("json_merge"):
                content = _merge_json(old, content)
            owner_ok = old is not None and not self._needs_owner(os.stat(dest), uid, gid)
            if old == content and old_mode == mode and owner_ok:
                continue
            self.written.append(dest)
            if old != content and entry.get("restart", True):
                self.restart = True
            if old != content and not entry.get("secret") and self.want_diff:
                self.diff.append(dict(before_header=dest, after_header=dest, before=old or "", after=content))
            if self.check_mode:
                continue
            parent = os.path.dirname(dest)
            if not os.path.isdir(parent):
                self._makedirs(parent, 0o755, uid if self.own_parents else None, gid if self.own_parents else None)
            write_file(dest, content, mode, uid, gid)
