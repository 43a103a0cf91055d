"""A remote control host for the site tests: a podman container running systemd and sshd.

The container starts from localhost/codestack-bookworm-sshd (tests/setup/control-host.sh) with
``/sbin/init`` as PID 1, so the roles run the gateway, the IDE and the budget guard as systemd
units. Ansible reaches it over SSH with a key made for the run (no password logins; the host key
is pinned in a known_hosts file of the run).

Networking: the container shares the host's network namespace (``--network host``) and sshd
listens on ``127.0.0.1:<free port>`` instead of 22. That way the provider fakes and the model
server on this machine's loopback are reachable from the control host at the addresses they
hand out, as a rented machine's public address would be from a real control host; the control
host's own services bind its loopback, i.e. this machine's, on ports the test picks free.

Like the Molecule scenarios, two installs this machine already made are mounted read-only at
the same paths instead of being repeated in the container (minutes each): the Python where
tests/setup installed the LiteLLM proxy (and ansible-core), and the prebuilt code-server.
"""

import os
import subprocess
import sys
import time

from _services import free_port

IMAGE = "localhost/codestack-bookworm-sshd"
HOST_PYTHON_PREFIX = sys.prefix
CODE_SERVER_PREFIX = os.path.expanduser("~/.cache/codestack/code-server-4.139.1")


def _run(argv, timeout=120, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (rc %s): %s %s" % (argv[:4], proc.returncode, proc.stdout[-2000:],
                                                         proc.stderr[-2000:]))
    return proc


class ControlHost:
    """One container, its SSH key and an inventory that puts it in group codestack_control."""

    def __init__(self, tmp_path, name=None):
        self.tmp = tmp_path
        self.name = name or "codestack-control-%d" % os.getpid()
        self.port = free_port()
        self.key = tmp_path / "id_ed25519"
        self.known_hosts = tmp_path / "known_hosts"
        self.inventory = tmp_path / "inventory.yml"

    def start(self, timeout=90):
        _run(["podman", "rm", "-f", "--time", "1", self.name], check=False)
        _run(["podman", "run", "-d", "--name", self.name, "--network", "host", "--systemd", "always",
              "--stop-timeout", "1", "--hostname", self.name,
              "-v", "%s:%s:ro" % (HOST_PYTHON_PREFIX, HOST_PYTHON_PREFIX),
              "-v", "%s:/opt/code-server:ro" % CODE_SERVER_PREFIX,
              IMAGE, "/sbin/init"])
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)])
        deadline = time.monotonic() + timeout
        while self.exec(["systemctl", "is-system-running"], check=False).stdout.strip() not in (
                "running", "degraded"):
            if time.monotonic() > deadline:
                raise TimeoutError("systemd in %s did not come up within %ss" % (self.name, timeout))
            time.sleep(0.5)
        config = ("Port %d\nListenAddress 127.0.0.1\nPasswordAuthentication no\n"
                  "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n" % self.port)
        self.exec(["sh", "-c", "ssh-keygen -A >/dev/null && mkdir -p -m 700 /root/.ssh && cat > "
                   "/root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys"],
                  stdin=self.key.with_suffix(".pub").read_text())
        self.exec(["sh", "-c", "cat > /etc/ssh/sshd_config.d/codestack-test.conf"], stdin=config)
        self.exec(["systemctl", "reset-failed", "ssh"], check=False)
        self.exec(["systemctl", "restart", "ssh"])
        host_key = self.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()
        self.known_hosts.write_text("[127.0.0.1]:%d %s %s\n" % (self.port, host_key[0], host_key[1]))
        self.inventory.write_text(
            "all:\n  children:\n    codestack_control:\n      hosts:\n        control:\n"
            "          ansible_host: 127.0.0.1\n          ansible_port: %d\n          ansible_user: root\n"
            "          ansible_ssh_private_key_file: %s\n"
            "          ansible_ssh_common_args: -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes\n"
            "          ansible_python_interpreter: /usr/bin/python3\n          ansible_pipelining: true\n"
            % (self.port, self.key, self.known_hosts))
        while self.ssh(["true"], check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("sshd in %s did not answer on port %d" % (self.name, self.port))
            time.sleep(0.5)
        return self

    def exec(self, argv, check=True, stdin=None, timeout=120, privileged=False):
        """A command in the container (podman exec): for the test's own look, not the product's.
        ``privileged``: with every capability (``ss -p`` needs CAP_SYS_PTRACE to name the
        processes of other users, such as caddy's and code-server's)."""
        proc = subprocess.run(["podman", "exec", "-i"] + (["--privileged"] if privileged else []) + [self.name]
                              + list(argv), input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError("podman exec %s failed (rc %s): %s %s"
                               % (argv, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return proc

    def ssh(self, argv, check=True):
        return _run(["ssh", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                     "-o", "StrictHostKeyChecking=yes", "-i", str(self.key), "-p", str(self.port),
                     "root@127.0.0.1"] + list(argv), timeout=30, check=check)

    def stop(self):
        _run(["podman", "rm", "-f", "--time", "1", self.name], check=False, timeout=60)
