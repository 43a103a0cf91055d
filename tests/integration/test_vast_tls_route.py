"""The gateway's route to a Vast.ai instance is verified HTTPS, end to end, and works.

The Vast.ai fake runs the container command gpu_provision sent (entrypoint and arguments, as
the real machine would; only the vLLM program is stood in for, relaying to a real llama.cpp),
so the TLS the instance's port serves is the TLS that command sets up: the certificate it issues
itself for its public IP from the deployment's private authority. The real LiteLLM proxy reaches
it trusting that authority alone.
"""

import hashlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from _provider_helpers import assert_ok, run_provider_playbook, stack_provision_book
from _services import free_port, start_llamacpp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from vast_fake import VastFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.filter.vllm import vllm_args  # noqa: E402

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "sk-tls-route-key"
MODEL = {"key": "qwen2.5-coder-7b", "name": "Qwen2.5-Coder-7B-Instruct", "hf_repo": "Qwen/Qwen2.5-Coder-7B-Instruct",
         "revision": "main", "gated": False, "quantization": "fp16", "vllm_quantization": None,
         "max_model_len": 2048, "licence": "apache-2.0"}


def plan(stack_id="codestack-tls"):
    deployment = {"name": "coder-qwen", "provider": "vast", "offer_id": "vast:RTX 4090", "pricing": "on_demand",
                  "gpu": {"name": "RTX 4090", "id": "rtx4090", "provider_id": "RTX 4090", "count": 1, "vram_gb": 24},
                  "price_per_hour_usd": 0.45, "model": MODEL, "engine": "vllm", "roles": ["coder"],
                  "alternatives": []}
    return {"schema_version": 1, "stack_id": stack_id, "deployments": [deployment],
            "roles": {"coder": {"deployment": "coder-qwen", "alias": "coder"}}}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


def _self_signed_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "someone else")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _get(url, context=None, key=KEY):
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
        return answer.status, json.loads(answer.read())


def test_gateway_reaches_the_instance_over_pinned_tls(tmp_path, upstream):
    fake = VastFake(api_key="test-key", created_delay=0.2, running_delay=0.5, serve_ports=True,
                    upstream=upstream, machine_dir=str(tmp_path / "machines")).start()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan()))
    out = tmp_path / "out"
    out.mkdir()
    try:
        proc = run_provider_playbook(
            os.path.join(HERE, "vast", "tls_route.yml"), tmp_path,
            {"plan_file": str(plan_file), "out_dir": str(out), "vllm_key": KEY, "wait_timeout": 60,
             "gateway_port": free_port()},
            dict(VAST_API_KEY="test-key", VAST_URL=fake.url))
        assert_ok(proc)
        result = json.loads((out / "result.json").read_text())
        coder = result["results"]["coder-qwen"]
        snap = fake.snapshot()
    finally:
        fake.stop()

    # What the machine ran: vllm_server's arguments for the plan option, unchanged, behind the
    # entrypoint that issues the certificate; the CA key went as a secret, not on the command line.
    boot = snap["boots"][0]
    assert boot["entrypoint"] == "sh" and boot["args"][0] == "-c" and boot["args"][2] == "codestack-vllm"
    expected = vllm_args({"model": MODEL["hf_repo"], "revision": "main", "served_model_name": MODEL["key"],
                          "host": "0.0.0.0", "port": 8000, "dtype": "auto", "tensor_parallel_size": 1,
                          "max_model_len": 2048, "gpu_memory_utilization": 0.9,
                          "enable_prefix_caching": True})
    assert boot["args"][3:] == ["python3", "-m", "vllm.entrypoints.openai.api_server"] + expected
    assert "BEGIN" not in " ".join(boot["args"])
    # The command issued the certificate and ran the program with it (the stand-in logs HTTPS).
    log = open(boot["log"]).read()
    assert "codestack: serving TLS for 127.0.0.1" in log and "on https://127.0.0.1:" in log
    assert [s["what"] for s in boot["substitutions"]][:1] == ["program"]

    url = coder["endpoint_url"]
    assert url.startswith("https://127.0.0.1:") and url.endswith("/v1")
    ca_file = coder["tls_ca_file"]
    ca_pem = open(ca_file).read()
    der = ssl.PEM_cert_to_DER_cert(ca_pem)
    assert coder["tls_fingerprint_sha256"] == ":".join("%02X" % b for b in hashlib.sha256(der).digest())
    assert oct(os.stat(os.path.join(os.path.dirname(ca_file), "ca.key")).st_mode & 0o777) == "0o600"

    # The route LiteLLM uses: HTTPS, trusting that authority alone; the answer came through it.
    config = yaml.safe_load((out / "litellm" / "config.yaml").read_text())
    route = next(m for m in config["model_list"] if m["model_name"] == "coder")
    assert route["litellm_params"]["api_base"] == url
    assert open(route["litellm_params"]["ssl_verify"]).read() == ca_pem
    assert result["answer"]["choices"][0]["message"]["content"] is not None
    assert any("ready" in line for line in result["waited"][0])

    # Neither the CA key nor the model server's key is in the state file.
    state = (out / "state.json").read_text()
    key_pem = open(os.path.join(os.path.dirname(ca_file), "ca.key")).read()
    assert "PRIVATE KEY" not in state and KEY not in state
    assert key_pem.strip().splitlines()[1] not in proc.stdout


def test_the_instance_port_speaks_only_verified_tls(tmp_path, upstream):
    """What a client (or an eavesdropper) meets on the instance's public port."""
    fake = VastFake(api_key="test-key", created_delay=0.1, running_delay=0.2, serve_ports=True,
                    upstream=upstream, machine_dir=str(tmp_path / "machines")).start()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan("codestack-tls-port")))
    out = tmp_path / "out"
    out.mkdir()
    book = stack_provision_book(tmp_path / "rent.yml", plan_file, out / "state.json", KEY, then=[
        {"llmops.codestack.model_server_wait": {
            "url": "{{ gpu_provision_results['coder-qwen'].endpoint_url | regex_replace('/v1$', '') }}",
            "api_key": KEY, "ca_path": "{{ gpu_provision_results['coder-qwen'].tls_ca_file }}",
            "metrics_path": "", "wait_timeout": 60, "wait_sleep": 1}},
        {"ansible.builtin.copy": {"dest": str(out / "results.json"), "mode": "0600",
                                  "content": "{{ gpu_provision_results | to_json }}"}},
    ])
    try:
        proc = run_provider_playbook(str(book), tmp_path, {}, dict(VAST_API_KEY="test-key", VAST_URL=fake.url))
        assert_ok(proc)
        coder = json.loads((out / "results.json").read_text())["coder-qwen"]
        base = coder["endpoint_url"][:-len("/v1")]
        plain = base.replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            _get(plain + "/v1/models")   # no plaintext: the port speaks TLS only
        with pytest.raises(urllib.error.URLError) as err:
            _get(base + "/v1/models")    # the system store does not vouch for it
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
        stranger = tmp_path / "stranger.pem"
        stranger.write_bytes(_self_signed_ca())
        with pytest.raises(urllib.error.URLError) as err:
            _get(base + "/v1/models", ssl.create_default_context(cafile=str(stranger)))
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)   # pinned: another authority fails
        pinned = ssl.create_default_context(cafile=coder["tls_ca_file"])
        status, body = _get(base + "/v1/models", pinned)
        assert status == 200 and body["data"][0]["id"] == MODEL["key"]
        with pytest.raises(urllib.error.HTTPError) as denied:
            _get(base + "/v1/models", pinned, key="sk-wrong")
        assert denied.value.code == 401
    finally:
        fake.stop()   # stops the machines too
