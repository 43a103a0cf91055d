"""Shared helpers of the RunPod integration tests: the fake as a fixture, ansible-playbook runs."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from _provider_helpers import assert_ok, run_provider_playbook  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position

PLAYBOOKS = os.path.join(HERE, "runpod")
API_KEY = "test-key"
# Small delays keep the suite fast while every state of the pod machine is still visited.
FAST = dict(created_delay=0.2, running_delay=0.6)


@pytest.fixture
def runpod_fake():
    fake = RunPodFake(api_key=API_KEY, **FAST).start()
    try:
        yield fake
    finally:
        fake.stop()


def run_playbook(fake, playbook, tmp_path, extra_vars=None, env=None, args=()):
    """Run one playbook of tests/integration/runpod against the fake; returns CompletedProcess."""
    variables = {"fake_url": fake.url, "proxy_url_template": fake.proxy_template}
    variables.update(extra_vars or {})
    return run_provider_playbook(os.path.join(PLAYBOOKS, playbook), tmp_path, variables,
                                 dict(RUNPOD_API_KEY=API_KEY, RUNPOD_API_BASE_URL=fake.url), env, args)
