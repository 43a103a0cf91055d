"""Shared helpers of the Vast.ai integration tests: the fake as a fixture, ansible-playbook runs."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from _provider_helpers import assert_ok, run_provider_playbook  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
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
    variables = {"fake_url": fake.url}
    variables.update(extra_vars or {})
    return run_provider_playbook(os.path.join(PLAYBOOKS, playbook), tmp_path, variables,
                                 dict(VAST_API_KEY=API_KEY, VAST_URL=fake.url), env, args)
