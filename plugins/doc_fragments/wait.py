# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait until the resource reaches the requested state before returning.
      - Nothing is waited for in check mode.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait before giving up.
    type: int
    default: 900
  wait_sleep:
    description:
      - Seconds between two polls while waiting.
    type: int
    default: 5
"""
