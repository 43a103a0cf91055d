# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plan.yml run the way AWX and Semaphore run it: no terminal, survey answers as extra vars,
and an exit code that tells the job's outcome."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.llmops.codestack.tests import survey_rules as rules

pytestmark = pytest.mark.integration

REPO = rules.REPO
EXPORT = rules.load(rules.AWX_EXPORT)
SEMAPHORE = rules.load(rules.SEMAPHORE_PROJECT)


def template(playbook, source):
    return next(t for t in source if t["playbook"] == playbook)


def run(args, cwd):
    # stdin closed like a job runner's: a prompt would fail or hang instead of passing.
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return subprocess.run(["ansible-playbook"] + args, cwd=str(cwd), env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture
def project(tmp_path):
    """A project checkout as AWX and Semaphore have it: the job's working directory."""
    root = tmp_path / "project"
    for folder in ("playbooks", "blueprints"):
        shutil.copytree(os.path.join(REPO, folder), str(root / folder))
    return root


def awx_inventory(path):
    """The export's inventory as the job sees it (host variables from the export)."""
    (inventory,) = EXPORT["inventory"]
    hosts = dict((h["name"], yaml.safe_load(h["variables"]))
                 for h in inventory["related"]["hosts"])
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


def plan_args(tmp_path, blueprint):
    return ["playbooks/plan.yml", "-e", "blueprint=%s" % blueprint,
            "-e", "plan_output=%s" % (tmp_path / "out")]


def test_valid_blueprint_exits_0(project, tmp_path):
    proc = run(plan_args(tmp_path, "blueprints/small-cli.yml"), project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["fits"] is True


def test_invalid_blueprint_exits_2_with_one_error(project, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("project: {name: demo, description: x}\nfeatures: [{name: a, description: b}]\n"
                   "constraints: {budget_usd: -3, deadline_hours: 5}\n")
    proc = run(plan_args(tmp_path, bad), project)
    assert proc.returncode == 2, proc.stdout + proc.stderr       # a task failed
    fatal = [line for line in proc.stdout.splitlines() if line.startswith("fatal:")]
    assert len(fatal) == 1 and "constraints.budget_usd" in fatal[0], proc.stdout
    assert "failed=1" in proc.stdout and not (tmp_path / "out").exists()


def test_missing_blueprint_file_exits_2_naming_the_file(project, tmp_path):
    proc = run(plan_args(tmp_path, "blueprints/no-such.yml"), project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    fatal = [line for line in proc.stdout.splitlines() if line.startswith("fatal:")]
    assert len(fatal) == 1
    assert "cannot read blueprint file blueprints/no-such.yml" in fatal[0]


def test_awx_job_with_the_survey_defaults(project, tmp_path):
    """What an AWX job of 'codestack plan' runs: the export's inventory, extra vars in a file."""
    jt = template("playbooks/plan.yml", EXPORT["job_templates"])
    extra_vars = rules.awx_launch_extra_vars(jt["related"]["survey_spec"])
    # The 'codestack intent LLM' credential, when attached, adds its key as an extra variable.
    extra_vars["plan_intent_api_key"] = "sk-never-used"
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "extravars").write_text(json.dumps(extra_vars))
    inventory = awx_inventory(env_dir / "hosts.yml")
    proc = run(["-i", str(inventory), "-e", "@%s" % (env_dir / "extravars"), jt["playbook"]], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads((project / "out" / "plan" / "plan.json").read_text())
    assert plan["intent"]["source"] == "deterministic"        # no model chosen: no LLM call
    assert "sk-never-used" not in proc.stdout


def test_semaphore_task_with_the_survey_defaults(project):
    """What a Semaphore task of 'codestack plan' runs: string values in one --extra-vars JSON."""
    tpl = template("playbooks/plan.yml", SEMAPHORE["templates"])
    (inventory,) = [i for i in SEMAPHORE["inventories"] if i["name"] == tpl["inventory"]]
    (project / "inventory").write_text(inventory["inventory"])
    extra_vars = rules.semaphore_launch_extra_vars(tpl["survey_vars"])
    assert all(isinstance(v, str) for v in extra_vars.values())
    proc = run(["-i", "inventory", "--extra-vars", json.dumps(extra_vars), tpl["playbook"]], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "out" / "plan" / "report.md").exists()


def test_awx_answer_that_names_a_missing_blueprint_fails_the_job(project, tmp_path):
    jt = template("playbooks/plan.yml", EXPORT["job_templates"])
    extra_vars = rules.awx_launch_extra_vars(jt["related"]["survey_spec"],
                                             {"blueprint": "blueprints/typo.yml"})
    (tmp_path / "extravars").write_text(json.dumps(extra_vars))
    proc = run(["-e", "@%s" % (tmp_path / "extravars"), jt["playbook"]], project)
    assert proc.returncode == 2 and "cannot read blueprint file blueprints/typo.yml" in proc.stdout
