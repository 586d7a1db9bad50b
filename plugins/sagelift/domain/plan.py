"""A run's plan: validated parameters, the platform snapshot and every name the run will use.

``validate`` builds the plan before any AWS or Kubernetes call and pushes it to XCom; every later step
works from it. The plan records who the run acts for (``triggered_by``: the triggering user, or a
registered retrain's owner), checked against the platform's deployers and tagged on every resource. Names are deterministic functions of (dag_id, run_id, model_name): a retry or a resumed
deferral reuses them, two runs never collide, and the endpoint and API names are stable per model so a
new run updates them in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sagelift.domain.approval import check_engine_approval, needs_approval
from sagelift.domain.endpoint_settings import resolve_endpoint
from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.labeling import derive_labeling_job_name, labeling_channel
from sagelift.domain.ownership import RUN_KEY_LEN
from sagelift.domain.params import ACCOUNT_ID_RE, RunParams, parse_params
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.preflight import check_against_platform
from sagelift.domain.promotion import check_promotion
from sagelift.domain.recommendation import serves_own_endpoint


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


def requested_account_id(conf: Mapping[str, Any]) -> str | None:
    """The twelve-digit account a conf asks for (a string, or a number as the trigger form sends it),
    or None when it names none; parse_params reports what is wrong with it."""
    value = conf.get("account_id") if isinstance(conf, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and ACCOUNT_ID_RE.match(value.strip()):
        return value.strip()
    return None


def build_plan(
    conf: Mapping[str, Any],
    platform_raw: Mapping[str, Any] | None,
    dag_id: str,
    run_id: str,
    *,
    triggered_by: str | None = None,
    engine: str = "airflow",
) -> dict[str, Any]:
    """Validate everything a user or the platform can get wrong; return the run's JSON-able plan.

    Every static rule of every step is checked here: the conf's (parse_params), the platform's
    (PlatformConfig.from_dict) and those between the two (preflight). All problems are reported at once,
    the conf's first, and the only exception raised is SageliftValidationError.

    ``triggered_by`` is the user the run acts for. It is checked first, against the deployers of the
    account the conf names, and a user who may not act there gets that refusal alone: nothing about the
    rest of the conf or the account's settings. Airflow's validate always passes it; None is for the KFP
    engine's components, which cannot learn who triggered their run (the Airflow DAG that submits the
    run checked the user).

    ``engine`` ("airflow" or "kfp"): a run into an account that requires approval needs Airflow's UI, so
    the KFP engine refuses it (sagelift.domain.approval).
    """
    problems = Problems()
    params: RunParams | None = None
    platform: PlatformConfig | None = None
    platform_error: SageliftValidationError | None = None
    try:
        platform = PlatformConfig.from_dict(platform_raw)
    except SageliftValidationError as err:
        platform_error = err
    account = requested_account_id(conf)
    if triggered_by is not None and platform is not None and account is not None:
        platform.check_deployer(triggered_by, account)
    try:
        params = parse_params(conf)
    except SageliftValidationError as err:
        problems.extend(err)
    if platform_error is not None:
        problems.extend(platform_error)
    if params is not None and platform is not None:
        check_against_platform(params, platform, dag_id, run_id, problems)
        check_promotion(params.promote_from, platform, triggered_by, problems)
        check_engine_approval(params, platform, engine, problems)
    problems.raise_if_any()
    if params is None:  # unreachable: a conf that does not parse leaves a problem
        raise SageliftValidationError.single("conf", "could not be read")
    if platform is not None:  # a capture without a destination lands under the account's caps
        caps = platform.account(params.account_id).endpoint
        params = replace(params, endpoint=resolve_endpoint(params.endpoint, caps, params.model_name))
    names = derive_names(params.model_name, dag_id, run_id)
    if params.labeling.enabled and params.training_s3_output_path:  # label_data's output manifest
        job = derive_labeling_job_name(names.training_job)
        channel = labeling_channel(params.labeling, params.training_s3_output_path, job)
        params = replace(params, training_channels=[*params.training_channels, channel])
    return {
        "params": params.to_dict(),
        "names": asdict(names),
        "platform": dict(platform_raw or {}),
        "dag_id": dag_id,
        "run_id": run_id,
        "triggered_by": triggered_by,
    }


def plan_params(plan: Mapping[str, Any]) -> RunParams:
    return RunParams.from_dict(plan["params"])


def plan_names(plan: Mapping[str, Any]) -> RunNames:
    return RunNames(**plan["names"])


@dataclass(frozen=True)
class Plan:
    """The run's plan as every step after validate reads it: typed, with the platform parsed once.

    ``to_xcom()`` is what validate pushes (JSON: the params, the names, the platform snapshot as the
    Variable held it, the run's ids, who it acts for); ``from_xcom()`` reads it back in a later task,
    parsing it once. ``triggered_by`` is None only in plans built without a user (the KFP components).
    """

    params: RunParams
    names: RunNames
    platform: PlatformConfig
    platform_raw: Mapping[str, Any]
    dag_id: str
    run_id: str
    triggered_by: str | None = None

    @property
    def account_id(self) -> str:
        return self.params.account_id

    @property
    def model_name(self) -> str:
        return self.params.model_name

    @property
    def region(self) -> str:
        return self.platform.region

    @property
    def needs_approval(self) -> bool:
        """Whether approve_deploy waits for a deployer's answer before the run deploys."""
        return needs_approval(self.params, self.platform)

    def skip_reason(self, step: str) -> str | None:
        """Why ``step`` (create_model, deploy_endpoint, expose_api, batch_transform) does nothing in this
        run, or None."""
        if step == "label_data" and not self.params.labeling.enabled:
            return "label_data skipped: labeling is not set (README: Labeling before training)"
        if step == "monitor_endpoint" and not self.params.monitoring.enabled:
            return "monitor_endpoint skipped: monitoring is not set (README: Model monitoring)"
        batch = self.params.batch.enabled
        if step == "recommend_instance" and not serves_own_endpoint(self.params):
            return (
                "recommend_instance skipped: this run creates no instance-backed endpoint of its own "
                "(train-only, batch, multi_model or serverless), so there is no instance type to choose"
            )
        if step == "batch_transform" and not batch and self.params.deploys:
            return "batch_transform skipped: batch is not set, so the model is served by an endpoint"
        if step in ("deploy_endpoint", "expose_api") and batch and self.params.deploys:
            return (
                f"{step} skipped: batch is set, so the model scores {self.params.batch.input_s3_uri} "
                "with a batch transform job instead of serving an endpoint"
            )
        if self.params.deploys:
            return None
        return f"{step} skipped: a train-only run (no model_docker_image, no training_algorithm_name) deploys nothing"

    def to_xcom(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "names": asdict(self.names),
            "platform": dict(self.platform_raw),
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "triggered_by": self.triggered_by,
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | None) -> Plan:
        if not data or "params" not in data or "names" not in data:
            raise SageliftValidationError.single(
                "plan", "no run plan: the validate task must succeed before this step"
            )
        return cls(
            params=plan_params(data),
            names=plan_names(data),
            platform=PlatformConfig.from_dict(data["platform"]),
            platform_raw=dict(data["platform"]),
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            triggered_by=None if data.get("triggered_by") is None else str(data["triggered_by"]),
        )


@dataclass(frozen=True)
class SessionFacts:
    """What assume_role_chain learned, for the later steps: identifiers only, never a credential."""

    region: str
    account_id: str
    execution_role_arn: str
    caller_arn: str
    session_name: str
    master_role_arn: str | None = None
    aws_conn_id: str | None = None  # the Airflow connection performing the chain (None on KFP)
    expiration: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | None) -> SessionFacts:
        if not data or "account_id" not in data:
            raise SageliftValidationError.single(
                "session", "no session facts: assume_role_chain must succeed before this step"
            )
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
