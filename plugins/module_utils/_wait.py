# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A monotonic-clock waiter used by every module that waits for a remote state."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


class WaitTimeout(Exception):
    """Raised when the condition did not hold in time; ``last`` is the last value seen."""

    def __init__(self, message, last=None):
        super(WaitTimeout, self).__init__(message)
        self.last = last


def wait_for(probe, done, timeout, sleep=5.0, progress=None, clock=time.monotonic,
             sleeper=time.sleep, what="resource"):
    """Call ``probe()`` until ``done(value)`` is true or ``timeout`` seconds pass.

    ``progress(value, elapsed)`` is called after each probe (for verbose output).
    Returns the last value; raises :class:`WaitTimeout` carrying it otherwise.
    """
    start = clock()
    while True:
        value = probe()
        elapsed = clock() - start
        if progress is not None:
            progress(value, elapsed)
        if done(value):
            return value
        if elapsed + sleep > timeout:
            raise WaitTimeout("timed out after %.0fs waiting for %s" % (elapsed, what), last=value)
        sleeper(sleep)
