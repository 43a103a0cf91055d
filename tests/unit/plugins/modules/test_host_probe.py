"""llmops.codestack.host_probe on this machine: files, paths and commands in one call."""

import grp
import json
import os
import pwd
import sys

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.modules import host_probe


@pytest.fixture
def probe(capsys):
    def _probe(check=False, **args):
        args.update(_ansible_check_mode=check)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                host_probe.main()
        return json.loads(capsys.readouterr().out)
    return _probe


def test_files_paths_and_commands(probe, tmp_path):
    (tmp_path / "package.json").write_text('{"version": "4.139.1"}')
    (tmp_path / "big").write_text("x" * 100)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    result = probe(files={"pkg": str(tmp_path / "package.json"), "none": str(tmp_path / "nope"),
                          "big": str(tmp_path / "big"), "dir": str(tmp_path / "dir")},
                   paths={"dir": str(tmp_path / "dir"), "link": str(tmp_path / "link"), "none": str(tmp_path / "nope")},
                   commands={"py": [sys.executable, "-c", "import sys; print('v1'); print('two'); sys.exit(3)"],
                             "missing": ["codestack-no-such-program", "--version"],
                             "missing_path": [str(tmp_path / "no-bin"), "--version"]},
                   max_bytes=50)
    assert result["changed"] is False
    found = result["probe"]
    pkg, none = str(tmp_path / "package.json"), str(tmp_path / "nope")
    (tmp_path / "package.json").chmod(0o640)
    mine = dict(owner=pwd.getpwuid(os.getuid()).pw_name, group=grp.getgrgid(os.getgid()).gr_name)
    assert found["files"]["pkg"] == dict(path=pkg, exists=True, content='{"version": "4.139.1"}', too_large=False,
                                         mode=found["files"]["pkg"]["mode"], **mine)
    assert found["files"]["none"] == {"path": none, "exists": False, "content": "", "too_large": False}
    assert found["files"]["big"] == dict(path=str(tmp_path / "big"), exists=True, content="", too_large=True,
                                         mode=found["files"]["big"]["mode"], **mine)
    # The mode as octal digits, the way host_files takes it.
    again = probe(files={"pkg": pkg})["probe"]["files"]["pkg"]
    assert again["mode"] == "0640"
    assert found["files"]["dir"]["exists"] is False  # a directory is not a file to read
    assert found["paths"]["dir"] == {"path": str(tmp_path / "dir"), "exists": True, "isdir": True, "islink": False}
    # A dangling link is there, and its target is what it points to.
    assert found["paths"]["link"] == {"path": str(tmp_path / "link"), "exists": True, "isdir": False, "islink": True,
                                      "target": str(tmp_path / "missing")}
    assert found["paths"]["none"] == {"path": none, "exists": False, "isdir": False, "islink": False}
    assert found["commands"]["py"] == {"rc": 3, "stdout": "v1\ntwo", "stderr": "", "stdout_lines": ["v1", "two"]}
    assert found["commands"]["missing"]["rc"] == 127 and "not found" in found["commands"]["missing"]["stderr"]
    assert found["commands"]["missing_path"]["rc"] == 127


def test_check_mode_runs_the_same(probe):
    result = probe(check=True, commands={"echo": ["echo", "hi"]})
    assert result["probe"]["commands"]["echo"]["stdout"] == "hi"


def test_a_command_must_be_a_list(probe):
    result = probe(commands={"bad": "echo hi"})
    assert result["failed"] is True and "non-empty list" in result["msg"]


def test_an_unreadable_file_is_there_without_content(probe, tmp_path, monkeypatch):
    # Root reads every file here, so the refusal a non-root user would get is raised by open().
    secret = tmp_path / "api_key"
    secret.write_text("sk-x")
    real_open = open

    def refuse(path, *args, **kwargs):
        if str(path) == str(secret):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    found = probe(files={"key": str(secret)})["probe"]["files"]["key"]
    assert found == {"path": str(secret), "exists": True, "content": "", "too_large": False, "error": "Permission denied",
                     "mode": found["mode"], "owner": found["owner"], "group": found["group"]}
