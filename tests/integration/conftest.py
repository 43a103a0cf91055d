"""Fixtures several integration test files share."""

import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def control_host(tmp_path_factory):
    """A remote control host (podman container with systemd and sshd on a loopback port) and an
    inventory file that puts it in group codestack_control (see _control_host.py). One per test
    module: a test that builds on it must not hand the next module its units and directories."""
    from _control_host import IMAGE, ControlHost  # pylint: disable=import-outside-toplevel
    if not shutil.which("podman") or subprocess.run(["podman", "image", "exists", IMAGE],
                                                    check=False).returncode != 0:
        pytest.skip("no %s image: run tests/setup/20-podman.sh and tests/setup/control-host.sh (tier remote does)" % IMAGE)
    host = ControlHost(tmp_path_factory.mktemp("control-host")).start()
    yield host
    host.stop()
