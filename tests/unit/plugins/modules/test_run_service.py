"""llmops.codestack.run_service on this machine: a real supervised process (python's http.server),
started, left alone, restarted on a changed file, and checked in check and diff mode."""

import json
import os
import socket
import stat
import subprocess
import sys
from unittest.mock import MagicMock

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.action.run_service import ActionModule, build_args
from ansible_collections.llmops.codestack.plugins.modules import run_service
from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_process(task, check, diff):
    """The action on the local connection: the module's work done in the worker process."""
    plugin = make_action(ActionModule, task, check=check, diff=diff)
    plugin._read_src = lambda src: "from " + src
    plugin._execute_module = MagicMock(side_effect=AssertionError("no module run on the local connection"))
    return json.loads(json.dumps(plugin.run(task_vars={})))


# Every test runs twice: the module on the host, and the action doing its work in-process
# (whose service must not hold the worker's pipes: the tests' commands would hang).
@pytest.fixture(params=["module", "in-process"])
def call(request, tmp_path, capsys):
    port = free_port()
    directory = str(tmp_path / "svc")
    task = {"name": "codestack-test", "dir": directory, "log": directory + "/svc.log",
            "argv": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            "manager": "process", "restart_delay": 1, "stop_timeout": 5,
            "directories": [{"path": directory + "/www", "mode": "0755"}],
            "files": [{"dest": directory + "/index.html", "content": "hello\n"},
                      {"dest": directory + "/key", "content": "s3cret-value", "mode": "0600", "secret": True}],
            "wait_url": "http://127.0.0.1:%d/index.html" % port, "wait_timeout": 20}

    def _call(check=False, diff=False, **overrides):
        if request.param == "in-process":
            return _in_process(dict(task, **overrides), check, diff)
        args = build_args(dict(task, **overrides), read_src=lambda src: "from " + src)
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                run_service.main()
        return json.loads(capsys.readouterr().out)

    _call.dir = directory
    _call.port = port
    yield _call
    subprocess.run([directory + "/ctl.sh", "stop"], check=False, timeout=30)


def supervisor(directory):
    with open(directory + "/supervisor.pid") as handle:
        return int(handle.read())


def test_check_real_repeat_restart(call):
    checked = call(check=True, diff=True)
    assert checked["changed"] is True and checked["run_service"]["started"] is True
    assert not os.path.exists(call.dir)
    assert [d["after_header"] for d in checked["diff"]] == [call.dir + "/ctl.sh", call.dir + "/index.html"]
    assert "s3cret-value" not in json.dumps(checked)

    first = call()
    assert first["changed"] is True and first["run_service"]["ready"] is True
    assert first["stop_argv"] == [call.dir + "/ctl.sh", "stop"]
    assert stat.S_IMODE(os.stat(call.dir + "/key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(call.dir + "/ctl.sh").st_mode) == 0o755
    assert "s3cret-value" not in json.dumps(first)
    pid = supervisor(call.dir)

    again = call()
    assert again["changed"] is False and again["run_service"]["written"] == []
    assert supervisor(call.dir) == pid
    assert call(check=True)["changed"] is False

    changed = call(diff=True, files=[{"dest": call.dir + "/index.html", "content": "bye\n"},
                                     {"dest": call.dir + "/key", "content": "s3cret-value", "mode": "0600",
                                      "secret": True}])
    assert changed["run_service"]["written"] == [call.dir + "/index.html"]
    assert changed["diff"][0]["before"] == "hello\n" and changed["diff"][0]["after"] == "bye\n"
    assert supervisor(call.dir) != pid


def test_a_stopped_service_is_started_and_a_mode_put_right(call):
    call()
    subprocess.run([call.dir + "/ctl.sh", "stop"], check=True, timeout=30)
    os.chmod(call.dir + "/key", 0o644)
    result = call()
    assert result["run_service"] == {"written": [call.dir + "/key"], "started": True, "ready": True}
    assert stat.S_IMODE(os.stat(call.dir + "/key").st_mode) == 0o600


def test_restart_without_a_changed_file(call):
    call()
    pid = supervisor(call.dir)
    assert call(restart=True)["run_service"]["started"] is True
    assert supervisor(call.dir) != pid


def test_a_service_that_never_answers_fails_with_its_log(call):
    result = call(argv=[sys.executable, "-c", "print('boom: no port'); raise SystemExit(3)"], wait_timeout=2)
    assert result["failed"] is True
    assert "boom: no port" in result["msg"] and "did not answer 200" in result["msg"]
    assert result["stop_argv"] == [call.dir + "/ctl.sh", "stop"]


def test_build_args_renders_ctl_and_unit_and_splits_secrets():
    args = build_args({"name": "codestack-x", "dir": "/srv/x", "log": "/srv/x/x.log", "argv": ["/bin/x", "a b"],
                       "manager": "systemd", "user": "svc", "restart_delay": 3, "stop_timeout": 7,
                       "files": [{"dest": "/srv/x/conf", "src": "x.conf"},
                                 {"dest": "/srv/x/key", "content": "k", "secret": True}]},
                      read_src=lambda src: "from " + src)
    dests = [f["dest"] for f in args["files"]]
    assert dests == ["/srv/x/ctl.sh", "/etc/systemd/system/codestack-x.service", "/srv/x/conf"]
    assert [f["dest"] for f in args["secret_files"]] == ["/srv/x/key"]
    ctl, unit, conf = (f["content"] for f in args["files"])
    assert "CMD=(/bin/x 'a b' )" in ctl and "seq 70" in ctl and "restarting in 3s" in ctl
    assert "ExecStart=/srv/x/ctl.sh run" in unit and "User=svc\n" in unit and "TimeoutStopSec=7" in unit
    assert conf == "from x.conf"


@pytest.mark.parametrize("files, message", [
    ([{"dest": "/a", "src": "x", "content": "y"}], "both src and content"),
    ([{"dest": "/a"}], "needs src or content"),
    ([{"content": "y"}], "needs a dest"),
])
def test_build_args_refuses_bad_files(files, message):
    with pytest.raises(Exception, match=message):
        build_args({"name": "n", "dir": "/d", "log": "/d/l", "argv": ["x"], "manager": "process", "files": files},
                   read_src=str)
