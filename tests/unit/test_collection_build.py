"""The collection as users get it: `ansible-galaxy collection build`, its contents and metadata."""

import glob
import os
import re
import subprocess
import tarfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Task keys naming a module by FQCN (namespace.collection.module:), as roles and playbooks write them.
FQCN = re.compile(r"^\s*(?:-\s+)?([a-z_]+\.[a-z_]+)\.[a-z_0-9]+:(?:\s|$)", re.M)
OWN = {"ansible.builtin", "llmops.codestack"}


def _load(name):
    with open(os.path.join(REPO, name)) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run(["ansible-galaxy", "collection", "build", REPO, "--output-path", str(out)],
                   check=True, capture_output=True, text=True)
    (tarball,) = glob.glob(str(out / "*.tar.gz"))
    with tarfile.open(tarball) as archive:
        return archive.getnames()


def test_the_tarball_holds_what_users_run(members):
    for needed in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
                   "playbooks/site.yml", "roles/llamacpp_server/files/codestack_llamacpp.py",
                   "plugins/modules/warn.py", "scripts/quickstart.sh", "requirements.txt",
                   "catalog", "prompts/coder.md"):
        assert needed in members, needed


def test_the_tarball_leaves_out_tests_benchmarks_and_dotfiles(members):
    for name in members:
        parts = name.split("/")
        assert parts[0] not in ("tests", "benchmarks", "out"), name
        assert "molecule" not in parts and "__pycache__" not in parts, name
        assert not any(p.startswith(".") for p in parts), name


def _used_collections():
    used = set()
    for pattern in ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml",
                    "playbooks/tasks/*.yml"):
        for path in glob.glob(os.path.join(REPO, pattern)):
            with open(path) as handle:
                used |= set(FQCN.findall(handle.read()))
    return used - OWN


def test_every_collection_used_is_a_declared_dependency():
    declared = set(_load("galaxy.yml")["dependencies"])
    used = _used_collections()
    assert "kubernetes.core" in used  # the pattern still finds what the roles call
    assert used <= declared, used - declared
    # requirements.yml installs the same collections (Galaxy is not always reachable to resolve them).
    assert {c["name"] for c in _load("requirements.yml")["collections"]} == declared


def test_requires_ansible_is_the_tested_range():
    # tests/run.sh compat runs sanity and units at both ends (the low end is what CI uses).
    spec = _load("meta/runtime.yml")["requires_ansible"]
    assert spec == ">=2.19.0"
    with open(os.path.join(REPO, "tests", "run.sh")) as handle:
        script = handle.read()
    assert re.search(r"COMPAT_VERSIONS=.*2\.19\.\d+.*2\.21\.\d+", script)
