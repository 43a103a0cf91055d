# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What llmops.codestack.host_files does, shared by the module (on the host) and its action
plugin (in Ansible's worker process, on the local connection)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import pwd

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.llmops.codestack.plugins.module_utils import _service

DIRECTORY_OPTIONS = dict(
    path=dict(type="path", required=True),
    mode=dict(type="str", default="0750"),
    owned=dict(type="bool", default=True),
    enabled=dict(type="bool", default=True),
)
LINK_OPTIONS = dict(
    dest=dict(type="path", required=True),
    src=dict(type="str", required=True),
    enabled=dict(type="bool", default=True),
)
FILE_OPTIONS = dict(
    dest=dict(type="path", required=True),
    content=dict(type="str"),
    src=dict(type="str"),
    mode=dict(type="str", default="0644"),
    owned=dict(type="bool", default=True),
    secret=dict(type="bool", default=False),
    restart=dict(type="bool", default=True),
    json_merge=dict(type="bool", default=False),
    enabled=dict(type="bool", default=True),
)


def secret_options(file_options):
    """The options of ``secret_files`` entries: ``file_options`` with the content ``no_log``."""
    return dict(file_options, content=dict(type="str", no_log=True))


ARGUMENT_SPEC = dict(
    owner=dict(type="str", default=""),
    group=dict(type="str", default=""),
    directories=dict(type="list", elements="dict", default=[], options=DIRECTORY_OPTIONS),
    links=dict(type="list", elements="dict", default=[], options=LINK_OPTIONS),
    files=dict(type="list", elements="dict", default=[], options=FILE_OPTIONS),
    # Filled by the action plugin from files[] marked secret.
    secret_files=dict(type="list", elements="dict", default=[], no_log=False,
                      options=secret_options(FILE_OPTIONS)),
)


def ids(owner, group, check_mode):
    """(uid, gid) of ``owner`` and ``group``, None where not given. An unknown one fails (a
    ValueError naming it), except in check mode, where the user may be one this run would
    create first (everything of theirs is then reported as to be created anyway)."""
    found = []
    for kind, name, lookup in (("user", owner, lambda n: pwd.getpwnam(n).pw_uid),
                               ("group", group, lambda n: grp.getgrnam(n).gr_gid)):
        try:
            found.append(lookup(name) if name else None)
        except KeyError:
            if not check_mode:
                raise ValueError("no such %s on the host: %s" % (kind, name))
            found.append(None)
    return found[0], found[1]


def apply(params, check_mode, want_diff):
    """The module's result for validated ``params``: ``failed`` and ``msg`` on an error."""
    try:
        uid, gid = ids(params["owner"], params["group"], check_mode)
    except ValueError as exc:
        return dict(failed=True, msg="host_files: %s" % exc)
    files = _service.FileSet(check_mode=check_mode, want_diff=want_diff, uid=uid, gid=gid, own_parents=True)
    try:
        files.directories(params["directories"])
        files.links(params["links"])
        files.files(list(params["files"]) + list(params["secret_files"]))
    except (OSError, IOError, ValueError) as exc:
        return dict(failed=True, msg="host_files: %s" % to_native(exc),
                    host_files=dict(written=files.written, restart=files.restart))
    return dict(changed=bool(files.written), diff=files.diff,
                host_files=dict(written=files.written, restart=files.restart))
