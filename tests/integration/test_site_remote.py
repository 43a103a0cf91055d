"""The control plane on a host that stays: site.yml builds onto a remote control host.

The control host is a podman container with systemd and sshd (conftest.py ``control_host``),
named in group codestack_control of the inventory. The plan rents on the RunPod and Vast.ai
fakes (each rented port relayed to a real llama.cpp server on this machine); the gateway, the
IDE, the reverse proxy (Caddy, from Debian's package in the image), the waker and the budget
guard run under systemd on the control host. A check run first creates nothing. Then one built
stack (at -vvv: its output holds no key) serves every check: every alias answers through TLS
trusting only the CA fetched to the controller (plain HTTP and the system's trust store fail),
Chromium loads the IDE's login page over TLS, only Caddy listens on non-loopback addresses
(sshd is the test's, on loopback), a re-run changes nothing, a second stack on the same host is
refused before anything is rented for it, the waker on the host (accelerated clock) stops the
idle_stop machine and a request through TLS wakes it, the guard stage takes its records back,
then, after the controller's ansible-playbook has exited, the guard on the host stops the
rented GPUs at its budget (accelerated clock) with its own 0600 settings, and teardown from the
controller removes the rest, reaching the host's services through the inventory.

"Non-loopback" in a container that shares this machine's network namespace: the gateway and
code-server bind 127.0.0.1, Caddy binds every address (the product's default) on the TLS ports,
and ``ss -tlnp`` inside the container names only the container's own processes, so each
listening socket of the control host is attributed to its process and address.
"""
import json
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from _cloudstack import API_KEY, STACK_ID, CloudStack, plan_blueprint, split_plan, wait_for
from _control_host import HOST_PYTHON_PREFIX
from _services import free_port, start_llamacpp

pytestmark = [pytest.mark.remote, pytest.mark.integration]

ALIASES = ("architect", "coder", "debugger", "reviewer")
HOST_DIR = "/var/lib/codestack/" + STACK_ID
IDLE_S = 3600          # the idle_stop machine's idle timeout (provider seconds)
CLOCK_SCALE = 1000     # provider seconds per wall second once the waker's clock is accelerated


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    plan = split_plan(plan_blueprint(tmp))
    plan["blueprint"]["ide"] = "kilocode"
    # One machine scales to zero through the waker on the control host, the other stays on. An
    # hour idle (no stop during the builds on the real clock); the accelerated clock below makes
    # that seconds.
    big, small = plan["deployments"]
    big["scaling"] = dict(big.get("scaling") or {}, mode="idle_stop", idle_timeout_s=IDLE_S, wake_policy="wait",
                          wake_timeout_s=IDLE_S * 10)
    small["scaling"] = dict(small.get("scaling") or {}, mode="always_on", idle_timeout_s=0)
    path = tmp / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return path


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def _changed(proc):
    return dict((host, stats["changed"]) for host, stats in json.loads(proc.stdout)["stats"].items())


def _ask(url, key, alias, context=None):
    body = json.dumps({"model": alias, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]})
    request = urllib.request.Request(url + "/v1/chat/completions", data=body.encode(),
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120, context=context) as answer:
        return json.load(answer)


def _listeners(host):
    """[(process, address, port)] of the control host's listening TCP sockets (ss in the
    container names the container's processes only: this machine's other sockets have none)."""
    found = []
    for line in host.exec(["ss", "-Htlnp"], privileged=True).stdout.splitlines():
        users = re.search(r'users:\(\("([^"]+)"', line)
        if users:
            address, port = line.split()[3].rsplit(":", 1)
            found.append((users.group(1), address.strip("[]"), int(port)))
    return sorted(set(found))


def _loopback(address):
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


def _chromium_loads_the_login_page(tmp, ca_file, url):
    """Chromium with an NSS database that holds the stack's CA: the login page over TLS."""
    from _browser import Browser  # pylint: disable=import-outside-toplevel
    home = tmp / "chromium-home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", "sql:%s" % nssdb, "-N", "--empty-password"], check=True, timeout=30)
    subprocess.run(["certutil", "-d", "sql:%s" % nssdb, "-A", "-n", "codestack-stack-ca", "-t", "C,,", "-i",
                    str(ca_file)], check=True, timeout=30)
    browser = Browser(tmp / "chromium-profile", tmp / "chromium.log", home=home)
    try:
        browser.navigate(url + "/login")
        browser.wait_for("!!document.querySelector('input[name=password]')", timeout=90)
        return browser.evaluate("location.protocol + ' ' + document.title")
    finally:
        browser.close()


def _wait_for(predicate, timeout, what):
    return wait_for(predicate, timeout, what, step=1)


def test_stack_on_a_remote_control_host(tmp_path, upstream, plan_file, control_host):
    stack = CloudStack(tmp_path, upstream, vast_config={"steal_offers": [3001]})
    try:
        _build_check_guard_teardown(stack, plan_file, control_host)
    finally:
        stack.close()


def _build_check_guard_teardown(stack, plan_file, host):
    ide_port, tls_gateway_port, tls_ide_port = free_port(), free_port(), free_port()
    variables = stack.site_vars(plan_file, codestack_calibrate=False,
                                litellm_gateway_python=HOST_PYTHON_PREFIX + "/bin/python3",
                                # This machine's PyPI goes through a TLS proxy the container does not
                                # trust: the guard's ansible-core is the mounted one, like LiteLLM.
                                codestack_guard_ansible_python=HOST_PYTHON_PREFIX + "/bin/python3",
                                # The waker's aiohttp and ansible-core: the mounted Python's as well.
                                waker_python=HOST_PYTHON_PREFIX + "/bin/python3",
                                waker_poll_interval_s=100,
                                code_server_kilocode_install_method="prebuilt",
                                code_server_kilocode_prefix="/opt/code-server",
                                code_server_kilocode_port=ide_port,
                                code_server_kilocode_cli_install=False,
                                codestack_kilocode_extension=False,
                                # Free ports instead of 443 and 8443: this machine is shared.
                                codestack_tls_gateway_port=tls_gateway_port,
                                codestack_tls_ide_port=tls_ide_port)
    # The gateway's directory is the product's own on the control host, not one of this machine.
    variables.pop("litellm_gateway_dir")
    variables.pop("waker_dir")
    inventory = ["-i", str(host.inventory)]

    # A check run on the fresh host creates nothing: no state, no rented machine, no unit.
    check = stack.run("site.yml", variables, inventory + ["--check"])
    _ok(check)
    assert "Check run: nothing was created" in check.stdout, check.stdout[-3000:]
    assert "would serve the gateway and the IDE over TLS on control" in check.stdout, check.stdout[-3000:]
    assert stack.state() is None and not (stack.out / "ca.crt").exists()
    assert (stack.live()["runpod_pods"], stack.live()["vast_instances"]) == (0, 0)
    assert host.exec(["sh", "-c", "ls /etc/systemd/system/codestack-* /var/lib/codestack /var/lib/codestack-proxy"],
                     check=False).stdout == ""
    print("remote check run %.1f s" % check.wall_s)

    # The build at the highest verbosity (its output is checked for keys below).
    first = stack.run("site.yml", variables, inventory + ["-vvv"])
    _ok(first)
    assert "ESTABLISH SSH CONNECTION" in first.stdout
    state = stack.state()
    local = dict((r["id"], r) for r in state["resources"] if r["provider"] == "local")
    assert set(local) == {"litellm", "code-server", "reverse-proxy", "budget-guard", "waker"}
    assert {r["attributes"]["host"] for r in local.values()} == {"control"}
    # Each runs as a systemd unit of the control host (the roles pick systemd when it is PID 1).
    for resource in local.values():
        argv = resource["attributes"]["stop_argv"]
        assert argv[:2] == ["systemctl", "stop"], argv
        assert host.exec(["systemctl", "is-active", argv[-1]], check=False).stdout.strip() == "active", argv
    assert not (stack.tmp / "litellm").exists() and not (stack.out / "budget-guard").exists()
    # The waker works from the host's copy of the state file, the one the guard reads.
    waker_config = json.loads(host.exec(["cat", HOST_DIR + "/waker/config.json"]).stdout)
    assert waker_config["state_file"] == HOST_DIR + "/state.json" and list(waker_config["deployments"]) == [
        "big-qwen-h100"]
    host_ids = sorted(r["id"] for r in json.loads(host.exec(["cat", HOST_DIR + "/state.json"]).stdout)["resources"])
    assert host_ids == sorted(r["id"] for r in state["resources"])

    # The proxy's CA, fetched to the controller, and its fingerprint printed at the end of the run.
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel
    ca_file = stack.out / "ca.crt"
    assert ca_file.read_text() == host.exec(
        ["cat", "/var/lib/codestack-proxy/%s/data/pki/authorities/local/root.crt" % STACK_ID]).stdout
    fingerprint = ":".join("%02X" % b for b in x509.load_pem_x509_certificate(ca_file.read_bytes()).fingerprint(
        hashes.SHA256()))
    proxy = local["reverse-proxy"]["attributes"]
    assert proxy["ca_sha256"] == fingerprint and proxy["ca_file"] == str(ca_file)
    assert proxy["urls"] == {"gateway": "https://127.0.0.1:%d" % tls_gateway_port,
                             "ide": "https://127.0.0.1:%d" % tls_ide_port}
    assert "CA certificate %s, SHA-256 %s" % (ca_file, fingerprint) in first.stdout

    # Every role alias answers through TLS, with the IDE's scoped key, trusting the fetched CA alone.
    trusted = ssl.create_default_context(cafile=str(ca_file))
    ide_key = (stack.out / "ide_key").read_text().strip()
    for alias in ALIASES:
        assert _ask(proxy["urls"]["gateway"], ide_key, alias, trusted)["choices"][0]["message"]["content"]
    # Not trusted without that CA (the system's store), and no plain HTTP on the proxy's port.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _ask(proxy["urls"]["gateway"], ide_key, "coder", ssl.create_default_context())
    # A GET with no body: Caddy answers 400 and closes; with a request body still unread it may
    # close with a reset before the answer's body is read (seen once in CI, 2026-12-02).
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/v1/models" % tls_gateway_port,
                                                      headers={"Authorization": "Bearer " + ide_key}), timeout=30)
    assert plain.value.code == 400
    try:
        said = plain.value.read()
    except ConnectionResetError:
        said = None  # the reset took the body; the 400 from the TLS port stands
    assert said is None or b"HTTP request to an HTTPS server" in said
    with urllib.request.urlopen(proxy["urls"]["ide"] + "/login", timeout=30, context=trusted) as login:
        assert login.status == 200 and b"code-server" in login.read()
    if shutil.which("chromium") and shutil.which("certutil"):
        assert _chromium_loads_the_login_page(stack.tmp, ca_file, proxy["urls"]["ide"]).startswith("https: ")
    else:
        pytest.fail("needs chromium and certutil (tests/setup/40-ide.sh, tests/setup/control-host.sh)")

    # What listens where on the control host: only Caddy on non-loopback addresses (sshd, here the
    # test's own, listens on 127.0.0.1; on a created server it is port 22 of every address).
    listeners = _listeners(host)
    print("control host listeners: %s" % listeners)
    public = [(name, address, port) for name, address, port in listeners if not _loopback(address)]
    assert {socket[0] for socket in public} <= {"caddy", "sshd"}, listeners
    assert {port for name, addr, port in public if name == "caddy"} == {tls_gateway_port, tls_ide_port}, listeners
    assert {port for name, addr, port in listeners if _loopback(addr)} >= {stack.gateway_port, ide_port}, listeners
    assert all(port not in (80, 443, 2019) or name == "sshd" for name, addr, port in listeners), listeners

    # No key in the -vvv output: the gateway's master and the IDE's keys, the rented servers' key,
    # the providers' API key, the IDE's password and the proxy CA's private key.
    secrets = {"master": host.exec(["cat", HOST_DIR + "/litellm/master_key"]).stdout.strip(),
               "ide": ide_key, "vllm": (stack.out / "vllm_api_key").read_text().strip(), "provider": API_KEY,
               "password": re.search(r"^password: *(\S+)", host.exec(
                   ["cat", local["code-server"]["attributes"]["password_file"]]).stdout, re.M).group(1).strip('"'),
               "ca key": "".join(host.exec(["cat", "/var/lib/codestack-proxy/%s/data/pki/authorities/local/root.key"
                                            % STACK_ID]).stdout.splitlines()[1:-1])[:64]}
    for what, secret in secrets.items():
        assert len(secret) >= 8 and secret not in first.stdout + first.stderr, what

    second = stack.run("site.yml", variables, inventory, json_output=True)
    _ok(second)
    assert set(_changed(second).values()) == {0}, second.stdout[-4000:]
    print("remote build %.1f s, re-run %.1f s" % (first.wall_s, second.wall_s))

    # A second stack on the same control host is refused before anything is rented for it.
    other = stack.tmp / "second-stack"
    other.mkdir()
    (other / "plan.json").write_text(json.dumps(dict(json.loads(plan_file.read_text()), stack_id="codestack-second")))
    asked = (stack.runpod.snapshot()["counters"]["graphql"], stack.vast.snapshot()["counters"]["requests"])
    refused = stack.run("provision.yml", dict(variables, codestack_output=str(other)), inventory)
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert ("control already serves another stack: unit codestack-litellm runs /var/lib/codestack/%s/litellm/ctl.sh"
            % STACK_ID) in refused.stdout, refused.stdout[-3000:]
    assert (stack.runpod.snapshot()["counters"]["graphql"], stack.vast.snapshot()["counters"]["requests"]) == asked

    # Scale to zero from the control host: on the accelerated clock (the scale stage restarts
    # the waker with it) the idle machine stops within seconds, and a request through TLS wakes it.
    waker_status = local["waker"]["attributes"]["status_url"]

    def big_state():
        with urllib.request.urlopen(waker_status, timeout=10) as answer:
            return json.load(answer)["deployments"]["big-qwen-h100"]
    stack.env["CODESTACK_CLOCK_SCALE"] = str(CLOCK_SCALE)
    try:
        _ok(stack.run("scale.yml", variables, inventory))
    finally:
        stack.env.pop("CODESTACK_CLOCK_SCALE")
    machine = big_state()["resource_id"]
    _wait_for(lambda: big_state()["state"] == "stopped", 60, "the waker to stop the idle machine")
    host_copy = json.loads(host.exec(["cat", HOST_DIR + "/state.json"]).stdout)
    assert [r.get("stopped_at") for r in host_copy["resources"] if r["id"] == machine][0]
    assert _ask(proxy["urls"]["gateway"], ide_key, "architect", trusted)["choices"][0]["message"]["content"]
    assert big_state()["wakes"] == 1 and big_state()["stops"] >= 1

    # The guard's settings (the teardown credentials among them) are 0600 files of its own.
    settings = HOST_DIR + "/budget-guard/%s.json" % STACK_ID
    assert host.exec(["stat", "-c", "%a %U", settings]).stdout.split() == ["600", "root"]
    assert json.loads(host.exec(["cat", settings]).stdout)["command_env"]["RUNPOD_API_KEY"]

    # Hours of billing in seconds: once this controller run has exited, the guard alone stops
    # the rented GPUs at the budget.
    _ok(stack.run("guard.yml", dict(variables, codestack_budget_clock_scale=200000), inventory))
    # The stage took back what the waker recorded on the host: the stop, now an interval.
    record = next(r for r in stack.state()["resources"] if r["id"] == machine)
    assert len(record.get("stopped_intervals") or []) >= 1, record
    _wait_for(lambda: stack.live()["runpod_cost_per_hr"] == 0 and stack.live()["vast_dph_running"] == 0,
              180, "the guard on the control host to stop the rented GPUs")

    def stop_event():
        status = json.loads(host.exec(["cat", HOST_DIR + "/budget-guard/%s-status.json" % STACK_ID]).stdout)
        return [e for e in status["events"] if e["kind"] == "stop"]
    # The guard records the stop once its teardown run (on the host) has returned.
    stops = _wait_for(stop_event, 180, "the guard's stop event")
    assert stops[-1]["rc"] == 0, stops
    assert stack.live()["runpod_pods"] == 1 and stack.live()["vast_instances"] == 1   # stopped, kept

    # Teardown from the controller: the paid machines at the fakes, the services on the host.
    down = stack.teardown()
    assert down.returncode != 0 and "Not stopped" in down.stdout and "control" in down.stdout, down.stdout[-3000:]
    _ok(stack.run("teardown.yml", {"codestack_output": str(stack.out)}, inventory))
    live = stack.live()
    assert (live["runpod_pods"], live["vast_instances"]) == (0, 0)
    for resource in local.values():
        unit = resource["attributes"]["stop_argv"][-1]
        assert host.exec(["systemctl", "is-active", unit], check=False).stdout.strip() != "active", unit
    assert stack.state()["resources"] == []
