# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pydantic for the collection's validators, or stand-ins when it is missing.

The blueprint, catalog and intent validators run on the controller, where requirements.txt
installs pydantic>=2. ansible-test's import sanity imports every module_util in an environment
without it: the stand-ins below let those modules import, and ``HAS_PYDANTIC`` tells their
callers to raise their own clear error (``PYDANTIC_IMPORT_ERROR`` says why) instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
    HAS_PYDANTIC = True
    PYDANTIC_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised by ansible-test's import sanity
    HAS_PYDANTIC = False
    PYDANTIC_IMPORT_ERROR = _exc
    BaseModel = object
    ConfigDict = dict
    ValidationError = ValueError

    def Field(*args, **kwargs):  # noqa: N802 - mirrors pydantic's name
        return None

    def field_validator(*args, **kwargs):
        return lambda fn: fn

    def model_validator(*args, **kwargs):
        return lambda fn: fn

__all__ = ("HAS_PYDANTIC", "PYDANTIC_IMPORT_ERROR", "BaseModel", "ConfigDict", "Field",
           "ValidationError", "field_validator", "model_validator")
