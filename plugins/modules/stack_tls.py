#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: stack_tls
short_description: Keep the private certificate authority that a rented model server's TLS chains to
version_added: 0.3.0
description:
  - Creates, once, a private key (EC P-256) and a self-signed CA certificate in O(path)
    (C(ca.key) mode 0600, C(ca.pem) mode 0644) for one rented model server.
  - The model server's container receives both and issues itself a certificate for its public
    IP address when it starts (see role P(llmops.codestack.vllm_server#role), C(tls_command)); the
    gateway trusts C(ca.pem) alone for that route, which pins the link to the holder of the key.
    One authority per deployment, so a rented host that reads its key can impersonate no other one.
  - A second run finds the files and changes nothing; an unreadable or mismatched pair fails.
  - The key is never returned; read it on the controller with C(ansible.builtin.file) and pass
    it to the container as a secret variable.
author:
  - llmops.codestack maintainers (@llmops)
requirements:
  - cryptography >= 3.1 on the host that runs the module
attributes:
  check_mode:
    support: full
    description: Nothing is written in check mode; the result says whether it would be.
  diff_mode:
    support: none
    description: The files hold key material; no diff is shown.
options:
  path:
    description: Directory of the authority (created with mode 0700).
    type: path
    required: true
  common_name:
    description: Common name of the CA certificate, for example C(codestack <stack> <deployment>).
    type: str
    required: true
  valid_days:
    description: Validity of a new CA certificate in days.
    type: int
    default: 397
"""

EXAMPLES = r"""
- name: The authority of the coder's Vast.ai instance
  llmops.codestack.stack_tls:
    path: "{{ codestack_output }}/tls/coder"
    common_name: codestack shop coder
  register: coder_tls
"""

RETURN = r"""
stack_tls:
  description: The authority.
  returned: always
  type: dict
  contains:
    ca_file:
      description: Path of the CA certificate (PEM), the file the gateway trusts for this route.
      type: str
    key_file:
      description: Path of the private key (PEM, mode 0600).
      type: str
    ca_pem:
      description: The CA certificate (public). Empty in check mode before it exists.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint of the CA certificate, colon-separated hex.
      type: str
"""

import datetime
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_ERROR = None
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_ERROR = traceback.format_exc()


def _fingerprint(cert):
    return ":".join("%02X" % b for b in bytearray(cert.fingerprint(hashes.SHA256())))


class StackTls:
    def __init__(self, module):
        self.module = module
        self.path = module.params["path"]
        self.ca_file = os.path.join(self.path, "ca.pem")
        self.key_file = os.path.join(self.path, "ca.key")
        self.changed = False

    def _get(self):
        if not (os.path.exists(self.ca_file) and os.path.exists(self.key_file)):
            return None
        with open(self.ca_file, "rb") as handle:
            pem = handle.read()
        with open(self.key_file, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        cert = x509.load_pem_x509_certificate(pem)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            self.module.fail_json(msg="%s and %s do not belong together; remove both to make a new "
                                      "authority (the model server must then be recreated)"
                                      % (self.ca_file, self.key_file))
        return cert, pem

    def _create(self):
        p = self.module.params
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, p["common_name"])])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=p["valid_days"]))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        with open(self.ca_file, "wb") as handle:
            handle.write(pem)
        os.chmod(self.ca_file, 0o644)
        return cert, pem

    def present(self):
        found = self._get()
        if found is None:
            self.changed = True
            if self.module.check_mode:
                return {"ca_file": self.ca_file, "key_file": self.key_file, "ca_pem": "",
                        "fingerprint_sha256": ""}
            found = self._create()
        cert, pem = found
        return {"ca_file": self.ca_file, "key_file": self.key_file,
                "ca_pem": pem.decode("ascii"), "fingerprint_sha256": _fingerprint(cert)}


def define_module():
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            common_name=dict(type="str", required=True),
            valid_days=dict(type="int", default=397),
        ),
        supports_check_mode=True,
    )


def main():
    module = define_module()
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_ERROR)
    if module.params["valid_days"] < 1:
        module.fail_json(msg="valid_days must be at least 1")
    tls = StackTls(module)
    result = tls.present()
    module.exit_json(changed=tls.changed, stack_tls=result)


if __name__ == "__main__":
    main()
