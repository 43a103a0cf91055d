# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``tls_fingerprint``: the SHA-256 fingerprint of a PEM certificate, as clients show it.

Its documentation lives in tls_fingerprint.yml beside this file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ansible.errors import AnsibleFilterError

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


def tls_fingerprint(pem):
    """SHA-256 of the DER encoding of the first certificate in ``pem``: 32 colon-separated
    upper-case hex pairs (what ``openssl x509 -fingerprint -sha256`` and browsers print)."""
    match = _PEM.search(pem or "") if isinstance(pem, str) else None
    if not match:
        raise AnsibleFilterError("tls_fingerprint: no PEM certificate in the input")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AnsibleFilterError("tls_fingerprint: the certificate is not valid base64: %s" % exc)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class FilterModule(object):
    def filters(self):
        return {"tls_fingerprint": tls_fingerprint}
