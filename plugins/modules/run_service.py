#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run_service
short_description: Run a long-running service of the stack, the one way the collection does
version_added: 0.2.0
description:
  - Writes a service's files (configuration, secrets, its control script C(<dir>/ctl.sh) and,
    under systemd, its unit), starts it (restarting it when one of them changed, or when
    O(restart) says so), and waits until it answers, in one call instead of a task per file.
  - Where systemd is PID 1 (O(manager=systemd)) the unit C(/etc/systemd/system/<name>.service)
    runs C(ctl.sh run); elsewhere (containers, CI) C(ctl.sh start) detaches a supervisor that
    restarts the server when it exits. The stop command goes to the result (RV(stop_argv)), for
    the stack's state file.
  - The action plugin renders C(ctl.sh) and the unit, and reads O(files[].src) from the role's
    C(files/) on the controller; the module writes on the host.
  - A file whose content is unchanged is not written; its mode and owner are still put right.
author:
  - llmops.codestack maintainers (@llmops)
options:
  name:
    description:
      - The service's name (the systemd unit's, and the supervisor's in its log lines).
    type: str
    required: true
  description:
    description:
      - The unit's C(Description=).
    type: str
  dir:
    description:
      - The service's directory (created when missing); C(ctl.sh), C(env) (sourced before
        start when present) and the supervisor's pid file live there.
    type: path
    required: true
  log:
    description:
      - The file the service's output is appended to.
    type: path
    required: true
  argv:
    description:
      - The server's command line, run in O(dir).
    type: list
    elements: str
    required: true
  user:
    description:
      - The user the service runs as (systemd) and who owns its files; empty for the caller.
    type: str
    default: ""
  manager:
    description:
      - V(systemd) or V(process) (the supervisor of C(ctl.sh)).
    type: str
    choices: [systemd, process]
    required: true
  restart_delay:
    description:
      - Seconds between a crash and the restart.
    type: int
    default: 5
  stop_timeout:
    description:
      - Seconds from TERM to KILL when stopping.
    type: int
    default: 10
  directories:
    description:
      - Other directories to create first (mode C(0750) unless given).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Its mode, octal string.
        type: str
        default: "0750"
  files:
    description:
      - The files the service reads. Each is written only when its content differs; any that
        is written restarts the service.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Where it goes.
        type: path
        required: true
      content:
        description: Its text (or use O(files[].src)).
        type: str
      src:
        description: A file of the role's C(files/) (or a path), read on the controller.
        type: str
      mode:
        description: Its mode, octal string.
        type: str
        default: "0644"
      secret:
        description:
          - The content is a secret; it is never logged and never shown in a diff.
        type: bool
        default: false
      restart:
        description: Whether a change of this file restarts the service.
        type: bool
        default: true
      owned:
        description:
          - Whether the file belongs to O(user). The control script and the unit never do
            (root runs them).
        type: bool
        default: true
  secret_files:
    description:
      - Filled by the action plugin from the entries of O(files) marked secret, whose content
        is then kept out of logs (C(no_log)); not meant to be set in a task.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Where it goes.
        type: path
        required: true
      content:
        description: Its text (or use O(files[].src)).
        type: str
      src:
        description: A file of the role's C(files/) (or a path), read on the controller.
        type: str
      mode:
        description: Its mode, octal string.
        type: str
        default: "0644"
      secret:
        description:
          - The content is a secret; it is never logged and never shown in a diff.
        type: bool
        default: false
      restart:
        description: Whether a change of this file restarts the service.
        type: bool
        default: true
      owned:
        description:
          - Whether the file belongs to O(user). The control script and the unit never do
            (root runs them).
        type: bool
        default: true
  restart:
    description:
      - Restart the service even when no file changed (say, after its software was updated).
    type: bool
    default: false
  wait_url:
    description:
      - An HTTP URL that answers 200 once the service is ready; empty to not wait.
    type: str
    default: ""
  wait_timeout:
    description:
      - Seconds to wait for O(wait_url).
    type: int
    default: 120
  wait_api_key:
    description:
      - A bearer token O(wait_url) needs (sent as C(Authorization)); empty for none.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Reports which files would be written and whether the service would be (re)started.
  diff_mode:
    support: full
    description: The before and after of every file that is not a secret.
notes:
  - The action plugin puts secret contents in a separate, C(no_log) argument, so that a failure
    or C(-vvv) never shows them.
"""

EXAMPLES = r"""
- name: Run the waker
  llmops.codestack.run_service:
    name: codestack-waker
    description: codestack waker
    dir: /var/lib/codestack/demo/waker
    log: /var/lib/codestack/demo/waker/waker.log
    argv: [/opt/codestack/venvs/waker/bin/python, /var/lib/codestack/demo/waker/codestack_waker.py]
    manager: "{{ 'systemd' if ansible_facts.service_mgr == 'systemd' else 'process' }}"
    files:
      - {src: codestack_waker.py, dest: /var/lib/codestack/demo/waker/codestack_waker.py}
      - {content: "{{ config | to_nice_json }}", dest: /var/lib/codestack/demo/waker/config.json, mode: "0640"}
    wait_url: http://127.0.0.1:8899/_status
"""

RETURN = r"""
run_service:
  description: What the call did.
  returned: always
  type: dict
  contains:
    written:
      description: The files written (or that would be, in check mode).
      type: list
      elements: str
    started:
      description: Whether the service was started or restarted.
      type: bool
    ready:
      description: Whether O(wait_url) answered 200 (false when not asked or in check mode).
      type: bool
stop_argv:
  description: The command that stops the service (for the stack's state file).
  returned: always
  type: list
  elements: str
"""

import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.llmops.codestack.plugins.module_utils import _service

FILE_OPTIONS = dict(
    dest=dict(type="path", required=True),
    content=dict(type="str"),
    src=dict(type="str"),
    mode=dict(type="str", default="0644"),
    secret=dict(type="bool", default=False),
    restart=dict(type="bool", default=True),
    owned=dict(type="bool", default=True),
)


def define_module():
    secret_options = dict(FILE_OPTIONS, content=dict(type="str", no_log=True))
    return AnsibleModule(
        argument_spec=dict(
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
            # Filled by the action plugin from files[] marked secret.
            secret_files=dict(type="list", elements="dict", default=[], options=secret_options, no_log=False),
            restart=dict(type="bool", default=False),
            wait_url=dict(type="str", default=""),
            wait_timeout=dict(type="int", default=120),
            wait_api_key=dict(type="str", default="", no_log=True),
        ),
        supports_check_mode=True,
    )


class RunService:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.uid = pwd.getpwnam(self.params["user"]).pw_uid if self.params["user"] else None
        self.written = []
        self.diff = []
        self.restart = bool(self.params["restart"])
        self.started = False

    def run_cmd(self, argv, check=True):
        rc, out, err = self.module.run_command(argv)
        if check and rc != 0:
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out)[-2000:]),
                                  **self.result())
        return rc

    def put_files(self):
        """The service's directory, the other directories and the files, each changed only
        where it differs (llmops.codestack's FileSet, as host_files does)."""
        files = _service.FileSet(check_mode=self.module.check_mode, want_diff=self.module._diff, uid=self.uid)
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
            if any(path.endswith(".service") for path in self.written) and not self.module.check_mode:
                self.run_cmd(["systemctl", "daemon-reload"])
            running = self.module.run_command(["systemctl", "is-active", "--quiet", name])[0] == 0
            enabled = self.module.run_command(["systemctl", "is-enabled", "--quiet", name])[0] == 0
            if not enabled:
                self.started = True
                if not self.module.check_mode:
                    self.run_cmd(["systemctl", "enable", name])
            if not running or self.restart:
                self.started = True
                if not self.module.check_mode:
                    self.run_cmd(["systemctl", "restart" if running else "start", name])
            return
        running = os.path.exists(ctl) and self.module.run_command([ctl, "status"])[0] == 0
        if not running or self.restart:
            self.started = True
            if not self.module.check_mode:
                self.run_cmd([ctl, "restart" if running else "start"])

    def wait(self):
        url, timeout = self.params["wait_url"], self.params["wait_timeout"]
        if not url or self.module.check_mode:
            return False
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                headers = {"Authorization": "Bearer " + self.params["wait_api_key"]} if self.params["wait_api_key"] else {}
                response = open_url(url, timeout=10, headers=headers)
                if response.getcode() == 200:
                    return True
                last = "HTTP %s" % response.getcode()
            except Exception as exc:  # pylint: disable=broad-except  # refused, reset, 503: not ready yet
                last = str(exc)
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
        tail = _service.read_text(self.params["log"]) or ""
        self.module.fail_json(
            msg="%s did not answer 200 on %s within %ss (%s). Last log lines:\n%s" % (
                self.params["name"], url, timeout, last, "\n".join(tail.splitlines()[-40:])),
            **self.result())
        return False

    def result(self, ready=False):
        return dict(changed=bool(self.written or self.started),
                    run_service=dict(written=self.written, started=self.started, ready=ready),
                    stop_argv=self.stop_argv(), diff=self.diff)


def main():
    module = define_module()
    service = RunService(module)
    service.put_files()
    service.service()
    ready = service.wait()
    module.exit_json(**service.result(ready))


if __name__ == "__main__":
    main()
