# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What llmops.codestack.run_service does, shared by the module (on the host) and its action
plugin (in Ansible's worker process, on the local connection). ``host`` is the AnsibleModule, or
the action's stand-in for it (plugin_utils/_inprocess.py): ``params``, ``check_mode``,
``_diff``, ``run_command(argv)`` and ``fail_json(**result)``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import time


from ansible_collections.llmops.codestack.plugins.module_utils import _hostfiles, _probe, _service

# host_files' file options, less what only host_files does (merging JSON, disabled entries).
FILE_OPTIONS = dict((key, value) for key, value in _hostfiles.FILE_OPTIONS.items() if key not in ("json_merge", "enabled"))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    description=dict(type="str"),
    dir=dict(type="path", required=True),
    log=dict(type="path", required=True),
    argv=dict(type="list", elements="str", required=True),
    user=dict(type="str", default=""),
    manager=dict(type="str", choices=["systemd", "process"], required=True),
    restart_delay=dict(type="int", default=5),
    stop_timeout=dict(type="int", default=10),
    directories=dict(type="list", elements="dict", default=[], options=dict(
        path=dict(type="path", required=True), mode=dict(type="str", default="0750"))),
    files=dict(type="list", elements="dict", default=[], options=FILE_OPTIONS),
    secret_files=dict(type="list", elements="dict", default=[], no_log=False,
                      options=_hostfiles.secret_options(FILE_OPTIONS)),
    restart=dict(type="bool", default=False),
    wait_url=dict(type="str", default=""),
    wait_timeout=dict(type="int", default=120),
    wait_api_key=dict(type="str", default="", no_log=True),
)


class RunService:
    def __init__(self, host):
        self.host = host
        self.params = host.params
        self.uid = pwd.getpwnam(self.params["user"]).pw_uid if self.params["user"] else None
        self.written = []
        self.diff = []
        self.restart = bool(self.params["restart"])
        self.started = False

    def run_cmd(self, argv, check=True):
        rc, out, err = self.host.run_command(argv)
        if check and rc != 0:
            self.host.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out)[-2000:]),
                                **self.result())
        return rc

    def put_files(self):
        """The service's directory, the other directories and the files, each changed only
        where it differs (llmops.codestack's FileSet, as host_files does)."""
        files = _service.FileSet(check_mode=self.host.check_mode, want_diff=self.host._diff, uid=self.uid)
        files.directories([dict(path=self.params["dir"], mode="0750")] + list(self.params["directories"]))
        files.files(list(self.params["files"]) + list(self.params["secret_files"]))
        self.written.extend(files.written)
        self.diff.extend(files.diff)
        self.restart = self.restart or files.restart

    def stop_argv(self):
        if self.params["manager"] == "systemd":
            return ["systemctl", "stop", self.params["name"]]
        return [os.path.join(self.params["dir"], "ctl.sh"), "stop"]

    def service(self):
        ctl = os.path.join(self.params["dir"], "ctl.sh")
        name = self.params["name"]
        if self.params["manager"] == "systemd":
            if any(path.endswith(".service") for path in self.written) and not self.host.check_mode:
                self.run_cmd(["systemctl", "daemon-reload"])
            running = self.host.run_command(["systemctl", "is-active", "--quiet", name])[0] == 0
            enabled = self.host.run_command(["systemctl", "is-enabled", "--quiet", name])[0] == 0
            if not enabled:
                self.started = True
                if not self.host.check_mode:
                    self.run_cmd(["systemctl", "enable", name])
            if not running or self.restart:
                self.started = True
                if not self.host.check_mode:
                    self.run_cmd(["systemctl", "restart" if running else "start", name])
            return
        running = os.path.exists(ctl) and self.host.run_command([ctl, "status"])[0] == 0
        if not running or self.restart:
            self.started = True
            if not self.host.check_mode:
                self.run_cmd([ctl, "restart" if running else "start"])

    def wait(self):
        url, timeout = self.params["wait_url"], self.params["wait_timeout"]
        if not url or self.host.check_mode:
            return False
        deadline = time.monotonic() + timeout
        headers = {"Authorization": "Bearer " + self.params["wait_api_key"]} if self.params["wait_api_key"] else {}
        while True:
            try:
                answer = _probe.fetch(url, 10, True, headers)
            except _probe.ProbeError as exc:
                self.host.fail_json(msg="%s: wait_url %s" % (self.params["name"], exc), **self.result())
                return False
            if answer["status"] == 200:
                return True
            last = answer["error"]  # refused, reset, 503: not ready yet
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
        tail = _service.read_text(self.params["log"]) or ""
        self.host.fail_json(
            msg="%s did not answer 200 on %s within %ss (%s). Last log lines:\n%s" % (
                self.params["name"], url, timeout, last, "\n".join(tail.splitlines()[-40:])),
            **self.result())
        return False

    def result(self, ready=False):
        return dict(changed=bool(self.written or self.started),
                    run_service=dict(written=self.written, started=self.started, ready=ready),
                    stop_argv=self.stop_argv(), diff=self.diff)


def run(host):
    """Put the files right, (re)start the service when needed, wait until it answers."""
    service = RunService(host)
    service.put_files()
    service.service()
    ready = service.wait()
    return service.result(ready)
