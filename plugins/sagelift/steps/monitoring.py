"""monitor_endpoint: a data-quality monitor on the run's endpoint (baseline, schedule, alarms).

Both engines run the same three steps (sagelift.domain.monitoring has the rules and the bodies):

1. the **baseline** processing job, named as the run's model, over the conf's training channel: started
   or adopted through ``steps.jobs`` (Airflow defers on it with its generic job operator and cancelling
   stops it; KFP follows it in process with ``monitor_here``);
2. ``apply_monitoring`` once the baseline succeeded: this run's data-quality job definition (named as the
   run's model; adopted on a retry), then the endpoint's monitoring schedule, named after the endpoint:
   created the first time, UPDATED to the new definition by a later run, after which the previous
   definition is deleted when no schedule uses it any more; then one CloudWatch alarm per baselined
   feature, and the endpoint's monitoring alarms this run no longer has are deleted;
3. ``delete_monitoring`` for teardown: the schedule, every data-quality definition on the endpoint, and
   the alarms, so nothing is left behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain import monitoring as m
from sagelift.domain.ownership import is_owned
from sagelift.domain.plan import Plan
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts, list_tags
from sagelift.steps.errors import StepFailed, delete_if_exists, describe_or_none, error_code

log = logging.getLogger(__name__)

KIND = jobs.PROCESSING_JOB


def schedule_name(plan: Plan) -> str:
    """The endpoint's schedule: one per endpoint, named after it, so a re-run updates it."""
    return plan.names.endpoint


def definition_name(plan: Plan) -> str:
    """This run's data-quality job definition (and its baseline job): named as the run's model."""
    return plan.names.model


def _output(plan: Plan) -> str:
    output = plan.params.training_s3_output_path
    if output is None:  # validate refuses monitoring in a run that does not train
        raise StepFailed("monitoring needs the run's training_s3_output_path")
    return output


def baseline_uri(plan: Plan) -> str:
    return m.baseline_s3_uri(_output(plan), plan.names.training_job)


def reports_uri(plan: Plan) -> str:
    return m.reports_s3_uri(_output(plan), plan.model_name)


def _image(plan: Plan) -> str:
    image = m.analyzer_image(plan.region)
    if image is None:  # validate refuses such a region
        raise StepFailed(f"no Model Monitor analyzer image is known in {plan.region}")
    return image


def baseline_request(plan: Plan, tags: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    settings = plan.params.monitoring
    return m.build_baseline_job_request(
        settings,
        job_name=definition_name(plan),
        input_s3_uri=m.channel_s3_uri(settings, plan.params.training_channels),
        output_s3_uri=baseline_uri(plan),
        image=_image(plan),
        role_arn=plan.platform.training_role_arn(plan.account_id),
        tags=tags,
        network=plan.platform.account(plan.account_id).network,
    )


def read_constraints(s3: Any, uri: str) -> dict[str, Any]:
    """The baseline's constraints.json (what the alarms are built from)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    key = f"{prefix.rstrip('/')}/constraints.json".lstrip("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        raise StepFailed(
            f"The baseline left no s3://{bucket}/{key} ({error_code(err)}); the monitor needs its constraints"
        ) from None
    data = json.loads(body)
    return data if isinstance(data, dict) else {}


def _ensure_definition(sm: Any, request: Mapping[str, Any], say: Callable[[str], None]) -> None:
    name = request["JobDefinitionName"]
    if describe_or_none(sm.describe_data_quality_job_definition, JobDefinitionName=name) is not None:
        say(f"Data-quality job definition {name} of this run exists; using it.")
        return
    try:
        sm.create_data_quality_job_definition(**request)
    except ClientError as err:
        if error_code(err) != "ResourceInUse":
            raise
    say(
        f"Created data-quality job definition {name} over endpoint {request['DataQualityJobInput']['EndpointInput']['EndpointName']}."
    )


def _unused(sm: Any, definition: str) -> bool:
    summaries = sm.list_monitoring_schedules(MonitoringJobDefinitionName=definition)[
        "MonitoringScheduleSummaries"
    ]
    return not summaries


def _apply_schedule(
    sm: Any, plan: Plan, tags: Sequence[Mapping[str, str]], say: Callable[[str], None]
) -> str:
    """Create or update the endpoint's schedule to this run's definition; returns what was done."""
    settings, name, definition = plan.params.monitoring, schedule_name(plan), definition_name(plan)
    existing = describe_or_none(sm.describe_monitoring_schedule, MonitoringScheduleName=name)
    if existing is None:
        sm.create_monitoring_schedule(
            **m.build_monitoring_schedule_request(
                settings, schedule_name=name, definition_name=definition, tags=tags
            )
        )
        say(
            f"Created monitoring schedule {name} ({settings.schedule}, {settings.schedule_expression}) on the endpoint."
        )
        return "created"
    config = existing.get("MonitoringScheduleConfig") or {}
    previous = config.get("MonitoringJobDefinitionName")
    expression = (config.get("ScheduleConfig") or {}).get("ScheduleExpression")
    if previous == definition and expression == settings.schedule_expression:
        say(f"Monitoring schedule {name} already runs this run's definition {definition}.")
        return "unchanged"
    sm.update_monitoring_schedule(
        **m.build_update_monitoring_schedule_request(settings, schedule_name=name, definition_name=definition)
    )
    say(f"Updated monitoring schedule {name} to definition {definition} ({settings.schedule}).")
    if previous and previous != definition and _unused(sm, str(previous)):
        _delete_previous(sm, str(previous), say)
    return "updated"


def _delete_previous(sm: Any, name: str, say: Callable[[str], None]) -> None:
    """The previous run's definition, which no schedule uses any more; one SageMaker still holds (an
    execution of it still running) is kept for teardown, which deletes every definition of the endpoint."""
    try:
        if delete_if_exists(sm.delete_data_quality_job_definition, JobDefinitionName=name):
            say(f"Deleted the previous run's data-quality job definition {name} (no schedule uses it).")
    except ClientError as err:
        if error_code(err) != "ResourceInUse":
            raise
        say(f"Kept the previous run's data-quality job definition {name}: {err} (teardown deletes it).")


def _endpoint_alarms(cloudwatch: Any, endpoint: str) -> list[str]:
    names: list[str] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=m.alarm_prefix(endpoint), AlarmTypes=["MetricAlarm"]
    ):
        names.extend(a["AlarmName"] for a in page.get("MetricAlarms", []))
    return names


def _apply_alarms(
    cloudwatch: Any, plan: Plan, constraints: Mapping[str, Any], tags: Sequence[Mapping[str, str]]
) -> tuple[list[str], float]:
    features, threshold = m.baseline_features(constraints)
    endpoint = plan.names.endpoint
    requests = m.build_drift_alarm_requests(
        plan.params.monitoring,
        endpoint_name=endpoint,
        schedule_name=schedule_name(plan),
        features=features,
        threshold=threshold,
        tags=tags,
    )
    for request in requests:
        cloudwatch.put_metric_alarm(**request)
    kept = [r["AlarmName"] for r in requests]
    stale = [name for name in _endpoint_alarms(cloudwatch, endpoint) if name not in kept]
    if stale:
        cloudwatch.delete_alarms(AlarmNames=stale)
    return kept, threshold


def apply_monitoring(
    sm: Any,
    cloudwatch: Any,
    s3: Any,
    plan: Plan,
    tags: Sequence[Mapping[str, str]],
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """After the baseline succeeded: definition, schedule, alarms. Returns the monitor's JSON-able facts."""
    settings = plan.params.monitoring
    constraints = read_constraints(s3, baseline_uri(plan))
    network = plan.platform.account(plan.account_id).network
    request = m.build_data_quality_job_definition_request(
        settings,
        definition_name=definition_name(plan),
        endpoint_name=plan.names.endpoint,
        baseline_s3_uri=baseline_uri(plan),
        reports_s3_uri=reports_uri(plan),
        image=_image(plan),
        role_arn=plan.platform.training_role_arn(plan.account_id),
        tags=tags,
        network=network,
    )
    _ensure_definition(sm, request, say)
    action = _apply_schedule(sm, plan, tags, say)
    alarms, threshold = _apply_alarms(cloudwatch, plan, constraints, tags)
    say(
        f"{len(alarms)} drift alarm(s) watch {m.METRIC_NAMESPACE} feature_baseline_drift_* above {threshold:g}"
        + (f", notifying {', '.join(settings.alarm_actions)}" if settings.alarm_actions else "")
        + f"; reports land under {reports_uri(plan)}."
    )
    schedule = sm.describe_monitoring_schedule(MonitoringScheduleName=schedule_name(plan))
    return {
        "schedule": schedule_name(plan),
        "schedule_arn": schedule.get("MonitoringScheduleArn"),
        "schedule_status": schedule.get("MonitoringScheduleStatus"),
        "schedule_action": action,
        "frequency": settings.schedule,
        "schedule_expression": settings.schedule_expression,
        "definition": definition_name(plan),
        "baseline_job": definition_name(plan),
        "baseline_s3_uri": baseline_uri(plan),
        "reports_s3_uri": reports_uri(plan),
        "alarms": alarms,
        "drift_threshold": threshold,
        "console_url": m.schedule_console_url(plan.region, schedule_name(plan)),
    }


def monitor_here(
    sm: Any,
    cloudwatch: Any,
    s3: Any,
    plan: Plan,
    tags: Sequence[Mapping[str, str]],
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """The whole step in this process, for an engine that waits where Airflow defers (KFP): the baseline
    job followed (stopped on SIGTERM), then the schedule and alarms; empty when the run does not monitor."""
    if plan.skip_reason("monitor_endpoint"):
        return {}
    wait = plan.platform.sagemaker
    jobs.follow_here(
        sm,
        KIND,
        baseline_request(plan, tags),
        wait.check_interval_seconds,
        attempts(wait.training_wait_budget_seconds, wait.check_interval_seconds),
        say,
    )
    return apply_monitoring(sm, cloudwatch, s3, plan, tags, say)


def _owned(tags: list[dict[str, str]], owner: str | None) -> bool:
    return owner is None or is_owned(tags, owner)


def delete_monitoring(
    sm: Any,
    cloudwatch: Any,
    endpoint: str,
    say: Callable[[str], None] = log.info,
    sleep: Callable[[float], None] = time.sleep,
    polls: int = 60,
    owner: str | None = None,
) -> list[str]:
    """Teardown: the endpoint's schedule (waiting until it is gone: SageMaker deletes it asynchronously),
    every data-quality job definition over the endpoint, and its monitoring alarms; with ``owner``, only
    what carries that model's owner tag (the schedule: when its definition does). Returns what was
    deleted, as "<kind> <name>"."""
    deleted: list[str] = []
    schedule = describe_or_none(sm.describe_monitoring_schedule, MonitoringScheduleName=endpoint)
    if schedule is not None:
        definition = (schedule.get("MonitoringScheduleConfig") or {}).get("MonitoringJobDefinitionName")
        found = definition and describe_or_none(
            sm.describe_data_quality_job_definition, JobDefinitionName=definition
        )
        ours = owner is None or (found and _owned(list_tags(sm, found["JobDefinitionArn"]), owner))
        if ours and delete_if_exists(sm.delete_monitoring_schedule, MonitoringScheduleName=endpoint):
            deleted.append(f"monitoring schedule {endpoint}")
            for _ in range(polls):
                if describe_or_none(sm.describe_monitoring_schedule, MonitoringScheduleName=endpoint) is None:
                    break
                sleep(5)
    definitions = sm.list_data_quality_job_definitions(EndpointName=endpoint, MaxResults=100)
    for summary in definitions.get("JobDefinitionSummaries", []):
        name = summary["MonitoringJobDefinitionName"]
        if not _owned(list_tags(sm, summary["MonitoringJobDefinitionArn"]), owner):
            continue
        if delete_if_exists(sm.delete_data_quality_job_definition, JobDefinitionName=name):
            deleted.append(f"data-quality job definition {name}")
    alarms = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=m.alarm_prefix(endpoint), AlarmTypes=["MetricAlarm"]
    ):
        for alarm in page.get("MetricAlarms", []):
            tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags", [])
            if _owned(tags, owner):
                alarms.append(alarm["AlarmName"])
    if alarms:
        cloudwatch.delete_alarms(AlarmNames=alarms)
        deleted.extend(f"alarm {name}" for name in alarms)
    for item in deleted:
        say(f"Deleted {item}.")
    return deleted
