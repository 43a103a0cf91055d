# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.spend_report: the gateway's spend log + plan.json ->
spend-report.md, spend-report.html (inline SVG charts) and spend-report.json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import tempfile

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _catalog, _spend

ARGUMENT_SPEC = dict(
    log=dict(type="path", required=True),
    plan=dict(type="path", required=True),
    dest=dict(type="path", required=True),
    routes=dict(type="list", elements="dict", default=[]),
    plan_routes=dict(type="bool", default=True),
    catalog_routes=dict(type="bool", default=True),
    catalog=dict(type="list", elements="path", default=[]),
    sensitive_roles=dict(type="list", elements="str", default=[]),
    mode=dict(type="str", default="0600"),
)
FILES = ("spend-report.md", "spend-report.html", "spend-report.json")


def _read(path, what):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise _spend.SpendError("cannot read the %s %s: %s" % (what, path, exc))


def _write(path, text, mode):
    """Atomically, with ``mode`` from the start; True when the content changed."""
    try:
        with open(path) as handle:
            if handle.read() == text:
                return False
    except (IOError, OSError):
        pass
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".spend-report-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def _catalog_api_models(paths):
    """The ``api_models`` of the bundled catalog and the user's files, as plain dicts."""
    catalog = _catalog.load_catalog(list(paths or []))
    return [model.model_dump(mode="json") for model in catalog.sections["api_models"].values()]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result["changed"] = False
        try:
            mode = int(args["mode"], 8)
            plan = json.loads(_read(args["plan"], "plan"))
            records, skipped = _spend.parse_log(_read(args["log"], "spend log"))
            routes = (_spend.plan_routes(plan) if args["plan_routes"] else []) + list(args["routes"])
            if args["catalog_routes"]:   # the catalog's per-token APIs (bundled + user files)
                routes += _spend.api_routes(_catalog_api_models(args["catalog"]))
            # Keep the previous report's date when nothing else changed (idempotent re-runs).
            previous = os.path.join(args["dest"], FILES[2])
            generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            doc = _spend.report(records, plan, routes, skipped, args["sensitive_roles"], generated_at=generated)
            try:
                with open(previous) as handle:
                    old = json.load(handle)
                if dict(old, generated_at=None) == json.loads(json.dumps(dict(doc, generated_at=None))):
                    doc["generated_at"] = old.get("generated_at")
            except (IOError, OSError, ValueError):
                pass
            texts = (_spend.render_markdown(doc), _spend.render_html(doc),
                     json.dumps(doc, indent=1, sort_keys=True) + "\n")
        except (_spend.SpendError, _catalog.CatalogError, ValueError, KeyError, TypeError) as exc:
            result.update(failed=True, msg="spend_report: %s" % to_native(exc))
            return result
        paths = [os.path.join(args["dest"], name) for name in FILES]
        changed = []
        for path, text in zip(paths, texts):
            try:
                with open(path) as handle:
                    same = handle.read() == text
            except (IOError, OSError):
                same = False
            if not same:
                changed.append(path)
                if not self._task.check_mode:
                    os.makedirs(args["dest"], exist_ok=True)
                    _write(path, text, mode)
        result["changed"] = bool(changed)
        result["spend_report"] = {
            "markdown": paths[0], "html": paths[1], "json": paths[2],
            "requests": doc["summary"]["requests"],
            "cost_usd": doc["summary"]["total"]["cost_usd"],
            "saving_usd": doc["saving_usd"],
            "skipped_lines": skipped,
            "recommendations": [
                {"role": r["role"], "billed_cost_usd": r["billed_cost_usd"], "saving_usd": r["saving_usd"],
                 "best": (r["best"] or {}).get("name")} for r in doc["recommendations"]],
        }
        return result
