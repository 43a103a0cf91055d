# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What llmops.codestack.host_probe looks at, shared by the module (on the host) and its action
plugin (in Ansible's worker process, on the local connection)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd

from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

ARGUMENT_SPEC = dict(
    files=dict(type="dict", default={}),
    paths=dict(type="dict", default={}),
    commands=dict(type="dict", default={}),
    urls=dict(type="dict", default={}),
    url_timeout=dict(type="int", default=5),
    validate_certs=dict(type="bool", default=True),
    max_bytes=dict(type="int", default=1048576),
)


class ProbeError(Exception):
    """An argument the probe cannot use."""


def _name(lookup, number):
    try:
        return to_text(lookup(number)[0])
    except KeyError:
        return to_text(number)


def read_file(path, max_bytes):
    if not os.path.isfile(path):
        return dict(path=path, exists=False, content="", too_large=False)
    info = os.stat(path)
    found = dict(path=path, exists=True, content="", too_large=False, mode="%04o" % (info.st_mode & 0o7777),
                 owner=_name(pwd.getpwuid, info.st_uid), group=_name(grp.getgrgid, info.st_gid))
    if info.st_size > max_bytes:
        found["too_large"] = True
        return found
    try:
        with open(path, "rb") as handle:
            found["content"] = to_text(handle.read(), errors="surrogate_or_replace")
    except OSError as error:
        # Unreadable to the connecting user: there, but its content unknown.
        found["error"] = to_text(error.strerror or error)
    return found


def look(path):
    found = dict(path=path, exists=os.path.lexists(path), isdir=os.path.isdir(path), islink=os.path.islink(path))
    if found["islink"]:
        try:
            found["target"] = to_text(os.readlink(path), errors="surrogate_or_replace")
        except OSError:
            found["target"] = ""
    return found


def runnable(program):
    """Whether ``program`` (a path, or a name looked up as AnsibleModule.get_bin_path does) runs."""
    if "/" in program:
        return os.access(program, os.X_OK)
    try:
        get_bin_path(program)
    except ValueError:
        return False
    return True


def run(argv, run_command):
    if not isinstance(argv, list) or not argv or not all(isinstance(arg, (str, int, float)) for arg in argv):
        raise ProbeError("host_probe: a command must be a non-empty list of strings, not %r" % (argv,))
    argv = [to_text(arg) for arg in argv]
    if not runnable(argv[0]):
        return dict(rc=127, stdout="", stderr="%s: not found" % argv[0], stdout_lines=[])
    rc, out, err = run_command(argv)
    out, err = out.rstrip("\n"), err.rstrip("\n")
    return dict(rc=rc, stdout=out, stderr=err, stdout_lines=out.splitlines())


def fetch(url, timeout, validate_certs, headers=None):
    """GET ``url`` once: its status (0 when nothing answered) and, when it is not 200, why. The
    health check of host_probe's ``urls`` and of run_service's wait."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ProbeError("host_probe: a URL must start with http:// or https://, not %r" % (url,))
    try:
        response = open_url(url, method="GET", timeout=timeout, validate_certs=validate_certs,
                            headers=headers or {}, follow_redirects="none")
        status = response.getcode()
        response.read()
    except HTTPError as exc:
        return dict(url=url, status=exc.code, error="HTTP %s" % exc.code)
    except Exception as exc:  # pylint: disable=broad-except  # refused, reset, timed out, TLS: not ready
        return dict(url=url, status=0, error=to_text(getattr(exc, "reason", None) or exc))
    return dict(url=url, status=status, error="" if status == 200 else "HTTP %s" % status)


def probe(params, run_command):
    """The module's ``probe`` result for validated ``params``; ``run_command(argv)`` runs a
    command (AnsibleModule.run_command on the host, plugin_utils/_inprocess.py's run_here in the
    worker process)."""
    return dict(
        files=dict((name, read_file(to_text(path), params["max_bytes"])) for name, path in params["files"].items()),
        paths=dict((name, look(to_text(path))) for name, path in params["paths"].items()),
        commands=dict((name, run(argv, run_command)) for name, argv in params["commands"].items()),
        urls=dict((name, fetch(url, params["url_timeout"], params["validate_certs"]))
                  for name, url in params["urls"].items()),
    )
