"""llmops.codestack.host_files on this machine's real file system: created in one call, left
alone on a repeat, put right where one path differs, in check and diff mode, secrets kept out."""

import json
import os
import pwd
import stat
from unittest.mock import MagicMock

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.action.host_files import ActionModule, build_args
from ansible_collections.llmops.codestack.plugins.modules import host_files
from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action
from ansible.errors import AnsibleActionFail

SECRET = "sk-s3cret-value"


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _in_process(task, check, diff):
    """The action on the local connection: the module's work done in the worker process."""
    plugin = make_action(ActionModule, task, check=check, diff=diff)
    plugin._read_src = lambda src: "from files/" + src
    plugin._execute_module = MagicMock(side_effect=AssertionError("no module run on the local connection"))
    # What reaches the user goes through JSON, as the module's answer does.
    return json.loads(json.dumps(plugin.run(task_vars={})))


# Every test runs twice: the module on the host, and the action doing its work in-process.
@pytest.fixture(params=["module", "in-process"])
def call(request, tmp_path, capsys):
    home = tmp_path / "home"

    def _call(check=False, diff=False, **task):
        if request.param == "in-process":
            return _in_process(task, check, diff)
        args = build_args(task, read_src=lambda src: "from files/" + src)
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                host_files.main()
        return json.loads(capsys.readouterr().out)

    _call.home = home
    return _call


def _task(home, settings='{"update.mode": "none"}', brief="brief v1\n"):
    return dict(
        directories=[{"path": str(home / ".config" / "kilo"), "mode": "0700"},
                     {"path": str(home / "workspace"), "mode": "0750"},
                     {"path": str(home / "disabled"), "enabled": False}],
        links=[{"dest": str(home / "node"), "src": "../opt/node/bin/node"}],
        files=[{"dest": str(home / ".config" / "kilo" / "litellm.key"), "content": SECRET, "mode": "0600",
                "secret": True},
               {"dest": str(home / ".local" / "User" / "settings.json"), "content": settings,
                "json_merge": True, "mode": "0600", "restart": False},
               {"dest": str(home / "workspace" / "BRIEF.md"), "content": brief, "restart": False},
               {"dest": str(home / "workspace" / "from-src"), "src": "helper.sh", "mode": "0755"},
               {"dest": str(home / "never"), "content": "x", "enabled": False}])


def test_check_then_create_then_nothing_then_one_change(call):
    home = call.home
    checked = call(check=True, diff=True, **_task(home))
    assert checked["changed"] is True and not home.exists()
    assert str(home / ".config" / "kilo") + "/" in checked["host_files"]["written"]
    assert SECRET not in json.dumps(checked)
    assert str(home / ".config" / "kilo" / "litellm.key") not in [d["after_header"] for d in checked["diff"]]

    first = call(**_task(home))
    assert first["changed"] is True and first["host_files"]["restart"] is True
    assert SECRET not in json.dumps(first)
    assert _mode(home / ".config" / "kilo") == 0o700
    # Missing parents take the directory's own mode, as ansible.builtin.file makes them.
    assert _mode(home / ".config") == 0o700 and _mode(home) == 0o700
    assert _mode(home / ".config" / "kilo" / "litellm.key") == 0o600
    assert (home / ".config" / "kilo" / "litellm.key").read_text() == SECRET
    assert os.readlink(home / "node") == "../opt/node/bin/node"
    assert (home / "workspace" / "from-src").read_text() == "from files/helper.sh"
    assert _mode(home / "workspace" / "from-src") == 0o755
    assert not (home / "disabled").exists() and not (home / "never").exists()

    again = call(**_task(home))
    assert again["changed"] is False and again["host_files"]["written"] == []
    assert call(check=True, **_task(home))["changed"] is False

    # Only the brief differs: written, with its diff, and no restart asked for.
    brief = call(diff=True, **_task(home, brief="brief v2\n"))
    assert brief["host_files"]["written"] == [str(home / "workspace" / "BRIEF.md")]
    assert brief["host_files"]["restart"] is False
    assert brief["diff"] == [{"before_header": str(home / "workspace" / "BRIEF.md"),
                              "after_header": str(home / "workspace" / "BRIEF.md"),
                              "before": "brief v1\n", "after": "brief v2\n"}]


def test_json_merge_keeps_the_users_own_settings(call):
    home = call.home
    settings = home / ".local" / "User" / "settings.json"
    call(**_task(home))
    settings.write_text(json.dumps({"editor.fontSize": 15, "update.mode": "default"}))
    merged = call(**_task(home))
    assert merged["host_files"]["written"] == [str(settings)]
    assert json.loads(settings.read_text()) == {"editor.fontSize": 15, "update.mode": "none"}
    # Written as to_nice_json(indent=2) writes it, so that the next run finds nothing to do.
    assert settings.read_text() == '{\n  "editor.fontSize": 15,\n  "update.mode": "none"\n}'
    assert call(**_task(home))["changed"] is False
    settings.write_text("not json")
    assert call(**_task(home))["host_files"]["written"] == [str(settings)]
    assert json.loads(settings.read_text()) == {"update.mode": "none"}


def test_modes_and_links_are_put_right(call):
    home = call.home
    call(**_task(home))
    os.chmod(home / ".config" / "kilo" / "litellm.key", 0o644)
    os.chmod(home / "workspace", 0o777)
    os.unlink(home / "node")
    os.symlink("/elsewhere", home / "node")
    fixed = call(**_task(home))
    assert sorted(fixed["host_files"]["written"]) == sorted([
        str(home / "workspace") + "/", str(home / "node") + " -> ../opt/node/bin/node",
        str(home / ".config" / "kilo" / "litellm.key")])
    # The key's content did not change: nothing to restart for a mode put right.
    assert fixed["host_files"]["restart"] is False
    assert _mode(home / ".config" / "kilo" / "litellm.key") == 0o600 and _mode(home / "workspace") == 0o750
    assert os.readlink(home / "node") == "../opt/node/bin/node"


def test_owner_and_group_are_applied(call):
    me = pwd.getpwuid(os.getuid())
    home = call.home
    result = call(owner=me.pw_name, group=me.pw_name if os.getuid() else "root", **_task(home))
    assert result["changed"] is True
    assert os.stat(home / "workspace" / "BRIEF.md").st_uid == os.getuid()


def test_an_unknown_owner_is_named(call):
    result = call(owner="no-such-user-codestack", **_task(call.home))
    assert result["failed"] is True and "no-such-user-codestack" in result["msg"]
    assert not call.home.exists()
    # In check mode the user may be one the same run creates first: reported, not refused.
    checked = call(check=True, owner="no-such-user-codestack", **_task(call.home))
    assert checked["changed"] is True and "failed" not in checked


@pytest.mark.parametrize("entry, message", [
    ({"content": "x"}, "every file needs a dest"),
    ({"dest": "/tmp/x", "content": "x", "src": "y"}, "has both src and content"),
    ({"dest": "/tmp/x"}, "needs src or content"),
])
def test_bad_entries_fail_on_the_controller(entry, message):
    with pytest.raises(AnsibleActionFail, match=message):
        build_args({"files": [entry]}, read_src=lambda src: "")


def test_in_process_masks_a_secret_in_an_error(tmp_path, monkeypatch):
    from ansible_collections.llmops.codestack.plugins.module_utils import _hostfiles

    def fails(params, check_mode, want_diff):
        return dict(failed=True, msg="host_files: cannot write " + params["secret_files"][0]["content"])

    monkeypatch.setattr(_hostfiles, "apply", fails)
    result = _in_process({"files": [{"dest": str(tmp_path / "key"), "content": SECRET, "secret": True}]}, False, False)
    assert result["failed"] is True and SECRET not in json.dumps(result) and "********" in result["msg"]
