"""packages_missing: which packages still need the package manager, from a dpkg-query probe."""

import shutil
import subprocess

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.stack import packages_missing

FORMAT = "--showformat=${Package}\t${db:Status-Abbrev}\n"


def _probe(*names):
    proc = subprocess.run(["dpkg-query", "--show", FORMAT] + list(names), capture_output=True, text=True, check=False)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "changed": False}


def test_installed_packages_need_no_run_and_missing_ones_are_named():
    probe = {"rc": 1, "stdout": "libgomp1\tii \nbuild-essential\trc \n",
             "stderr": "dpkg-query: no packages found matching nosuchpkg\n"}
    assert packages_missing(probe, ["libgomp1", "build-essential", "nosuchpkg"]) == ["build-essential", "nosuchpkg"]
    assert packages_missing({"rc": 0, "stdout": "libgomp1\tii \n"}, ["libgomp1"]) == []


def test_a_probe_that_could_not_answer_keeps_every_name():
    names = ["libgomp1", "git"]
    assert packages_missing({"rc": 127, "stdout": "", "stderr": "dpkg-query: not found"}, names) == names
    assert packages_missing({"skipped": True, "changed": False}, names) == names
    assert packages_missing(None, names) == names


def test_versions_and_wildcards_are_left_to_the_package_manager():
    probe = {"rc": 0, "stdout": "libgomp1\tii \ngit\tii \n"}
    assert packages_missing(probe, ["libgomp1=12.2.0-14", "git*", "git"]) == ["libgomp1=12.2.0-14", "git*"]
    assert packages_missing(probe, ["libgomp1:amd64"]) == []
    assert packages_missing(probe, "git") == []


def test_bad_names_are_an_error():
    with pytest.raises(AnsibleFilterError, match="list of package names"):
        packages_missing({"rc": 0, "stdout": ""}, [1, 2])


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs dpkg (Debian)")
def test_against_this_hosts_real_dpkg():
    installed = subprocess.run(["dpkg-query", "--show", "--showformat=${Package}\n", "dpkg"], capture_output=True,
                               text=True, check=True).stdout.strip()
    assert packages_missing(_probe(installed, "codestack-no-such-package"),
                            [installed, "codestack-no-such-package"]) == ["codestack-no-such-package"]
    assert packages_missing(_probe(installed), [installed]) == []
