# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The priced catalog: GPUs, models, offers, cold starts and cost-model parameters.

Dated YAML files under the collection's ``catalog/`` folder, each entry with ``source`` and
``as_of``; user files layered on top replace or add entries by ``id``. Validated with pydantic;
every problem becomes one ``CatalogError`` naming the file, the entry and the field. The format
is documented in ``docs/catalog.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import difflib
import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

from ansible_collections.llmops.codestack.plugins.module_utils._api_catalog import (
    API_MODELS,
    API_SECTIONS,
    check_api,
)
from ansible_collections.llmops.codestack.plugins.module_utils import _user_catalog

from typing import Annotated, Dict, List, Literal, Optional

from ansible_collections.llmops.codestack.plugins.module_utils._pydantic import (  # noqa: F401
    HAS_PYDANTIC,
    PYDANTIC_IMPORT_ERROR,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

ROLES = ("architect", "coder", "debugger", "reviewer")
PRICINGS = ("owned", "on_demand", "spot", "bid", "serverless")
BUNDLED_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            os.pardir, os.pardir, "catalog"))


class CatalogError(Exception):
    """The catalog cannot be used; the message names the file, entry, field and fix."""


if HAS_PYDANTIC:
    class _Entry(BaseModel):
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)
        id: str = Field(min_length=1)
        source: str = Field(min_length=1)
        as_of: datetime.date
        # the fields whose figure the source does not confirm (a third-party page, an old list)
        unverified: List[str] = Field(default_factory=list)

    class Gpu(_Entry):
        name: str
        kind: Literal["gpu", "cpu"] = "gpu"
        vram_gb: float = Field(gt=0)
        bandwidth_gbs: float = Field(gt=0)
        fp16_tflops: float = Field(gt=0)
        fp8: bool = False

    class QuantWeights(BaseModel):
        """One (model, quantization): its size and the repository holding exactly these weights.

        ``repo`` null: no such repository is known, so the planner does not offer it (fp16
        falls back to the model's ``hf_repo``, which holds the fp16 weights by definition).
        ``quantize_at_load``: vLLM quantizes the fp16 weights of ``repo`` while loading them
        (``--quantization fp8`` on an unquantized checkpoint): the download is fp16-sized.
        """
        model_config = ConfigDict(extra="forbid")
        weight_gb: float = Field(gt=0)
        repo: Optional[str] = None
        revision: Optional[str] = None
        gated: Optional[bool] = None
        licence: Optional[str] = None
        quantize_at_load: bool = False

    class Score(BaseModel):
        model_config = ConfigDict(extra="forbid")
        value: float = Field(ge=0, le=100)
        benchmark: str
        source: str = Field(min_length=1)
        as_of: datetime.date

    class Model(_Entry):
        name: str
        hf_repo: str
        params_b: float = Field(gt=0)
        active_params_b: Optional[float] = Field(default=None, gt=0)
        licence: str
        context: int = Field(gt=0)
        kv_kb_per_token: float = Field(gt=0)
        quantizations: Dict[str, QuantWeights] = Field(min_length=1)
        score: Score

        def weights(self, quant_id):
            """(repo, revision, gated, licence) of one quantization; repo None: not offered."""
            entry = self.quantizations[quant_id]
            repo = entry.repo or (self.hf_repo if quant_id == "fp16" else None)
            return repo, entry.revision, bool(entry.gated), entry.licence or self.licence

    class Offer(_Entry):
        provider: Literal["local", "runpod", "runpod_serverless", "vast", "hetzner",
                          "exoscale", "kubernetes"]
        pricing: Literal["owned", "on_demand", "spot", "bid", "serverless"]
        gpu: str
        provider_gpu_id: str
        count: int = Field(default=1, ge=1)
        price_per_hour: float = Field(ge=0)
        currency: str = "USD"
        region: str = "ALL"
        country: Optional[str] = None
        min_billing_hours: float = Field(default=0, ge=0)
        billing_period_hours: float = Field(default=0, ge=0)
        setup_fee: float = Field(default=0, ge=0)

    class Quantization(_Entry):
        bits: int = Field(gt=0)
        engine: Literal["vllm", "llamacpp"]
        vllm_quantization: Optional[str] = None
        needs_fp8: bool = False
        penalty: float = Field(ge=0)

    class ColdStart(_Entry):
        scheduling_s: float = Field(ge=0)
        image_pull_s: float = Field(ge=0)
        download_gbps: float = Field(ge=0)
        load_gb_per_s: float = Field(gt=0)

    class Engine(_Entry):
        init_s: float = Field(ge=0)

    class Measurement(_Entry):
        offer: Optional[str] = None
        gpu: Optional[str] = None
        gpu_count: int = Field(default=1, ge=1)
        model: str
        quantization: str
        engine: Optional[Literal["vllm", "llamacpp"]] = None
        decode_tok_s: float = Field(gt=0)
        prefill_tok_s: Optional[float] = Field(default=None, gt=0)
        ttft_s: Optional[float] = Field(default=None, gt=0)
        prompt_tokens: Optional[int] = Field(default=None, ge=0)
        samples: Optional[int] = Field(default=None, ge=1)
        measured_at: Optional[str] = None
        # how to reproduce it: the command, and its result file (relative to the collection)
        command: Optional[str] = None
        result: Optional[str] = None

    class Image(_Entry):
        engine: Literal["vllm", "llamacpp"]
        image: str = Field(min_length=1)
        version: Optional[str] = None
        cpu_package: Optional[str] = None
        program: Optional[List[str]] = None
        tested: bool
        gap: Optional[str] = None

    class Currency(_Entry):
        usd_per_unit: float = Field(gt=0)

    class ControlServer(_Entry):
        """A CPU server type the stack can create for its control plane, at a provider whose
        API lists no price (id: ``<provider>:<type>``; docs/control-host.md)."""
        provider: Literal["exoscale", "hetzner"]
        name: str = Field(min_length=1)
        cpus: int = Field(gt=0)
        memory_gib: float = Field(gt=0)
        # what is billed per hour (Hetzner: the gross price, VAT included, as the role records it)
        price_per_hour: float = Field(gt=0)
        # the most one month costs (Hetzner's monthly cap); None: no cap
        price_per_month: Optional[float] = Field(default=None, gt=0)
        currency: str = Field(min_length=3, max_length=3)
        # the root disk, billed per GB-hour while the server exists, and the size it is created with
        # (Hetzner: included in the server's price, so 0 per GB-hour)
        disk_price_per_gb_hour: float = Field(ge=0)
        disk_size_gb: int = Field(ge=10)
        billing: Literal["per_second", "per_hour", "per_started_hour"]
        # the public IPv4 address, where the provider bills it on a line of its own (Hetzner's
        # primary IP), billed like the server while the server exists
        address_price_per_hour: float = Field(default=0.0, ge=0)
        address_price_per_month: Optional[float] = Field(default=None, gt=0)
        # the location the price holds at (Hetzner prices by location; id <provider>:<type>:<location>)
        location: Optional[str] = None
        architecture: Optional[str] = None

    class Scaling(_Entry):
        """How a provider's deployments scale to zero and what it bills meanwhile (id: the
        provider; docs/cost-model.md, section 4b). A provider without an entry is always on."""
        mode: Literal["always_on", "idle_stop", "serverless", "keda"]
        idle_timeout_s: int = Field(default=0, ge=0)
        wake_policy: Literal["wait", "fallback"] = "wait"
        resume_keeps_image: bool = False
        resume_keeps_weights: bool = False
        disk_base_gb: float = Field(default=0, ge=0)
        container_disk_gb: float = Field(default=0, ge=0)
        storage_running_usd_per_gb_month: float = Field(default=0, ge=0)
        storage_stopped_usd_per_gb_month: float = Field(default=0, ge=0)
        wake_timeout_factor: float = Field(default=1.5, ge=1)
        wake_timeout_margin_s: float = Field(default=30, ge=0)

    class CostModel(_Entry):
        decode_efficiency: float = Field(gt=0, le=1)
        prefill_mfu: float = Field(gt=0, le=1)
        batching_factor: float = Field(ge=1)
        concurrent_sequences: int = Field(ge=1)
        gpu_memory_utilization: float = Field(gt=0, le=1)
        overhead_gb: float = Field(ge=0)
        multi_gpu_efficiency: float = Field(gt=0, le=1)
        prefix_cache_hit: float = Field(ge=0, lt=1)
        interruption_overhead: Dict[str, float] = Field(default_factory=dict)
        rework_reference_score: float = Field(ge=0, le=100)
        rework_per_point: float = Field(ge=0)
        quality_thresholds: Dict[Literal["draft", "standard", "high"], float]
        role_quality_weight: Dict[Literal["architect", "coder", "debugger", "reviewer"], float]
        role_context: Dict[Literal["architect", "coder", "debugger", "reviewer"],
                           Annotated[int, Field(gt=0)]]
        role_concurrency: Dict[Literal["architect", "coder", "debugger", "reviewer"],
                               Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
        deadline_weight: float = Field(ge=0)
        ttft_prompt_tokens: int = Field(default=1000, gt=0)
        residency_groups: Dict[str, List[str]] = Field(default_factory=dict)

    class RoleRatio(BaseModel):
        model_config = ConfigDict(extra="forbid")
        output_per_code_token: float = Field(ge=0)
        input_per_output: float = Field(ge=0)

    class ProjectWork(BaseModel):
        model_config = ConfigDict(extra="forbid")
        architect_output_base: float = Field(ge=0)
        architect_output_per_feature: float = Field(ge=0)
        input_per_output: float = Field(ge=0)

    class Estimator(_Entry):
        loc: Dict[Literal["low", "medium", "high"], float]
        tokens_per_loc: float = Field(gt=0)
        complexity_by_words: Dict[Literal["low", "medium"], int]
        roles: Dict[Literal["architect", "coder", "debugger", "reviewer"], RoleRatio]
        project: ProjectWork
        max_task_input_tokens: int = Field(default=2000000, gt=0)
        max_task_output_tokens: int = Field(default=200000, gt=0)
        quality_factor: Dict[Literal["draft", "standard", "high"], Dict[str, float]]

    SECTIONS = {
        "gpus": Gpu, "models": Model, "offers": Offer, "quantizations": Quantization,
        "cold_start": ColdStart, "engines": Engine, "measurements": Measurement,
        "currencies": Currency, "cost_model": CostModel, "estimator": Estimator,
        "images": Image, "scaling": Scaling, "control_servers": ControlServer,
    }
    SECTIONS.update(API_MODELS)
    SECTIONS[_user_catalog.SECTION] = _user_catalog.Cluster
else:  # pragma: no cover
    SECTIONS = {}

_SECTION_NAMES = ("gpus", "models", "offers", "quantizations", "cold_start", "engines",
                  "measurements", "currencies", "cost_model", "estimator", "images",
                  "scaling", "control_servers") + API_SECTIONS + (_user_catalog.SECTION,)


def _close(word, choices):
    found = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return found[0] if found else None


def _describe(exc, origin, section, index, entry_id, model):
    """One line per problem of one entry, each naming file, entry and field."""
    where = "%s[%s]" % (section, ("id=%s" % entry_id) if entry_id else index)
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        got = err.get("input")
        got_text = "" if err.get("type") == "missing" or isinstance(got, (dict, list)) \
            else " (got %r)" % (got,)
        fix = "add it" if err.get("type") == "missing" else "see docs/catalog.md for the format"
        if err.get("type") == "extra_forbidden":
            allowed = model.model_fields if len(err.get("loc", ())) == 1 else ()
            close = _close(err["loc"][-1], allowed)
            fix = ("did you mean '%s'?" % close) if close else "remove it or check its spelling"
        lines.append("catalog %s: %s.%s: %s%s; fix: %s"
                     % (origin, where, loc, err.get("msg"), got_text, fix))
    return lines


class Catalog(object):
    """Validated catalog entries by section and id, plus where they came from."""

    def __init__(self):
        self.sections = dict((name, {}) for name in _SECTION_NAMES)
        self.paths = []
        # each section is also an attribute: catalog.offers, catalog.gpus, ...
        for name, entries in self.sections.items():
            setattr(self, name, entries)

    def add(self, data, origin):
        """Layer one parsed file (a mapping of section -> list of entries) over this catalog;
        raise one CatalogError listing every problem of the file."""
        problems = self._add(data, origin)
        if problems:
            raise CatalogError(_joined(problems))

    def _add(self, data, origin):
        if data is None:
            return []
        if not isinstance(data, dict):
            return ["catalog %s: must be a mapping of sections (%s); got %s"
                    % (origin, ", ".join(_SECTION_NAMES), type(data).__name__)]
        problems = []
        for section, entries in data.items():
            if section not in SECTIONS:
                close = _close(section, _SECTION_NAMES)
                problems.append("catalog %s: unknown section '%s'; fix: %s" % (
                    origin, section, ("did you mean '%s'?" % close) if close else
                    "use one of %s" % ", ".join(_SECTION_NAMES)))
                continue
            if not isinstance(entries, list):
                problems.append("catalog %s: section '%s' must be a list of entries"
                                % (origin, section))
                continue
            model = SECTIONS[section]
            target = self.sections[section]
            for index, entry in enumerate(entries):
                entry_id = entry.get("id") if isinstance(entry, dict) else None
                try:
                    item = model.model_validate(entry)
                except ValidationError as exc:
                    problems.extend(_describe(exc, origin, section, index, entry_id, model))
                    continue
                earlier = target.get(item.id)
                if section == "measurements" and item.prefill_tok_s is None and earlier:
                    # a calibration run measures decode only: keep the prefill known before
                    item.prefill_tok_s = earlier.prefill_tok_s
                target[item.id] = item
                if section == _user_catalog.SECTION:   # a cluster's node pools are owned offers
                    for offer in _user_catalog.offer_entries(item):
                        self.offers[offer["id"]] = Offer.model_validate(offer)
        self.paths.append(origin)
        return problems

    def check(self):
        """Cross-references between sections; raise one CatalogError listing them all."""
        problems = []

        def need(section, key, what):
            if key not in self.sections[section]:
                close = _close(key, self.sections[section])
                problems.append("catalog: %s refers to unknown %s '%s'; fix: %s" % (
                    what, section, key, ("did you mean '%s'?" % close) if close else
                    "add it to section '%s' or correct the reference" % section))
        for name in ("cost_model", "estimator"):
            need(name, "default", "the planner")
        need("currencies", "USD", "the planner")
        from_clusters = _user_catalog.derived_offers(self)
        problems.extend(_user_catalog.check(self, need))
        for offer in self.offers.values():
            if offer.id in from_clusters:
                need("cold_start", offer.provider, "offers[id=%s]" % offer.id)
                continue
            what = "offers[id=%s]" % offer.id
            need("gpus", offer.gpu, what)
            need("currencies", offer.currency, what)
            need("cold_start", offer.provider, what)
        for model in self.models.values():
            for quant in model.quantizations:
                need("quantizations", quant, "models[id=%s]" % model.id)
        for quant in self.quantizations.values():
            need("engines", quant.engine, "quantizations[id=%s]" % quant.id)
        for image in self.images.values():
            if not image.tested and not image.gap:
                raise CatalogError("catalog: images[id=%s] is not the release the tests run; fix: "
                                   "state the difference in 'gap'" % image.id)
        for name, section in self.sections.items():
            if name in API_MODELS:
                continue  # checked by check_api
            for entry in section.values():
                named = getattr(entry, "unverified", None)
                if not named:
                    continue
                fields = set(type(entry).model_fields) - {"id", "source", "as_of", "unverified"}
                for field in named:
                    if field not in fields:
                        close = _close(field, fields)
                        problems.append("catalog: %s[id=%s].unverified: '%s' is not a field of "
                                        "the entry; fix: %s" % (
                                            name, entry.id, field, ("did you mean '%s'?" % close)
                                            if close else "use some of %s" % ", ".join(sorted(fields))))
        for meas in self.measurements.values():
            what = "measurements[id=%s]" % meas.id
            if meas.offer is None and meas.gpu is None:
                problems.append("catalog: %s names neither an offer nor a gpu; fix: add "
                                "'offer' (one offer) or 'gpu' (every offer of that GPU)"
                                % what)
            if meas.offer is not None:
                need("offers", meas.offer, what)
            if meas.gpu is not None:
                need("gpus", meas.gpu, what)
            need("models", meas.model, what)
            need("quantizations", meas.quantization, what)
        problems.extend(check_api(self, need))
        if problems:
            raise CatalogError(_joined(problems))
        return self

    def measurement_for(self, offer, model, quantization):
        """The measurement that prices (offer, model, quantization), matched by its fields
        (whatever its id): the newest naming this offer, else the newest for its GPU type and
        count (a calibration run on one provider's RTX 4090 informs every RTX 4090 offer),
        else None."""
        exact, by_gpu = None, None
        for meas in self.measurements.values():
            if meas.model != model or meas.quantization != quantization:
                continue
            rank = (meas.as_of, meas.measured_at or "")
            if meas.offer is not None:
                if meas.offer == offer.id and (exact is None or rank >= exact[0]):
                    exact = (rank, meas)
            elif meas.gpu == offer.gpu and meas.gpu_count == offer.count and \
                    (by_gpu is None or rank >= by_gpu[0]):
                by_gpu = (rank, meas)
        if exact is not None:
            return exact[1]
        return by_gpu[1] if by_gpu is not None else None

    def usd(self, amount, currency):
        return amount * self.currencies[currency].usd_per_unit

    def summary(self):
        # The dates of the figures that price a plan; images pin software, they price nothing.
        dates = [entry.as_of for name, section in self.sections.items() if name != "images"
                 for entry in section.values()]
        return {
            "paths": [("bundled:catalog/" + os.path.basename(path))
                      if os.path.dirname(path) == BUNDLED_DIR else path for path in self.paths],
            "as_of": max(dates).isoformat() if dates else None,
            "oldest_as_of": min(dates).isoformat() if dates else None,
            "counts": dict((name, len(entries)) for name, entries in self.sections.items()),
        }


def _files(path):
    if os.path.isdir(path):
        return [os.path.join(path, name) for name in sorted(os.listdir(path))
                if name.endswith((".yml", ".yaml"))]
    return [path]


def _joined(problems):
    if len(problems) == 1:
        return problems[0]
    return "\n".join(problems) + "\n(%d problems in all)" % len(problems)


def _read(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except UnicodeDecodeError as exc:
        raise CatalogError("catalog file %s is not UTF-8 text: byte 0x%02x at offset %d cannot "
                           "be decoded; fix: save it as UTF-8"
                           % (path, exc.object[exc.start], exc.start))
    except (IOError, OSError) as exc:
        raise CatalogError("cannot read catalog file %s: %s; fix: pass a readable file"
                           % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise CatalogError("catalog file %s is not valid YAML: %s" % (path, " ".join(str(exc).split())))


def load_catalog(paths=None, bundled=True, data=None):
    """Load the bundled catalog, then each of ``paths`` (files or folders), then ``data``
    (a list of already-parsed mappings); later entries replace earlier ones with the same id."""
    if not HAS_PYDANTIC:
        raise CatalogError("pydantic>=2 is required on the controller to read the catalog "
                           "(pip install -r requirements.txt): %s" % PYDANTIC_IMPORT_ERROR)
    if not HAS_YAML:
        raise CatalogError("PyYAML is required to read the catalog")
    if isinstance(paths, str):
        paths = [paths]
    catalog = Catalog()
    sources = ([BUNDLED_DIR] if bundled else []) + list(paths or [])
    problems = []
    for source in sources:
        if not os.path.exists(source):
            raise CatalogError("cannot read catalog file %s: no such file or directory; fix: "
                               "pass an existing file" % source)
        for path in _files(source):
            problems.extend(catalog._add(_read(path), path))
    for index, item in enumerate(data or []):
        problems.extend(catalog._add(item, "data[%d]" % index))
    if problems:
        raise CatalogError(_joined(problems))
    return catalog.check()
