"""stack_tls: one private authority per deployment, created once, never returned as a key."""

import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.modules import stack_tls


@pytest.fixture
def run(capsys):
    def _run(path, check=False, **extra):
        args = dict({"path": str(path), "common_name": "codestack s coder", "_ansible_check_mode": check},
                    **extra)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                stack_tls.main()
        return json.loads(capsys.readouterr().out)
    return _run


def test_check_mode_then_create_then_repeat(run, tmp_path):
    where = tmp_path / "tls" / "coder"
    planned = run(where, check=True)
    assert planned["changed"] is True and not where.exists()
    made = run(where)
    assert made["changed"] is True
    again = run(where)
    assert again["changed"] is False
    assert again["stack_tls"]["fingerprint_sha256"] == made["stack_tls"]["fingerprint_sha256"]
    assert stat.S_IMODE(os.stat(where / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
    assert "PRIVATE" not in json.dumps(again)
    cert = x509.load_pem_x509_certificate(again["stack_tls"]["ca_pem"].encode())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_a_mismatched_pair_fails(run, tmp_path):
    run(tmp_path / "a")
    run(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    result = run(tmp_path / "a")
    assert result["failed"] is True and "do not belong together" in result["msg"]
