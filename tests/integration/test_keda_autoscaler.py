"""keda_autoscaler through real ansible-playbook runs.

- Render-only (no cluster can run here): every manifest is written, core objects pass
  ``kubernetes-validate -k 1.33 --strict``, KEDA objects pass their vendored CRD schemas
  (tests/data/keda-crds), and the fields that matter are asserted. Check mode writes nothing,
  a second run changes nothing, bad input fails before anything is written.
- Live: runs the role against the cluster of ``KUBECONFIG`` (check mode, real, repeat, then
  absent); skipped with a message when no cluster is configured.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import crd_schema  # noqa: E402

pytestmark = pytest.mark.integration

PLAN = {
    "schema_version": 1,
    "stack_id": "codestack-demo",
    "roles": {
        "architect": {"alias": "architect", "deployment": "arch-qwen-32b-awq-a100"},
        "coder": {"alias": "coder", "deployment": "coder-qwen2-5-coder-7b-awq-rtx4090"},
        "debugger": {"alias": "debugger", "deployment": "coder-qwen2-5-coder-7b-awq-rtx4090"},
        "reviewer": {"alias": "reviewer", "deployment": "local-smol"},
    },
    "deployments": [
        {"name": "coder-qwen2-5-coder-7b-awq-rtx4090", "provider": "kubernetes", "engine": "vllm",
         "roles": ["coder", "debugger"], "cold_start_s": 180, "max_replicas": 3},
        {"name": "arch-qwen-32b-awq-a100", "provider": "kubernetes", "engine": "vllm",
         "roles": ["architect"], "cold_start_s": 420},
        {"name": "local-smol", "provider": "local", "engine": "llamacpp", "roles": ["reviewer"],
         "cold_start_s": 2},
    ],
}
EXTRA = {
    "keda_autoscaler_targets": [{"name": "arch-qwen-32b-awq-a100", "fallback": {
        "litellm_params": {"model": "openai/cheap-coder", "api_base": "https://example.invalid/v1"},
        "after_s": 30}}],
    "keda_autoscaler_prometheus_auth_secret": {"name": "prometheus-token", "key": "token"},
}


def playbook(name, extra, tmp_path, check=False, expect_rc=0):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local",
            "-e", json.dumps(dict(extra, ansible_python_interpreter=sys.executable)),
            os.path.join(HERE, "targets", name, "playbook.yml")]
    if check:
        argv[1:1] = ["--check", "--diff"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect_rc, out[-5000:]
    return out


def recap(out):
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out)
    assert match, out[-3000:]
    return {"ok": int(match[1]), "changed": int(match[2]), "failed": int(match[4])}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One check-mode run, one real run and one repeat of the render-only playbook."""
    tmp_path = tmp_path_factory.mktemp("keda-render")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(PLAN))
    out_dir = tmp_path / "out"
    extra = dict(EXTRA, render_dir=str(out_dir), plan_file=str(plan_file))
    checked = playbook("keda_autoscaler_render", extra, tmp_path, check=True)
    written_in_check = os.path.exists(out_dir)
    # files of an earlier render that no longer match an object go; other files stay
    out_dir.mkdir()
    (out_dir / "keda-99-scaledobject-gone.yml").write_text("kind: ScaledObject\n")
    (out_dir / "notes.yml").write_text("mine: true\n")
    first = playbook("keda_autoscaler_render", extra, tmp_path)
    second = playbook("keda_autoscaler_render", extra, tmp_path)
    return {"dir": out_dir, "check": checked, "written_in_check": written_in_check,
            "first": first, "second": second, "tmp": tmp_path, "extra": extra}


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def manifests(out_dir):
    return {os.path.basename(p): load(p) for p in sorted(glob.glob(str(out_dir / "keda-*.yml")))}


def test_check_mode_writes_nothing_and_second_run_changes_nothing(rendered):
    assert not rendered["written_in_check"]
    assert recap(rendered["check"])["changed"] > 0
    assert recap(rendered["first"])["changed"] > 0
    # the post_task of the test playbook rewrites its own copy only when content changes
    assert recap(rendered["second"])["changed"] == 0, rendered["second"][-3000:]


def test_every_object_is_valid(rendered):
    objects = manifests(rendered["dir"])
    assert [o["kind"] for o in objects.values()] == [
        "Namespace",
        "TriggerAuthentication", "HTTPScaledObject", "ScaledObject",
        "TriggerAuthentication", "HTTPScaledObject", "ScaledObject"]
    core = [name for name, obj in objects.items() if "." not in obj["apiVersion"].split("/")[0]]
    assert core
    proc = subprocess.run(["kubernetes-validate", "-k", "1.33", "--strict"]
                          + [str(rendered["dir"] / name) for name in core],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == len(core), proc.stdout + proc.stderr
    schemas = crd_schema.load_schemas()
    for name, obj in objects.items():
        if name in core:
            continue
        crd_schema.validate(obj, schemas)
        crd_schema.check_cel_rules(obj)


def test_fields_that_matter(rendered):
    objects = list(manifests(rendered["dir"]).values())
    hsos = {o["metadata"]["name"]: o for o in objects if o["kind"] == "HTTPScaledObject"}
    sos = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    # the llama.cpp deployment and the one outside Kubernetes are not scaled by KEDA
    assert sorted(hsos) == sorted(sos) == ["arch-qwen-32b-awq-a100", "coder-qwen2-5-coder-7b-awq-rtx4090"]
    coder = hsos["coder-qwen2-5-coder-7b-awq-rtx4090"]["spec"]
    assert coder["replicas"] == {"min": 0, "max": 3}          # max from the plan
    assert coder["timeouts"]["conditionWait"] == "270s"        # 180 s cold start x 1.5
    arch = hsos["arch-qwen-32b-awq-a100"]["spec"]
    assert arch["replicas"] == {"min": 0, "max": 1}
    assert arch["timeouts"]["conditionWait"] == "30s"          # the fallback answers after 30 s
    for name, so in sos.items():
        triggers = {t["type"]: t for t in so["spec"]["triggers"]}
        assert triggers["external-push"]["metadata"]["httpScaledObject"] == name
        assert "vllm:num_requests_waiting{" in triggers["prometheus"]["metadata"]["query"]
        assert so["spec"]["minReplicaCount"] == 0
    values = load(rendered["dir"] / "values-http-add-on.yml")
    assert values["interceptor"]["replicas"]["waitTimeout"] == "270s"
    assert values["interceptor"]["responseHeaderTimeout"] == "600s"


def test_gateway_fragment(rendered):
    gateway = load(rendered["dir"] / "gateway.yml")
    assert oct(os.stat(rendered["dir"] / "gateway.yml").st_mode & 0o777) == "0o600"
    with open(rendered["tmp"] / "gateway-fact.json") as handle:
        assert json.load(handle) == gateway  # the fact the gateway role merges
    groups = {m["model_name"]: m["litellm_params"] for m in gateway["model_list"]}
    assert sorted(groups) == ["architect", "architect-fallback", "coder", "debugger"]
    assert groups["coder"]["extra_headers"]["Host"] == \
        "coder-qwen2-5-coder-7b-awq-rtx4090.codestack.svc.cluster.local"
    assert groups["coder"]["api_base"].startswith("http://keda-add-ons-http-interceptor-proxy.keda.")
    assert gateway["router_settings"]["fallbacks"] == [{"architect": ["architect-fallback"]}]


def test_leftover_manifests_are_removed(rendered):
    assert not (rendered["dir"] / "keda-99-scaledobject-gone.yml").exists()
    assert (rendered["dir"] / "notes.yml").exists()


def test_bad_input_fails_before_writing(tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(PLAN))
    out = playbook("keda_autoscaler_render", {
        "render_dir": str(tmp_path / "out"), "plan_file": str(plan_file),
        "keda_autoscaler_targets": [{"name": "coder-qwen2-5-coder-7b-awq-rtx4090", "min_replicas": 4}],
    }, tmp_path, expect_rc=2)
    assert "min_replicas 4 > max_replicas 3" in out
    assert not (tmp_path / "out").exists()


def test_live_cluster(tmp_path):
    """Against a real cluster: check mode, real run, repeat (no change), then absent."""
    if shutil.which("helm") is None and os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is set but helm is not installed on this controller")
    # The playbook must at least parse (kubernetes.core resolves) on every machine.
    proc = subprocess.run(["ansible-playbook", "--syntax-check", "-i", "localhost,",
                           os.path.join(HERE, "targets", "keda_autoscaler_live", "playbook.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not os.path.exists(kubeconfig.split(os.pathsep)[0]):
        pytest.skip("no Kubernetes cluster: set KUBECONFIG to a k3s (or any) cluster with room "
                    "for KEDA to run the live keda_autoscaler test")
    out = playbook("keda_autoscaler_live", {"kubeconfig": kubeconfig}, tmp_path)
    assert recap(out)["failed"] == 0


def test_contract_with_vllm_server(tmp_path):
    """vllm_server's Deployment/Service and keda_autoscaler's objects fit together."""
    if not os.path.isdir(os.path.join(os.path.dirname(os.path.dirname(HERE)), "roles", "vllm_server")):
        pytest.skip("roles/vllm_server is not in this tree")
    playbook("keda_autoscaler_vllm", {"render_dir": str(tmp_path / "out")}, tmp_path)
    (vllm_file,) = glob.glob(str(tmp_path / "out" / "vllm" / "*.yaml"))
    with open(vllm_file) as handle:
        vllm = {d["kind"]: d for d in yaml.safe_load_all(handle) if d}
    proc = subprocess.run(["kubernetes-validate", "-k", "1.33", "--strict", vllm_file],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deployment, service = vllm["Deployment"], vllm["Service"]
    objects = list(manifests(tmp_path / "out" / "keda").values())
    (hso,) = [o for o in objects if o["kind"] == "HTTPScaledObject"]
    (so,) = [o for o in objects if o["kind"] == "ScaledObject"]
    schemas = crd_schema.load_schemas()
    for obj in (hso, so):
        crd_schema.validate(obj, schemas)
    ref = hso["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == (deployment["kind"], deployment["metadata"]["name"])
    assert ref["service"] == service["metadata"]["name"]
    assert ref["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert hso["metadata"]["namespace"] == so["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert so["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hso["spec"]["timeouts"]["conditionWait"] == "360s"
    # KEDA owns the replica count, and the interceptor forwards only to ready (= loaded) pods
    assert "replicas" not in deployment["spec"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    # the Prometheus query asks for the name vLLM serves (its model_name label)
    args = container["args"]
    served = args[args.index("--served-model-name") + 1]
    (prom,) = [t for t in so["spec"]["triggers"] if t["type"] == "prometheus"]
    assert 'model_name="%s"' % served in prom["metadata"]["query"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    gateway = load(tmp_path / "out" / "keda" / "gateway.yml")
    assert {m["litellm_params"]["model"] for m in gateway["model_list"]} == {"hosted_vllm/" + served}
