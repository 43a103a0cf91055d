"""Make the checkout importable as ``ansible_collections.llmops.codestack``.

The repository root is the collection root. Tests (and the ansible-playbook runs they start)
see it through a symlink tree outside the checkout, so no path inside the repo loops.
"""

import hashlib
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_root():
    digest = hashlib.sha1(REPO.encode()).hexdigest()[:10]
    root = os.path.join(tempfile.gettempdir(), "codestack-colls-" + digest)
    link = os.path.join(root, "ansible_collections", "llmops", "codestack")
    if os.path.realpath(link) != REPO:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        tmp = link + ".%d" % os.getpid()
        os.symlink(REPO, tmp)
        os.replace(tmp, link)
    return root


COLLECTIONS_ROOT = _collections_root()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_ROOT
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
