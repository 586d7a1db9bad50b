"""A run's plan: validated parameters, the platform snapshot and every name the run will use.

``validate`` builds the plan before any AWS or Kubernetes call and pushes it to XCom; every later step
works from it. Names are deterministic functions of (dag_id, run_id, model_name): a retry or a resumed
deferral reuses them, two runs never collide, and the endpoint and API names are stable per model so a
new run updates them in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.params import RunParams, parse_params
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.preflight import check_against_platform

RUN_KEY_LEN = 8


@dataclass(frozen=True)
class RunNames:
    run_key: str
    training_job: str
    model: str
    endpoint_config: str
    endpoint: str
    api: str


def derive_run_key(dag_id: str, run_id: str) -> str:
    return hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:RUN_KEY_LEN]


def derive_names(model_name: str, dag_id: str, run_id: str) -> RunNames:
    key = derive_run_key(dag_id, run_id)
    per_run = f"{model_name}-{key}"
    return RunNames(
        run_key=key,
        training_job=per_run,
        model=per_run,
        endpoint_config=per_run,
        endpoint=model_name,
        api=model_name,
    )


def build_plan(
    conf: Mapping[str, Any], platform_raw: Mapping[str, Any] | None, dag_id: str, run_id: str
) -> dict[str, Any]:
    """Validate everything a user or the platform can get wrong; return the run's JSON-able plan.

    Every static rule of every step is checked here: the conf's (parse_params), the platform's
    (PlatformConfig.from_dict) and those between the two (preflight). All problems are reported at once,
    the conf's first, and the only exception raised is SageliftValidationError.
    """
    problems = Problems()
    params: RunParams | None = None
    platform: PlatformConfig | None = None
    try:
        params = parse_params(conf)
    except SageliftValidationError as err:
        problems.extend(err)
    try:
        platform = PlatformConfig.from_dict(platform_raw)
    except SageliftValidationError as err:
        problems.extend(err)
    if params is not None and platform is not None:
        check_against_platform(params, platform, dag_id, run_id, problems)
    problems.raise_if_any()
    if params is None:  # unreachable: a conf that does not parse leaves a problem
        raise SageliftValidationError.single("conf", "could not be read")
    names = derive_names(params.model_name, dag_id, run_id)
    return {
        "params": params.to_dict(),
        "names": asdict(names),
        "platform": dict(platform_raw or {}),
        "dag_id": dag_id,
        "run_id": run_id,
    }


def plan_params(plan: Mapping[str, Any]) -> RunParams:
    return RunParams.from_dict(plan["params"])


def plan_names(plan: Mapping[str, Any]) -> RunNames:
    return RunNames(**plan["names"])
