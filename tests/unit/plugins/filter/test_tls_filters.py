"""tls_fingerprint against the cryptography package's own fingerprint of the same certificate."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.llmops.codestack.plugins.filter import tls


def _certificate():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"Caddy Local Authority - test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def test_fingerprint_is_sha256_of_the_der_in_colon_hex():
    cert = _certificate()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    expected = ":".join("%02X" % b for b in cert.fingerprint(hashes.SHA256()))
    assert tls.tls_fingerprint(pem) == expected
    # The first certificate of a chain, whatever surrounds it.
    other = _certificate().public_bytes(serialization.Encoding.PEM).decode()
    assert tls.tls_fingerprint("subject=...\n" + pem + other) == expected
    assert tls.FilterModule().filters()["tls_fingerprint"] is tls.tls_fingerprint


@pytest.mark.parametrize("text", ["", None, "no certificate", "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"])
def test_no_certificate_fails(text):
    with pytest.raises(tls.AnsibleFilterError, match="tls_fingerprint"):
        tls.tls_fingerprint(text)
