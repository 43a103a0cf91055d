# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to run a service: its control script and systemd unit, and writing files in place.

``ctl_script(svc)`` and ``systemd_unit(svc)`` render what the roles' ``ctl.sh.j2`` and
``unit.service.j2`` rendered (one copy instead of one per role); ``svc`` holds ``name``,
``description``, ``dir``, ``log``, ``argv``, ``restart_delay``, ``stop_timeout`` and ``user``.
``write_file`` is the host side of llmops.codestack.run_service: it compares, then writes
atomically with the mode (and owner) asked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

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


def write_file(path, content, mode, uid=None):
    """Write ``content`` to ``path`` atomically (temporary file in the same directory, then
    rename), with ``mode`` and, when given, owner ``uid``."""
    directory = os.path.dirname(path) or "."
    handle, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode("utf-8", "surrogateescape"))
        os.chmod(tmp, mode)
        if uid is not None:
            os.chown(tmp, uid, -1)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
