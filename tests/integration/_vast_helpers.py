"""Shared helpers of the Vast.ai integration tests: the fake as a fixture, ansible-playbook runs."""

import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from vast_fake import VastFake  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOKS = os.path.join(HERE, "vast")
API_KEY = "test-key"
# Small delays keep the suite fast while every state of the instance machine is still visited.
FAST = dict(created_delay=0.3, running_delay=0.7)


@pytest.fixture
def vast_fake():
    fake = VastFake(api_key=API_KEY, **FAST).start()
    try:
        yield fake
    finally:
        fake.stop()


def run_playbook(fake, playbook, tmp_path, extra_vars=None, env=None, args=()):
    """Run one playbook of tests/integration/vast against the fake; returns CompletedProcess."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                         % sys.executable)
    variables = {"fake_url": fake.url}
    variables.update(extra_vars or {})
    run_env = dict(os.environ, VAST_API_KEY=API_KEY, VAST_URL=fake.url,
                   ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
                   ANSIBLE_DEPRECATION_WARNINGS="0")
    run_env.update(env or {})
    cmd = ["ansible-playbook", "-i", str(inventory), os.path.join(PLAYBOOKS, playbook),
           "-e", json.dumps(variables)] + list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300,
                          check=False)
    proc.wall_s = time.monotonic() - start
    return proc


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
