"""recommend_instance's three answers from sagelift's own tables (issue 20 item 2), without an AWS call.

1. Which hosting instance types fit this model: ``instance_spec`` knows every type SageMaker hosts
   (instance_types.json's endpoint list) by its family and size: vCPUs, memory, accelerator and CPU
   architecture. ``fit_problem`` says why a type does not fit:
   - memory: the model must fit ``MEMORY_FACTOR`` times its compressed artifact (unpacked and loaded)
     plus ``SERVER_GIB`` for the serving container;
   - processor: a built-in algorithm serves on CPU, GPU or both (``ALGORITHM_PROCESSORS``); your own
     image is taken as CPU-only unless the conf says ``instance_recommendation.processor``;
   - architecture: Graviton types (arm64) run only arm64 images, and the built-in algorithms and
     sagelift's images are x86_64, so they never fit;
   - accelerators that need a compiled model (Inferentia and Trainium: AWS Neuron; Gaudi) never fit:
     sagelift compiles nothing;
   - the account's ``endpoint_instance_types`` (empty: every type) and the regional price table: a
     type with no price in the region is taken as not offered there.
2. What each costs per hour in the region: ``price_table`` reads the bundled, dated
   instance_prices.json (region -> type -> USD per hour, ``as_of`` and ``source``;
   scripts/refresh_instance_prices.py rewrites it from the AWS Price List API).
3. Which one it would pick: ``recommend_from_table`` picks the cheapest type that fits (ties: less
   memory, then the name). An Inference Recommender job's answer, when the run asks for one, is judged
   against the same rules (sagelift.domain.recommendation.pick_from_job).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

MEMORY_FACTOR = 4  # a .tar.gz artifact unpacked and loaded takes about four times its size
SERVER_GIB = 1.0  # the serving container itself (web server, workers, runtime)
LISTED_FITS = 10  # the cheapest fits carried in the XCom and shown in the summary
GIB = 1024**3

# How a built-in algorithm serves; an algorithm not listed serves on either.
ALGORITHM_PROCESSORS: dict[str, str] = {
    "seq2seq": "gpu",  # its inference container needs a GPU
    "lda": "cpu",
    "randomcutforest": "cpu",
    "ipinsights": "any",
}
PROCESSORS = ("cpu", "gpu", "any")

_SIZE_VCPUS = {
    "medium": 1,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "6xlarge": 24,
    "8xlarge": 32,
    "9xlarge": 36,
    "10xlarge": 40,
    "12xlarge": 48,
    "16xlarge": 64,
    "18xlarge": 72,
    "24xlarge": 96,
    "32xlarge": 128,
    "36xlarge": 144,
    "48xlarge": 192,
}
# GiB of memory per vCPU of the general families (AWS's instance type pages)
_FAMILY_GIB_PER_VCPU = {"c4": 1.875, "c": 2.0, "m": 4.0, "r": 8.0, "g6e": 8.0, "g7e": 8.0, "g": 4.0}
# Types whose memory is not a multiple of their vCPUs (GiB)
_MEMORY_GIB = {
    "ml.t2.medium": 4,
    "ml.t2.large": 8,
    "ml.t2.xlarge": 16,
    "ml.t2.2xlarge": 32,
    "ml.p2.xlarge": 61,
    "ml.p2.8xlarge": 488,
    "ml.p2.16xlarge": 732,
    "ml.p3.2xlarge": 61,
    "ml.p3.8xlarge": 244,
    "ml.p3.16xlarge": 488,
    "ml.p4d.24xlarge": 1152,
    "ml.p4de.24xlarge": 1152,
    "ml.p5.4xlarge": 256,
    "ml.p5.48xlarge": 2048,
    "ml.p5e.48xlarge": 2048,
    "ml.p5en.48xlarge": 2048,
    "ml.p6-b200.48xlarge": 2048,
    "ml.p6-b300.48xlarge": 4096,
    "ml.p6e-gb200.36xlarge": 960,
    "ml.inf1.xlarge": 8,
    "ml.inf1.2xlarge": 16,
    "ml.inf1.6xlarge": 48,
    "ml.inf1.24xlarge": 192,
    "ml.inf2.xlarge": 16,
    "ml.inf2.8xlarge": 128,
    "ml.inf2.24xlarge": 384,
    "ml.inf2.48xlarge": 768,
    "ml.trn1.2xlarge": 32,
    "ml.trn1.32xlarge": 512,
    "ml.trn1n.32xlarge": 512,
    "ml.trn2.48xlarge": 2048,
    "ml.dl1.24xlarge": 768,
}
_ARM_FAMILY = re.compile(r"^([cmr]\d+g[a-z]*|p6e-gb\d+)$")  # Graviton (c6g, m7g, r8g, ...) and Grace


@dataclass(frozen=True)
class InstanceSpec:
    instance_type: str
    vcpus: int
    memory_gib: float
    accelerator: str  # "" (none), "gpu", "neuron" (Inferentia, Trainium), "gaudi"
    arch: str  # "x86_64" or "arm64"


@cache
def hosting_instance_types() -> tuple[str, ...]:
    """SageMaker's hosting instance types (botocore's ProductionVariantInstanceType)."""
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_types.json").read_text())
    return tuple(data["endpoint"])


def instance_spec(instance_type: str) -> InstanceSpec:
    """The type's vCPUs, memory, accelerator and architecture, from its family and size."""
    _, family, size = instance_type.split(".")
    vcpus = 2 if instance_type == "ml.t2.medium" else _SIZE_VCPUS[size]
    if family.startswith(("p", "g")) and not _ARM_FAMILY.match(family):
        accelerator = "gpu"
    elif family.startswith(("inf", "trn")):
        accelerator = "neuron"
    elif family.startswith("dl"):
        accelerator = "gaudi"
    else:
        accelerator = ""
    if instance_type in _MEMORY_GIB:
        memory = float(_MEMORY_GIB[instance_type])
    else:
        ratio = _FAMILY_GIB_PER_VCPU.get(family) or _FAMILY_GIB_PER_VCPU[family[0]]
        memory = vcpus * ratio
    return InstanceSpec(
        instance_type, vcpus, memory, accelerator, "arm64" if _ARM_FAMILY.match(family) else "x86_64"
    )


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    source: str
    regions: Mapping[str, Mapping[str, float]]

    def price(self, region: str, instance_type: str) -> float | None:
        return self.regions.get(region, {}).get(instance_type)


@cache
def price_table() -> PriceTable:
    """The bundled price table (instance_prices.json): USD per instance-hour of real-time hosting."""
    data = json.loads(resources.files("sagelift.domain").joinpath("instance_prices.json").read_text())
    return read_price_table(data)


def read_price_table(data: Mapping[str, Any]) -> PriceTable:
    if not isinstance(data.get("as_of"), str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", data["as_of"]):
        raise ValueError("instance_prices.json: as_of must be a date YYYY-MM-DD")
    regions = {
        str(region): {str(t): float(p) for t, p in prices.items()}
        for region, prices in data["regions"].items()
    }
    return PriceTable(as_of=data["as_of"], source=str(data.get("source", "")), regions=regions)


def processor_for(algorithm: str | None, declared: str | None) -> str:
    """What the model's image serves on: the conf's word, else the built-in algorithm's, else CPU."""
    if declared:
        return declared
    if algorithm is not None:
        return ALGORITHM_PROCESSORS.get(algorithm, "any")
    return "cpu"


def memory_needed_gib(artifact_bytes: int | None) -> float:
    return round(MEMORY_FACTOR * (artifact_bytes or 0) / GIB + SERVER_GIB, 2)


def fit_problem(
    spec: InstanceSpec, need_gib: float, processor: str, allowed: Iterable[str] = ()
) -> str | None:
    """Why the model does not fit on ``spec``, or None when it does."""
    allowed = tuple(allowed)
    if allowed and spec.instance_type not in allowed:
        return "not in the account's endpoint_instance_types"
    if spec.arch == "arm64":
        return "Graviton (arm64): the model's image is x86_64"
    if spec.accelerator in ("neuron", "gaudi"):
        return f"needs a model compiled for its accelerator ({spec.accelerator})"
    if spec.accelerator == "gpu" and processor == "cpu":
        return "a GPU type; the model's image serves on CPU"
    if spec.accelerator == "" and processor == "gpu":
        return "no GPU; the model's image serves on GPU"
    if spec.memory_gib < need_gib:
        return f"{spec.memory_gib:g} GiB of memory, the model needs {need_gib:g} GiB"
    return None


@dataclass(frozen=True)
class Fit:
    instance_type: str
    usd_per_hour: float
    memory_gib: float
    vcpus: int


@dataclass(frozen=True)
class Recommendation:
    """The three answers, JSON-able for the XCom and the summary."""

    region: str
    prices_as_of: str
    artifact_bytes: int | None
    memory_needed_gib: float
    processor: str
    fits: tuple[Fit, ...]  # the cheapest LISTED_FITS, cheapest first
    fit_count: int
    not_fitting: Mapping[str, int]  # reason -> how many types
    pick: str | None
    pick_usd_per_hour: float | None
    why: str
    job: Mapping[str, Any] = field(default_factory=dict)  # the Inference Recommender job's facts, if any

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fits"] = [asdict(f) for f in self.fits]
        data["not_fitting"] = dict(self.not_fitting)
        data["job"] = dict(self.job)
        return data


def _reason_kind(reason: str) -> str:
    """The reason without its figures, to count the types that miss for it."""
    if "GiB" in reason:
        return "not enough memory"
    if reason.startswith("no price"):
        return "not offered in the region"
    return reason.split(":")[0].split(";")[0]


def fitting_types(
    region: str,
    artifact_bytes: int | None,
    processor: str,
    allowed: Iterable[str] = (),
    table: PriceTable | None = None,
) -> tuple[list[Fit], dict[str, int], float]:
    """Every hosting type that fits, cheapest first; how many do not fit, by reason; the memory needed."""
    table = table or price_table()
    need = memory_needed_gib(artifact_bytes)
    fits: list[Fit] = []
    misses: dict[str, int] = {}
    allowed = tuple(allowed)
    for instance_type in hosting_instance_types():
        spec = instance_spec(instance_type)
        problem = fit_problem(spec, need, processor, allowed)
        price = table.price(region, instance_type)
        if problem is None and price is None:
            problem = f"no price in {region} (not offered there)"
        if problem is not None:
            kind = _reason_kind(problem)
            misses[kind] = misses.get(kind, 0) + 1
            continue
        fits.append(Fit(instance_type, float(price or 0), spec.memory_gib, spec.vcpus))
    fits.sort(key=lambda f: (f.usd_per_hour, f.memory_gib, f.instance_type))
    return fits, misses, need


def recommend_from_table(
    region: str,
    artifact_bytes: int | None,
    processor: str,
    allowed: Iterable[str] = (),
    table: PriceTable | None = None,
) -> Recommendation:
    """The three answers from the tables alone: the pick is the cheapest type that fits."""
    table = table or price_table()
    fits, misses, need = fitting_types(region, artifact_bytes, processor, allowed, table)
    size = (
        "an artifact of unknown size"
        if artifact_bytes is None
        else f"a {artifact_bytes / GIB:.3g} GiB artifact"
    )
    if fits:
        best = fits[0]
        why = (
            f"the cheapest of {len(fits)} types that fit {size} ({need:g} GiB of memory, {processor} serving) "
            f"at ${best.usd_per_hour:g}/h in {region} (prices as of {table.as_of})"
        )
    else:
        why = f"no hosting type fits {size} ({need:g} GiB of memory, {processor} serving) in {region}"
    return Recommendation(
        region=region,
        prices_as_of=table.as_of,
        artifact_bytes=artifact_bytes,
        memory_needed_gib=need,
        processor=processor,
        fits=tuple(fits[:LISTED_FITS]),
        fit_count=len(fits),
        not_fitting=dict(sorted(misses.items())),
        pick=fits[0].instance_type if fits else None,
        pick_usd_per_hour=fits[0].usd_per_hour if fits else None,
        why=why,
    )
