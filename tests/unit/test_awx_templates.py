# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""extras/ (AWX export, Semaphore project) against what AWX, Semaphore and the playbooks expect."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import json
import os
import re
import subprocess

import pytest
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.llmops.codestack.tests import survey_rules as rules

REPO = rules.REPO
EXPORT = rules.load(rules.AWX_EXPORT)
SEMAPHORE = rules.load(rules.SEMAPHORE_PROJECT)
SEMAPHORE_ENV = rules.load(rules.SEMAPHORE_ENVIRONMENT)
DEFAULT_ORG = {"name": "Default", "type": "organization"}

# The variables each playbook takes from a survey: the contract between the playbooks and
# extras/. Secrets are not survey questions: they come from credentials (AWX) or environment
# secrets (Semaphore), listed in CREDENTIAL_VARS.
SURVEY_VARS = {
    "playbooks/plan.yml": {"blueprint", "plan_output", "plan_intent_model", "plan_intent_api_base"},
    "playbooks/site.yml": {"blueprint", "codestack_output", "codestack_kilocode_extension",
                           "codestack_budget_action", "codestack_budget_warn_ratio",
                           "codestack_calibrate", "codestack_intent_model",
                           "codestack_intent_api_base"},
    "playbooks/teardown.yml": {"codestack_output", "codestack_stack_id", "teardown_mode"},
}
CREDENTIAL_VARS = {"playbooks/plan.yml": {"plan_intent_api_key"},
                   "playbooks/site.yml": {"codestack_intent_api_key"}}
# Added to site.yml by the cloud-stack work (budget guard, calibration); until that lands here
# a missing read is expected, not an error.
PROVIDER_ENV = {"RunPod API": {"RUNPOD_API_KEY": None,
                               "RUNPOD_API_BASE_URL": "https://api.runpod.io"},
                "Vast.ai API": {"VAST_API_KEY": None, "VAST_URL": "https://console.vast.ai"},
                "Hetzner Cloud": {"HCLOUD_TOKEN": None,
                                  "HCLOUD_ENDPOINT": "https://api.hetzner.cloud/v1"}}
SECRET_ENV = {"RUNPOD_API_KEY", "VAST_API_KEY", "HCLOUD_TOKEN"}


def job_templates():
    return dict((jt["playbook"], jt) for jt in EXPORT["job_templates"])


def by_natural_key(resource):
    return [asset["natural_key"] for asset in EXPORT[resource]]


# --- AWX export ---------------------------------------------------------------------------------

def test_awx_export_has_only_resources_awx_import_reads_and_each_asset_a_natural_key():
    assert set(EXPORT) <= set(rules.AWX_RESOURCES)
    for resource in rules.AWX_RESOURCES:
        for asset in EXPORT.get(resource) or []:
            assert asset["natural_key"]["type"], (resource, asset.get("name"))
            assert asset["natural_key"].get("name") == asset["name"]


def test_awx_references_resolve_within_the_export_or_to_the_default_organization():
    known = [DEFAULT_ORG] + [a["natural_key"] for r in rules.AWX_RESOURCES for a in EXPORT.get(r) or []]
    for jt in EXPORT["job_templates"]:
        for field in ("project", "inventory", "execution_environment"):
            assert jt[field] in known, (jt["name"], field)
    for project in EXPORT["projects"]:
        assert project["default_environment"] in known and project["organization"] in known
    for wfjt in EXPORT["workflow_job_templates"]:
        for node in wfjt["related"]["workflow_nodes"]:
            assert node["unified_job_template"] in known
            for link in ("success_nodes", "failure_nodes", "always_nodes"):
                for target in node["related"][link]:
                    assert target in [n["natural_key"] for n in wfjt["related"]["workflow_nodes"]]


@pytest.mark.parametrize("template", EXPORT["job_templates"] + EXPORT["workflow_job_templates"],
                         ids=lambda t: t["name"])
def test_awx_survey_passes_awx_validation_and_launch_needs_no_answer(template):
    survey = template["related"]["survey_spec"]
    assert rules.awx_survey_errors(survey) == []
    assert template["survey_enabled"] is True and template["ask_variables_on_launch"] is False
    extra_vars = rules.awx_launch_extra_vars(survey)
    # Launched with the defaults, every question has its answer: nothing is asked for.
    assert set(extra_vars) == set(q["variable"] for q in survey["spec"])
    for question in survey["spec"]:
        if question["required"]:
            assert question["default"] not in ("", None), question["variable"]
        if question["type"] == "multiplechoice" and set(question["choices"]) == {"true", "false"}:
            assert question["required"]     # a boolean is always passed, as "true" or "false"


@pytest.mark.parametrize("jt", EXPORT["job_templates"], ids=lambda t: t["name"])
def test_awx_job_templates_prompt_for_nothing_but_their_survey(jt):
    asks = dict((k, v) for k, v in jt.items() if k.startswith("ask_") and k.endswith("_on_launch"))
    assert asks and not any(asks.values()), asks
    assert jt["job_type"] == "run" and jt["become_enabled"] is False


def test_awx_surveys_map_one_to_one_to_the_playbook_variables():
    templates = job_templates()
    assert set(templates) == set(SURVEY_VARS)
    for playbook, variables in SURVEY_VARS.items():
        spec = templates[playbook]["related"]["survey_spec"]["spec"]
        assert [q["variable"] for q in spec if q["variable"] in variables] == [q["variable"] for q in spec]
        assert set(q["variable"] for q in spec) == variables


def test_awx_invalid_answers_are_refused_as_awx_would():
    site = job_templates()["playbooks/site.yml"]["related"]["survey_spec"]
    with pytest.raises(ValueError, match="must be one of"):
        rules.awx_launch_extra_vars(site, {"codestack_budget_action": "ignore"})
    with pytest.raises(ValueError, match="above"):
        rules.awx_launch_extra_vars(site, {"codestack_budget_warn_ratio": 1.5})
    with pytest.raises(ValueError, match="was required"):
        rules.awx_launch_extra_vars(site, {"blueprint": ""})
    assert rules.awx_launch_extra_vars(site, {"codestack_budget_warn_ratio": 0.5})[
        "codestack_budget_warn_ratio"] == 0.5


def _render(template, namespace):
    # AWX renders injectors in a sandboxed Jinja environment.
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    return env.from_string(template).render(**namespace)


@pytest.mark.parametrize("name", sorted(PROVIDER_ENV))
def test_awx_provider_credential_types_inject_the_variables_the_modules_read(name):
    ctype = next(c for c in EXPORT["credential_types"] if c["name"] == name)
    assert ctype["kind"] == "cloud"
    fields = dict((f["id"], f) for f in ctype["inputs"]["fields"])
    env = ctype["injectors"]["env"]
    assert set(env) == set(PROVIDER_ENV[name])
    secret_var = next(v for v in env if v in SECRET_ENV)
    secret_field = re.search(r"\{\{\s*(\w+)\s*\}\}", env[secret_var]).group(1)
    assert fields[secret_field]["secret"] is True and secret_field in ctype["inputs"]["required"]
    assert all(not f.get("secret") for i, f in fields.items() if i != secret_field)
    # An empty optional endpoint must not reach the modules as "" (env_fallback would take it).
    without = dict((k, _render(v, {secret_field: "k"})) for k, v in env.items())
    empty = dict((k, _render(v, {secret_field: "k", "api_endpoint": ""})) for k, v in env.items())
    custom = dict((k, _render(v, {secret_field: "k", "api_endpoint": "http://127.0.0.1:9"}))
                  for k, v in env.items())
    endpoint_var = next(v for v in env if v not in SECRET_ENV)
    assert without[secret_var] == "k"
    assert without[endpoint_var] == empty[endpoint_var] == PROVIDER_ENV[name][endpoint_var]
    assert custom[endpoint_var] == "http://127.0.0.1:9"


def test_awx_intent_credential_injects_the_api_key_extra_vars_of_plan_and_site():
    ctype = next(c for c in EXPORT["credential_types"] if c["name"] == "codestack intent LLM")
    assert ctype["inputs"]["fields"] == [dict(ctype["inputs"]["fields"][0], secret=True)]
    injected = ctype["injectors"]["extra_vars"]
    assert set(injected) == set().union(*CREDENTIAL_VARS.values())
    assert all(_render(v, {"api_key": "sk"}) == "sk" for v in injected.values())
    for spec in [jt["related"]["survey_spec"]["spec"] for jt in EXPORT["job_templates"]]:
        assert not set(injected) & set(q["variable"] for q in spec)   # never a survey answer


def test_awx_execution_environment_is_the_one_every_template_runs_in():
    (ee,) = EXPORT["execution_environments"]
    assert ee["image"] and ee["pull"] in ("always", "missing", "never")
    assert all(jt["execution_environment"] == ee["natural_key"] for jt in EXPORT["job_templates"])
    assert EXPORT["projects"][0]["default_environment"] == ee["natural_key"]


def test_awx_workflow_runs_teardown_when_site_fails_with_the_same_stack_directory():
    (wfjt,) = EXPORT["workflow_job_templates"]
    nodes = dict((n["identifier"], n) for n in wfjt["related"]["workflow_nodes"])
    assert nodes["site"]["unified_job_template"]["name"] == "codestack site"
    assert nodes["teardown"]["unified_job_template"]["name"] == "codestack teardown"
    assert [n["identifier"] for n in nodes["site"]["related"]["failure_nodes"]] == ["teardown"]
    assert not nodes["site"]["related"]["success_nodes"] and not nodes["teardown"]["related"]["failure_nodes"]
    # Workflow extra_vars reach every node: its survey must answer both templates' required questions.
    wf_vars = set(q["variable"] for q in wfjt["related"]["survey_spec"]["spec"])
    for template in ("playbooks/site.yml", "playbooks/teardown.yml"):
        required = [q["variable"] for q in job_templates()[template]["related"]["survey_spec"]["spec"]
                    if q["required"]]
        assert set(required) <= wf_vars, template


# --- Semaphore ----------------------------------------------------------------------------------

def _names(kind):
    return [item["name"] for item in SEMAPHORE[kind]]


def test_semaphore_project_restores_every_reference_by_name():
    assert SEMAPHORE["meta"]["name"]
    for kind in ("keys", "repositories", "inventories", "environments", "templates"):
        assert len(_names(kind)) == len(set(_names(kind))), kind
    for repo in SEMAPHORE["repositories"]:
        assert repo["ssh_key"] in _names("keys") and repo["git_url"] and repo["git_branch"]
    for inventory in SEMAPHORE["inventories"]:
        assert inventory["type"] in ("static", "static-yaml", "file")
        assert inventory["ssh_key"] in _names("keys")
    for tpl in SEMAPHORE["templates"]:
        assert tpl["repository"] in _names("repositories")
        assert tpl["inventory"] in _names("inventories")     # required for app ansible
        assert tpl["environment"] in _names("environments")
        assert tpl["app"] == "ansible" and tpl["playbook"] and tpl["name"]
        assert isinstance(json.loads(tpl["arguments"]), list)


@pytest.mark.parametrize("tpl", SEMAPHORE["templates"], ids=lambda t: t["name"])
def test_semaphore_survey_vars_are_valid_and_match_the_awx_survey(tpl):
    errors = [e for var in tpl["survey_vars"] for e in rules.semaphore_var_errors(var)]
    assert errors == []
    awx = dict((q["variable"], q) for q in job_templates()[tpl["playbook"]]["related"]["survey_spec"]["spec"])
    assert [v["name"] for v in tpl["survey_vars"]] == list(awx)
    for var in tpl["survey_vars"]:
        question = awx[var["name"]]
        assert var["required"] == question["required"], var["name"]
        assert var.get("default_value", "") == ("" if question["default"] == "" else str(question["default"]))
        if question["type"] == "multiplechoice":
            assert var["type"] == "enum" and [v["value"] for v in var["values"]] == question["choices"]


def test_semaphore_environments_validate_and_carry_no_secret_value():
    for environment in SEMAPHORE["environments"] + [SEMAPHORE_ENV]:
        assert rules.semaphore_env_errors(environment) == []
        assert not SECRET_ENV & set(json.loads(environment["env"]))   # secrets go in secrets[]
    secrets = SEMAPHORE_ENV["secrets"]
    assert all(s["secret"] == "" and s["operation"] == "create" for s in secrets)
    assert set(s["name"] for s in secrets if s["type"] == "env") == SECRET_ENV
    assert set(s["name"] for s in secrets if s["type"] == "var") == set().union(*CREDENTIAL_VARS.values())
    assert SEMAPHORE_ENV["name"] in _names("environments")


def test_semaphore_and_awx_name_the_same_secret_environment_variables():
    awx_env = set()
    for ctype in EXPORT["credential_types"]:
        awx_env |= set(ctype["injectors"].get("env", {}))
    assert SECRET_ENV <= awx_env


# --- the playbooks behind the templates ---------------------------------------------------------

class _AnyTagLoader(yaml.SafeLoader):
    """Reads Ansible YAML with its custom tags (!unsafe, !vault) as plain values."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)

CONDITIONAL_KEYS = {"when", "that", "failed_when", "changed_when", "until"}


def _jinja_strings(node, conditional=False):
    """Every string an Ansible YAML document evaluates: templated values and raw conditionals."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _jinja_strings(value, conditional=key in CONDITIONAL_KEYS)
    elif isinstance(node, list):
        for value in node:
            yield from _jinja_strings(value, conditional)
    elif isinstance(node, str):
        if conditional:
            yield node
        else:
            for match in re.finditer(r"\{\{(.*?)\}\}|\{%(.*?)%\}", node, re.S):
                yield match.group(1) or match.group(2)


def _role_names(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "roles" and isinstance(value, list):
                for entry in value:
                    yield entry if isinstance(entry, str) else entry.get("role") or entry.get("name")
            elif key in ("include_role", "import_role", "ansible.builtin.include_role",
                         "ansible.builtin.import_role") and isinstance(value, dict):
                yield value.get("name")
            yield from _role_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _role_names(value)


def _load_yaml(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_AnyTagLoader)  # noqa: S506 - a SafeLoader subclass


def _task_files(path):
    """Task files a playbook includes from its own directory (include_tasks: tasks/x.yml)."""
    with open(path) as handle:
        names = re.findall(r"(?:include|import)_tasks:\s*([\w./-]+\.yml)", handle.read())
    found = [os.path.join(os.path.dirname(path), name) for name in names]
    return [name for name in found if os.path.exists(name)]


def _imported_playbooks(path):
    """A playbook and the playbooks it imports (site.yml imports one playbook per stage)."""
    found, pending = [], [path]
    while pending:
        current = pending.pop(0)
        if current in found or not os.path.exists(current):
            continue
        found.append(current)
        for entry in _load_yaml(current) or []:
            name = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
            if name:
                pending.append(os.path.join(os.path.dirname(current), name))
    return found


def evaluated_text(playbook):
    """The expressions a playbook and the roles it uses evaluate (role templates included)."""
    texts, seen = [], set()
    pending = _imported_playbooks(os.path.join(REPO, playbook))
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.endswith(".j2"):
            with open(path) as handle:
                texts.append(handle.read())
            continue
        data = _load_yaml(path)
        texts.extend(_jinja_strings(data))
        pending.extend(_task_files(path))
        for name in _role_names(data):
            role_dir = os.path.join(REPO, "roles", (name or "").split(".")[-1])
            pending.extend(glob.glob(os.path.join(role_dir, "*", "*.yml")))
            pending.extend(glob.glob(os.path.join(role_dir, "templates", "*.j2")))
    return texts


def reads(playbook, variable):
    pattern = re.compile(r"(?<![\w.'\"])%s(?![\w'\"])" % re.escape(variable))
    return any(pattern.search(text) for text in evaluated_text(playbook))


READ_CASES = [(pb, var) for pb, variables in sorted(SURVEY_VARS.items())
              for var in sorted(variables | CREDENTIAL_VARS.get(pb, set()))]


@pytest.mark.parametrize("playbook,variable", READ_CASES, ids=["%s:%s" % c for c in READ_CASES])
def test_every_survey_and_credential_variable_is_read_by_its_playbook(playbook, variable):
    assert reads(playbook, variable)


def test_the_read_check_counts_expressions_not_definitions(tmp_path):
    playbook = tmp_path / "p.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost",
        "vars": {"only_defined": 1, "in_template": 2, "in_condition": 3},
        "tasks": [{"ansible.builtin.debug": {"msg": "{{ in_template | int }} only_defined"},
                   "when": "in_condition > 1"}]}]))
    assert reads(str(playbook), "in_template") and reads(str(playbook), "in_condition")
    assert not reads(str(playbook), "only_defined")
    assert reads("playbooks/plan.yml", "plan_usd_per_eur")          # read only through default()
    assert not reads("playbooks/plan.yml", "plan_intent")          # a prefix is not a name


def _playbook_default(playbook, variable):
    """The playbook's default for a variable: its play vars, a '| default(x)' or the role default."""
    paths = _imported_playbooks(os.path.join(REPO, playbook))
    for path in paths:
        for play in _load_yaml(path) or []:
            if "hosts" in play and variable in (play.get("vars") or {}):
                return play["vars"][variable]
    for path in paths:
        with open(path) as handle:
            match = re.search(r"\b%s\s*\|\s*default\(([^)]*)\)" % re.escape(variable), handle.read())
        if match:
            return yaml.safe_load(match.group(1))
    role_var = {"codestack_budget_action": "budget_guard_action",
                "codestack_budget_warn_ratio": "budget_guard_warn_ratio"}.get(variable)
    if role_var:
        return _load_yaml(os.path.join(REPO, "roles", "budget_guard", "defaults", "main.yml"))[role_var]
    return None


OUTPUT_DIRS = {"plan_output", "codestack_output"}


def resolves_from_working_directory(playbook, variable):
    """Ansible runs local tasks in the playbook's directory: a relative output directory means
    the job's working directory only when the playbook makes it absolute on the controller."""
    text = ""
    for path in _imported_playbooks(os.path.join(REPO, playbook)):
        for name in [path] + _task_files(path):
            with open(name) as handle:
                text += handle.read()
    # llmops.codestack.stack_context resolves its path from the working directory (unit-tested).
    return bool(re.search(r"\b%s\b[^}\n]*\|\s*(?:ansible\.builtin\.)?realpath" % variable, text)
                or re.search(r"llmops\.codestack\.stack_context:\s*\n\s*path: \"\{\{ %s \}\}\"" % variable, text))


def _resolve(default, playbook):
    """A path default as the job sees it: the working directory is the project root (AWX and
    Semaphore run ansible-playbook there)."""
    if not isinstance(default, str):
        return default
    default = default.replace("{{ playbook_dir }}", os.path.dirname(os.path.join(REPO, playbook)))
    default = re.sub(r"\{\{ lookup\('ansible.builtin.env', 'PWD'\)[^}]*\}\}", REPO, default)
    assert "{{" not in default, "no rule for this default: %s" % default
    return os.path.normpath(os.path.join(REPO, default)) if "/" in default else default


DEFAULT_CASES = [(jt["playbook"], q) for jt in EXPORT["job_templates"]
                 for q in jt["related"]["survey_spec"]["spec"]]


@pytest.mark.parametrize("playbook,question", DEFAULT_CASES,
                         ids=["%s:%s" % (p, q["variable"]) for p, q in DEFAULT_CASES])
def test_survey_defaults_equal_the_playbook_defaults(playbook, question):
    expected = _playbook_default(playbook, question["variable"])
    if expected is None:
        pytest.fail("%s has no default in %s" % (question["variable"], playbook))
    if question["variable"] in OUTPUT_DIRS and not resolves_from_working_directory(
            playbook, question["variable"]):
        pytest.fail("%s: a relative %s lands under playbooks/" % (playbook, question["variable"]))
    answer = question["default"]
    if question["type"] == "multiplechoice" and set(question["choices"]) == {"true", "false"}:
        answer = answer == "true"
    assert _resolve(answer, playbook) == _resolve(expected, playbook)


# --- no prompts ---------------------------------------------------------------------------------

PAUSE = {"pause", "ansible.builtin.pause", "ansible.legacy.pause"}


def prompt_findings(node, where):
    """vars_prompt anywhere, and pause tasks that wait for a keypress (no seconds/minutes)."""
    found = []
    if isinstance(node, dict):
        if "vars_prompt" in node:
            found.append("%s: vars_prompt" % where)
        for key in PAUSE & set(node):
            args = node[key] if isinstance(node[key], dict) else {}
            if not (args.get("seconds") or args.get("minutes")):
                found.append("%s: %s without seconds/minutes waits for input" % (where, key))
        for value in node.values():
            found.extend(prompt_findings(value, where))
    elif isinstance(node, list):
        for value in node:
            found.extend(prompt_findings(value, where))
    return found


def test_no_playbook_or_role_prompts():
    paths = sorted(glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
                   + glob.glob(os.path.join(REPO, "roles", "**", "*.yml"), recursive=True))
    assert len(paths) > 20
    findings = []
    for path in paths:
        findings.extend(prompt_findings(_load_yaml(path), os.path.relpath(path, REPO)))
    assert findings == []


def test_the_prompt_scan_finds_prompts():
    play = [{"hosts": "all", "vars_prompt": [{"name": "x"}],
             "tasks": [{"ansible.builtin.pause": {"prompt": "go?"}},
                       {"ansible.builtin.pause": {"seconds": 5}},
                       {"block": [{"pause": None}]}]}]
    assert len(prompt_findings(play, "p")) == 3


# --- the answers as AWX passes them -------------------------------------------------------------

@pytest.mark.parametrize("jt", EXPORT["job_templates"], ids=lambda t: t["name"])
def test_awx_extra_vars_pass_ansible_playbook_syntax_check(jt, tmp_path):
    playbook = os.path.join(REPO, jt["playbook"])
    extra_vars = tmp_path / "extravars"
    extra_vars.write_text(json.dumps(rules.awx_launch_extra_vars(jt["related"]["survey_spec"])))
    proc = subprocess.run(["ansible-playbook", "--syntax-check", "-e", "@%s" % extra_vars, playbook],
                          cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- what the execution environment installs ----------------------------------------------------

def _requirement_names(path):
    names = set()
    with open(path) as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[<>=!~\[; ]", line)[0].lower().replace("_", "-"))
    return names


def test_execution_environment_lists_what_the_collection_needs():
    meta = _load_yaml(os.path.join(REPO, "meta", "execution-environment.yml"))
    python = _requirement_names(os.path.join(REPO, meta["dependencies"]["python"]))
    # Third-party modules imported on the controller (plugins/ runs there; module_utils too).
    imported = set()
    for path in glob.glob(os.path.join(REPO, "plugins", "**", "*.py"), recursive=True):
        with open(path) as handle:
            imported |= set(re.findall(r"^\s*(?:import|from)\s+(\w+)", handle.read(), re.M))
    third_party = {"yaml": "pyyaml", "pydantic": "pydantic", "litellm": "litellm",
                   "hcloud": "hcloud", "jsonschema": "jsonschema"}
    for module, package in third_party.items():
        if module in imported:
            assert package in python, "%s is imported by plugins/ but not in requirements.txt" % module
    assert "ansible-core" in python
    with open(os.path.join(REPO, meta["dependencies"]["system"])) as handle:
        system = [line.split()[0] for line in handle if line.strip() and not line.startswith("#")]
    assert "git" in system

    # Every collection a role or playbook calls is installed by requirements.yml and in the EE.
    used = set()
    task_files = glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml"))
    for path in task_files + glob.glob(os.path.join(REPO, "playbooks", "*.yml")):
        with open(path) as handle:
            used |= set(re.findall(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_]+:", handle.read(), re.M))
    used -= {"ansible.builtin", "ansible.legacy", "llmops.codestack"}
    root = set(c["name"] for c in _load_yaml(os.path.join(REPO, "requirements.yml"))["collections"])
    ee_requirements = _load_yaml(os.path.join(REPO, "execution-environment", "requirements.yml"))
    ee = set(c["name"] for c in ee_requirements["collections"])
    assert used <= root, used - root
    helm_used = False
    for path in glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml")):
        with open(path) as handle:
            helm_used = helm_used or "kubernetes.core.helm:" in handle.read()
    assert not helm_used or "helm" in system, "kubernetes.core.helm runs helm on the controller"
    assert root <= ee, root - ee
    assert any(c.startswith("/build/collections/llmops-codestack-") for c in ee)
    definition = _load_yaml(os.path.join(REPO, "execution-environment", "execution-environment.yml"))
    assert definition["dependencies"]["galaxy"] == "requirements.yml"
    # ansible-builder copies additional_build_files (a glob relative to the definition) into
    # _build/<dest>, which the image sees as /build/<dest>: that must be the tarball
    # `ansible-galaxy collection build` writes and requirements.yml installs.
    galaxy = _load_yaml(os.path.join(REPO, "galaxy.yml"))
    tarball = "%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"])
    copied = ["/build/%s/%s" % (entry["dest"], tarball)
              for entry in definition["additional_build_files"] if fnmatch.fnmatch(tarball, entry["src"])]
    assert copied and copied[0] in ee, (copied, ee)
