"""recommend_instance (issue 20 item 2): which hosting types fit the run's model, their price per hour in the
region, and the pick; both engines call these functions.

- ``table_answer`` answers from sagelift's tables (sagelift.domain.instance_choice): the artifact's size
  (HeadObject on the registered version's artifact, through the role chain), the image's CPU or GPU
  serving, the account's ``endpoint_instance_types`` and the bundled price table.
- When the conf asks for a job (``instance_recommendation.job``), ``job_request`` builds the run's
  Inference Recommender job over the registered version (``model_package_arn``), run with the model's
  role: a default job tests the cheapest types that fit, an advanced one the conf's. Its name is fixed
  for the run (the run's model's name), so a retry or a resumed deferral follows the one job
  (sagelift.steps.jobs.start_or_adopt). Waiting belongs to the engine: Airflow defers
  (sagelift.operators.recommendation), KFP follows it here (``recommend_here``); cancelling stops it.
- ``job_answer`` judges the ended job's recommendations by the same fit rules; the pick is its cheapest
  that fits.

The task's XCom (both engines; JSON-able, no secrets) is the Recommendation's dict (fits with prices,
the pick and why, the job's judged recommendations) plus ``endpoint_instance_type``: what
deploy_endpoint deploys (the pick with ``"auto"``, else the conf's type) and ``auto``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.instance_choice import Recommendation, processor_for, recommend_from_table
from sagelift.domain.plan import Plan
from sagelift.domain.recommendation import AUTO, build_recommendations_job_request, pick_from_job
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts
from sagelift.steps.errors import StepFailed, is_not_found

log = logging.getLogger(__name__)

KIND = jobs.RECOMMENDATION_JOB
# CreateInferenceRecommendationsJob's ContainerConfig.Framework for the built-in algorithms it knows
_FRAMEWORKS = {"xgboost": "XGBOOST"}


def recommendation_job_name(plan: Plan) -> str:
    """The run's Inference Recommender job: named as the run's model, which it load-tests."""
    return plan.names.model


def artifact_bytes(s3: Any, url: str | None) -> int | None:
    """The compressed artifact's size, or None when it cannot be read (the answer then says so)."""
    if not url or not url.startswith("s3://"):
        return None
    bucket, _, key = url[5:].partition("/")
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as err:
        if is_not_found(err):  # a run whose artifact is not (yet) where the registry says: sized without it
            log.info("No artifact at %s to size the model by; the answer says so.", url)
            return None
        if err.response.get("Error", {}).get("Code") in ("403", "AccessDenied"):
            log.warning("Could not read the size of %s (%s); sizing without it.", url, err)
            return None
        raise


def table_answer(plan: Plan, registered: Mapping[str, Any] | None, s3: Any) -> Recommendation:
    """The three answers from sagelift's tables."""
    settings = plan.params.instance_recommendation
    size = artifact_bytes(s3, (registered or {}).get("model_data_url"))
    return recommend_from_table(
        plan.platform.region,
        size,
        processor_for(plan.params.training_algorithm_name, settings.processor),
        plan.platform.account(plan.account_id).endpoint_instance_types,
    )


def job_request(
    plan: Plan, registered: Mapping[str, Any] | None, answer: Recommendation, tags: list[dict[str, str]]
) -> dict[str, Any] | None:
    """CreateInferenceRecommendationsJob's body, or None when the conf asks for no job."""
    settings = plan.params.instance_recommendation
    if not settings.enabled:
        return None
    package = (registered or {}).get("model_package_arn")
    if not package:
        raise StepFailed(
            "instance_recommendation.job needs the run's registered model version (register_model's "
            "model_package_arn), and register_model registered none"
        )
    network = plan.platform.account(plan.account_id).network
    types = settings.instance_types or tuple(f.instance_type for f in answer.fits)
    if not types:
        raise StepFailed(f"no hosting type fits the model, so the job has nothing to test: {answer.why}")
    return build_recommendations_job_request(
        settings,
        job_name=recommendation_job_name(plan),
        role_arn=plan.platform.model_role_arn(plan.account_id),
        model_package_arn=str(package),
        instance_types=types,
        framework_hint=_FRAMEWORKS.get(plan.params.training_algorithm_name or ""),
        tags=tags,
        volume_kms_key=network.volume_kms_key,
        vpc_config=network.vpc_config,
    )


def xcom(plan: Plan, answer: Recommendation) -> dict[str, Any]:
    auto = plan.params.endpoint_instance_type == AUTO
    data = answer.to_dict()
    data["auto"] = auto
    data["endpoint_instance_type"] = answer.pick if auto else plan.params.endpoint_instance_type
    return data


def report(plan: Plan, answer: Recommendation, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Tell (``say``) the three answers; returns the task's XCom. Fails when "auto" has nothing to deploy."""
    prices = ", ".join(f"{f.instance_type} ${f.usd_per_hour:g}/h" for f in answer.fits[:5])
    say(
        f"{answer.fit_count} hosting types fit in {answer.region} (prices as of {answer.prices_as_of}); "
        f"cheapest: {prices or 'none'}"
    )
    for reason, count in answer.not_fitting.items():
        say(f"  {count} types do not fit: {reason}")
    say(f"Pick: {answer.pick or 'none'}: {answer.why}")
    data = xcom(plan, answer)
    if data["auto"] and not answer.pick:
        raise StepFailed(f'endpoint_instance_type "auto" has no instance type to deploy: {answer.why}')
    if data["auto"]:
        say(f'endpoint_instance_type "auto": deploy_endpoint deploys {answer.pick}')
    elif answer.pick and answer.pick != plan.params.endpoint_instance_type:
        say(
            f"The run deploys {plan.params.endpoint_instance_type} as its conf says; "
            f'endpoint_instance_type "auto" would deploy {answer.pick}'
        )
    return data


def job_answer(
    plan: Plan, answer: Recommendation, description: Mapping[str, Any], say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """The ended (succeeded) job's answer judged by the fit rules; returns the task's XCom."""
    allowed = plan.platform.account(plan.account_id).endpoint_instance_types
    return report(plan, pick_from_job(answer, description, allowed), say)


def recommend_here(
    clients: Any,
    plan: Plan,
    registered: Mapping[str, Any] | None,
    tags: list[dict[str, str]],
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """recommend_instance in this process, for an engine that waits where Airflow defers (KFP): answer from
    the tables; with a job, start or follow it, wait (stopping it on SIGTERM) and judge its answer."""
    answer = table_answer(plan, registered, clients("s3"))
    request = job_request(plan, registered, answer, tags)
    if request is None:
        return report(plan, answer, say)
    wait = plan.platform.sagemaker
    description = jobs.follow_here(
        clients("sagemaker"),
        KIND,
        request,
        wait.check_interval_seconds,
        attempts(wait.training_wait_budget_seconds, wait.check_interval_seconds),
        say,
    )
    return job_answer(plan, answer, description, say)
