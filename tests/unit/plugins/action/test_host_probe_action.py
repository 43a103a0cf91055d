"""llmops.codestack.host_probe's action: on the local connection without become it probes
in-process and answers what the module answers; elsewhere it runs the module."""

import json
import sys
from unittest.mock import MagicMock

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmops.codestack.plugins.action.host_probe import ActionModule
from ansible_collections.llmops.codestack.tests.unit.plugins.action._plugin import make_action
from ansible_collections.llmops.codestack.plugins.modules import host_probe


def action(args, transport="local", become=False, environment=None):
    return make_action(ActionModule, args, transport=transport, become=become, environment=environment)


def module_result(capsys, args):
    with patch_module_args(dict(args)):
        with pytest.raises(SystemExit):
            host_probe.main()
    return json.loads(capsys.readouterr().out)


def test_in_process_answers_what_the_module_answers(capsys, tmp_path):
    (tmp_path / "api_key").write_text("sk-1\n")
    (tmp_path / "link").symlink_to("api_key")
    args = {"files": {"key": str(tmp_path / "api_key"), "none": str(tmp_path / "nope")},
            "paths": {"link": str(tmp_path / "link")},
            "commands": {"py": [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(2)"],
                         "missing": ["codestack-no-such-program"]}}
    plugin = action(args)
    plugin._execute_module = MagicMock(side_effect=AssertionError("no module run on the local connection"))
    here = plugin.run(task_vars={})
    assert here["changed"] is False
    assert here["probe"] == module_result(capsys, args)["probe"]
    assert here["probe"]["commands"]["py"] == {"rc": 2, "stdout": "out", "stderr": "err", "stdout_lines": ["out"]}


def test_a_bad_command_fails_in_process_too():
    result = action({"commands": {"bad": "echo hi"}}).run(task_vars={})
    assert result["failed"] is True and "non-empty list" in result["msg"]


def test_remote_become_or_an_environment_runs_the_module():
    for plugin in (action({}, transport="ssh"), action({}, become=True),
                   action({}, environment=[{"PATH": "/opt/bin"}])):
        plugin._execute_module = MagicMock(return_value={"changed": False, "probe": {}})
        assert plugin.run(task_vars={})["probe"] == {}
        assert plugin._execute_module.call_args.kwargs["module_name"] == "llmops.codestack.host_probe"


def test_bad_arguments_fail_in_process_naming_them():
    result = action({"max_bytes": "lots", "bogus": 1}).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("host_probe: ") and "max_bytes" in result["msg"] and "bogus" in result["msg"]


def test_urls_give_their_status_in_process_as_in_the_module(capsys):
    import http.server
    import socket
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            code = 200 if self.path == "/healthz" else 503
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens there
    base = "http://127.0.0.1:%d" % server.server_address[1]
    args = {"urls": {"up": base + "/healthz", "starting": base + "/other", "down": "http://127.0.0.1:%d/" % dead},
            "url_timeout": 2}
    try:
        plugin = action(args)
        plugin._execute_module = MagicMock(side_effect=AssertionError("no module run on the local connection"))
        here = plugin.run(task_vars={})["probe"]["urls"]
        assert here == module_result(capsys, args)["probe"]["urls"]
    finally:
        server.shutdown()
    assert here["up"] == {"url": base + "/healthz", "status": 200, "error": ""}
    assert here["starting"]["status"] == 503 and here["starting"]["error"] == "HTTP 503"
    assert here["down"]["status"] == 0 and "refused" in here["down"]["error"].lower()


def test_a_url_that_is_not_http_is_refused():
    result = action({"urls": {"x": "file:///etc/passwd"}}).run(task_vars={})
    assert result["failed"] is True and "must start with http:// or https://" in result["msg"]
