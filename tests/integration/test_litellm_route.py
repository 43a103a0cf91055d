"""litellm_route through real ansible-playbook runs.

- api backend: against the admin API fake (check mode / real / repeat for create, update, delete).
- config backend: against the REAL LiteLLM proxy: route added -> request served after a restart;
  route removed -> the model is gone (400 "Invalid model name" on chat, 404 on /v1/models/<id>).
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from _services import start_litellm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))

from litellm_admin_fake import FakeLitellmAdmin  # noqa: E402
from openai_backend_fake import FakeOpenAIBackend  # noqa: E402

pytestmark = pytest.mark.integration

MASTER = "sk-test-master-0123456789"
BACKEND_KEY = "sk-backend-key-9876543210"


def playbook(name, extra, tmp_path):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local",
            "-e", json.dumps(dict(extra, ansible_python_interpreter=sys.executable)), os.path.join(HERE, "targets", name, "playbook.yml")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def chat(url, model, key=MASTER):
    req = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get_status(url, key=MASTER):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_backend_against_the_admin_fake(tmp_path):
    with FakeLitellmAdmin(MASTER) as fake:
        out = playbook("litellm_route_api", {"litellm_url": fake.url, "litellm_key": MASTER,
                                             "backend_key": BACKEND_KEY}, tmp_path)
        assert "failed=0" in out
        assert BACKEND_KEY not in out
        posts = [path for method, path in fake.state.calls if method == "POST"]
        # one create, one update, one delete: check mode and repeats sent nothing
        assert posts == ["/model/new", "/model/update", "/model/delete"]
        assert fake.state.deployments == []


@pytest.fixture
def proxy_setup(tmp_path):
    """A fake backend plus a real proxy whose config.yaml has the architect group only."""
    with FakeOpenAIBackend("reviewer-box", api_key=BACKEND_KEY) as backend, \
            FakeOpenAIBackend("architect-box") as other:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "model_list": [{"model_name": "architect",
                            "litellm_params": {"model": "openai/architect", "api_base": other.url,
                                               "api_key": "none"}}],
            "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        }))
        os.chmod(config, 0o600)
        env = {"LITELLM_MASTER_KEY": MASTER}
        services = []

        def restart():
            if services:
                services.pop().stop()
            services.append(start_litellm(config, env=env, log_path=str(tmp_path / "proxy.log")))
            return services[-1]

        try:
            yield config, backend, restart
        finally:
            for service in services:
                service.stop()


def test_config_backend_against_the_real_proxy(tmp_path, proxy_setup):
    config, backend, restart = proxy_setup
    proxy = restart()
    status, body = chat(proxy.url, "reviewer")
    assert status == 400 and "Invalid model name" in body["error"]["message"]

    extra = {"config_path": str(config), "backend_url": backend.url, "backend_key": BACKEND_KEY}
    playbook("litellm_route_config", extra, tmp_path)
    assert oct(os.stat(config).st_mode & 0o777) == "0o600"
    proxy = restart()
    status, body = chat(proxy.url, "reviewer")
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "hello from reviewer-box (reviewer-backend)"
    assert backend.requests == 1
    assert get_status(proxy.url + "/v1/models/reviewer") == 200

    playbook("litellm_route_config", dict(extra, route_state="absent"), tmp_path)
    proxy = restart()
    status, body = chat(proxy.url, "reviewer")
    assert status == 400 and "Invalid model name" in body["error"]["message"]
    assert get_status(proxy.url + "/v1/models/reviewer") == 404
    assert chat(proxy.url, "architect")[0] == 200
    assert backend.requests == 1
