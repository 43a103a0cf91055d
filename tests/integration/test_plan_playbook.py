# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/plan.yml end to end with real ansible-playbook, ansible-doc and ansible-galaxy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.llmops.codestack.tests.fakes.openai_chat import ScriptedChatServer

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, "playbooks", "plan.yml")
BLUEPRINTS = os.path.join(REPO, "blueprints")


def ansible(args, env=None, cwd=None):
    full_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                    ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    full_env.update(env or {})
    return subprocess.run(args, env=full_env, cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=300, check=False)


def plan(tmp_path, *extra, **kwargs):
    out = tmp_path / "out"
    args = ["ansible-playbook", kwargs.pop("playbook", PLAYBOOK), "-e", "plan_output=%s" % out]
    for item in extra:
        args += ["-e", item]
    return ansible(args, **kwargs), out


@pytest.mark.parametrize("name", sorted(os.listdir(BLUEPRINTS)))
def test_each_example_blueprint_gives_plan_and_report(tmp_path, name):
    proc, out = plan(tmp_path, "blueprint=%s" % os.path.join(BLUEPRINTS, name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "plan.json").read_text())
    assert data["schema_version"] == 1 and data["intent"]["source"] == "deterministic"
    assert set(data["roles"]) == {"architect", "coder", "debugger", "reviewer"}
    report = (out / "report.md").read_text()
    assert "source: **deterministic**" in report
    assert ("does NOT fit" in report) == (not data["fits"])
    ET.fromstring((out / "cost-vs-time.svg").read_text())
    intent = json.loads((out / "intent.json").read_text())
    assert intent["tasks"] == data["intent"]["tasks"]
    assert "Report: %s/report.md" % out in proc.stdout
    if name == "large-platform.yml":
        assert not data["fits"] and data["tradeoffs"]


def test_bad_blueprint_fails_first_with_one_message(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("project: {name: demo, description: x}\nfeatures: [{name: a, description: b}]\n"
                   "constraints: {budget_usd: -3, deadline_hours: 5}\n")
    proc, out = plan(tmp_path, "blueprint=%s" % bad)
    assert proc.returncode != 0
    assert "blueprint field 'constraints.budget_usd'" in proc.stdout
    assert "fix: use a positive number" in proc.stdout
    assert "ok=0" in proc.stdout and not out.exists()


def test_intent_file_round_trip(tmp_path):
    first, out = plan(tmp_path, "blueprint=%s" % os.path.join(BLUEPRINTS, "medium-webapp.yml"))
    assert first.returncode == 0, first.stdout
    saved = tmp_path / "intent.json"
    saved.write_text((out / "intent.json").read_text())
    again, out = plan(tmp_path, "blueprint=%s" % os.path.join(BLUEPRINTS, "medium-webapp.yml"),
                      "plan_intent_file=%s" % saved)
    assert again.returncode == 0, again.stdout + again.stderr
    data = json.loads((out / "plan.json").read_text())
    assert data["intent"]["source"] == "file"
    assert data["intent"]["tasks"] == json.loads(saved.read_text())["tasks"]   # nothing clamped
    assert "source: **file**" in (out / "report.md").read_text()


@pytest.fixture
def fake_llm():
    server = ScriptedChatServer().start()
    yield server
    server.stop()


def _answer(blueprint_path):
    import yaml
    with open(blueprint_path) as handle:
        bp = yaml.safe_load(handle)
    tasks = [{"role": role, "feature": feature["name"], "title": "%s %s" % (role, feature["name"]),
              "complexity": "medium", "input_tokens": 200000, "output_tokens": 8000}
             for feature in bp["features"]
             for role in ("architect", "coder", "debugger", "reviewer")]
    return json.dumps({"reasoning": "each feature is medium", "tasks": tasks,
                       "cost_drivers": [{"feature": bp["features"][0]["name"], "share": 0.5,
                                         "why": "first"}]})


def test_intent_llm_is_used_and_its_failure_is_an_error(tmp_path, fake_llm):
    blueprint = os.path.join(BLUEPRINTS, "medium-webapp.yml")
    fake_llm.script([], default=_answer(blueprint))
    common = ["blueprint=%s" % blueprint, "plan_intent_model=openai/intent",
              "plan_intent_api_base=%s/v1" % fake_llm.url, "plan_intent_api_key=sk-test-key"]
    proc, out = plan(tmp_path, *common)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "plan.json").read_text())
    assert data["intent"]["source"] == "llm" and data["intent"]["model"] == "openai/intent"
    assert "the intent LLM `openai/intent`" in (out / "report.md").read_text()
    assert "sk-test-key" not in proc.stdout + (out / "plan.json").read_text()
    assert fake_llm.requests

    fake_llm.script([{"status": 400, "message": "model exploded"}] * 10, default="not json")
    failed, out2 = plan(tmp_path / "second", *common)
    assert failed.returncode != 0
    assert "openai/intent" in failed.stdout
    assert "deterministic" not in failed.stdout      # never a silent fallback
    assert not out2.exists()


def test_ansible_doc_shows_the_module():
    proc = ansible(["ansible-doc", "-t", "module", "llmops.codestack.intent_estimate"])
    assert proc.returncode == 0, proc.stderr
    for word in ("blueprint", "intent_model", "intent_api_key", "catalog", "RETURN VALUES"):
        assert word in proc.stdout


def test_galaxy_build_install_and_run_from_the_installed_collection(tmp_path):
    """Also the embedded default: no -e blueprint plans this machine (provider local)."""
    build = ansible(["ansible-galaxy", "collection", "build", REPO, "--output-path",
                     str(tmp_path)])
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = [p for p in os.listdir(str(tmp_path)) if p.endswith(".tar.gz")][0]
    dest = tmp_path / "installed"
    install = ansible(["ansible-galaxy", "collection", "install", "--force",
                       str(tmp_path / tarball), "-p",
                       str(dest)])
    assert install.returncode == 0, install.stdout + install.stderr
    root = dest / "ansible_collections" / "llmops" / "codestack"
    assert (root / "catalog" / "offers.yml").exists()
    assert (root / "blueprints" / "small-cli.yml").exists()
    env = {"ANSIBLE_COLLECTIONS_PATH": str(dest)}
    doc = ansible(["ansible-doc", "-t", "module", "llmops.codestack.intent_estimate"], env=env)
    assert doc.returncode == 0, doc.stderr
    run = ansible(["ansible-playbook", "llmops.codestack.plan", "-e",
                   "plan_output=%s" % (tmp_path / "out")], env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert data["deployments"][0]["provider"] == "local"
    assert all(p.startswith("bundled:catalog/") for p in data["catalog"]["paths"])


def test_quickstart_plans_the_embedded_default(tmp_path):
    """The README's first fresh-machine command (requirements are already installed here)."""
    out = tmp_path / "plan"
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "quickstart.sh")],
                          env=dict(os.environ, OUT=str(out), QUICKSTART="plan", ANSIBLE_NOCOLOR="1"),
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Report: %s/report.md" % out in proc.stdout
    data = json.loads((out / "plan.json").read_text())
    assert data["deployments"][0]["provider"] == "local" and data["fits"]
