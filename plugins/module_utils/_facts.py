# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts ``ansible.builtin.setup`` gathers, with its own collectors, for llmops.codestack.host_facts.

The module runs this on the host; its action plugin runs it in Ansible's worker process where
that process is the host's Python (plugin_utils/_inprocess.py), instead of shipping the setup
module (about 1 s a call on 2 busy cores against 0.07 s).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.facts import ansible_collector, default_collectors
from ansible.module_utils.facts.namespace import PrefixFactNamespace

ARGUMENT_SPEC = dict(
    gather_subset=dict(type="list", elements="str", default=["min"]),
    gather_timeout=dict(type="int", default=10),
    fact_path=dict(type="path", default="/etc/ansible/facts.d"),
)

# What ansible.builtin.setup always gathers (its minimal_gather_subset).
MINIMAL_GATHER_SUBSET = frozenset(["apparmor", "caps", "cmdline", "date_time", "distribution", "dns", "env",
                                   "fips", "local", "lsb", "pkg_mgr", "platform", "python", "selinux",
                                   "service_mgr", "ssh_pub_keys", "user"])


class FactsError(Exception):
    """A subset the collectors do not know."""


def gather(module):
    """The host's facts for ``module.params`` (``gather_subset``, ``gather_timeout``,
    ``fact_path``), as ``setup`` returns them: ``ansible_``-prefixed, with ``gather_subset`` and
    ``module_setup``. ``module`` answers ``run_command``, ``get_bin_path`` and ``params`` as
    AnsibleModule does (the collectors ask it)."""
    params = module.params
    try:
        collector = ansible_collector.get_ansible_collector(
            all_collector_classes=default_collectors.collectors,
            namespace=PrefixFactNamespace(namespace_name="ansible", prefix="ansible_"),
            filter_spec=[], gather_subset=params["gather_subset"], gather_timeout=params["gather_timeout"],
            minimal_gather_subset=MINIMAL_GATHER_SUBSET)
    except (TypeError, ValueError, LookupError) as exc:
        raise FactsError(str(exc))
    except Exception as exc:  # CollectorNotFoundError, CycleFoundInFactDeps, UnresolvedFactDep
        raise FactsError("%s: %s" % (type(exc).__name__, exc))
    facts = collector.collect(module=module)
    facts["gather_subset"] = params["gather_subset"]
    facts["module_setup"] = True
    return facts
