"""The CloudWatch alarms that guard an update of the model's endpoint (part of step 7, deploy_endpoint).

Before a guarded deploy (sagelift.domain.deployment.is_guarded) ``ensure_deployment_alarms`` makes sure
every alarm the update names exists:

- alarms the conf names (``endpoint.deployment.alarms``) are the team's: sagelift only checks that each
  exists in the account and region, and refuses the deploy naming the missing ones (SageMaker would
  otherwise start an update it cannot watch);
- otherwise sagelift keeps two alarms of its own per model (``DEFAULT_ALARMS``: 5xx error rate and model
  latency of the model's variant), created or updated in place by PutMetricAlarm and tagged with the
  run's tags, the model's owner tag among them. An alarm of a default name that is not tagged as this
  model's is refused, never overwritten.

``delete_model_alarms`` (teardown) deletes only the alarms named and tagged as this model's defaults;
conf-named alarms are never touched. ``alarms_in_alarm`` tells, after a rollback, which of the
deployment's alarms tripped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sagelift.domain.deployment import (
    ALARM_NAME_PREFIX,
    build_put_metric_alarm_requests,
    derive_default_alarm_names,
)
from sagelift.domain.ownership import is_owned, owner_of
from sagelift.steps.errors import StepFailed

log = logging.getLogger(__name__)

ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


def describe_alarms(cloudwatch: Any, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The named alarms that exist (metric or composite), by name."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names[start : start + 100]), AlarmTypes=ALARM_TYPES
        )
        for page in pages:
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found[str(alarm["AlarmName"])] = alarm
    return found


def _tags(cloudwatch: Any, arn: str) -> list[dict[str, str]]:
    return list(cloudwatch.list_tags_for_resource(ResourceARN=arn).get("Tags", []))


def require_alarms(cloudwatch: Any, names: Sequence[str], account_id: str, region: str) -> None:
    """Refuse the deploy unless every alarm the conf names exists."""
    missing = [name for name in names if name not in describe_alarms(cloudwatch, names)]
    if missing:
        raise StepFailed(
            f"endpoint.deployment.alarms: CloudWatch alarm {', '.join(missing)} does not exist in account "
            f"{account_id} ({region}); create it, or name no alarms so sagelift guards the update with "
            "its own per-model alarms."
        )


def ensure_default_alarms(
    cloudwatch: Any, model_name: str, endpoint_name: str, variant_name: str, tags: Sequence[Mapping[str, str]]
) -> list[str]:
    """Create or update the model's default alarms (refusing ones of those names sagelift did not create)."""
    requests = build_put_metric_alarm_requests(model_name, endpoint_name, variant_name, tags)
    existing = describe_alarms(cloudwatch, [r["AlarmName"] for r in requests])
    for request in requests:
        name = request["AlarmName"]
        if name in existing:
            tags_now = _tags(cloudwatch, existing[name]["AlarmArn"])
            if not is_owned(tags_now, model_name):
                owner = owner_of(tags_now)
                whose = (
                    f"it belongs to sagelift model {owner!r}" if owner else "it was not created by sagelift"
                )
                raise StepFailed(
                    f"CloudWatch alarm {name} exists and {whose}; sagelift will not change it. Delete or "
                    "re-tag it, or name the alarms to use in endpoint.deployment.alarms."
                )
        cloudwatch.put_metric_alarm(**request)
        log.info("%s CloudWatch alarm %s.", "Updated" if name in existing else "Created", name)
    return [r["AlarmName"] for r in requests]


def ensure_deployment_alarms(
    cloudwatch: Any,
    *,
    model_name: str,
    endpoint_name: str,
    variant_name: str,
    alarm_names: Sequence[str],
    conf_named: bool,
    tags: Sequence[Mapping[str, str]],
    account_id: str,
    region: str,
) -> None:
    """Every alarm of the update in place: the conf's checked, sagelift's own created or updated."""
    if not alarm_names:
        return
    if conf_named:
        require_alarms(cloudwatch, alarm_names, account_id, region)
    else:
        ensure_default_alarms(cloudwatch, model_name, endpoint_name, variant_name, tags)


def alarms_in_alarm(cloudwatch: Any, names: Sequence[str]) -> list[str]:
    """Which of ``names`` are in the ALARM state now, in the order given."""
    if not names:
        return []
    found = describe_alarms(cloudwatch, names)
    return [name for name in names if found.get(name, {}).get("StateValue") == "ALARM"]


def delete_model_alarms(cloudwatch: Any, model_name: str) -> list[str]:
    """Delete the default alarms sagelift created for the model (named and tagged as its own)."""
    own = set(derive_default_alarm_names(model_name))
    doomed: list[str] = []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{ALARM_NAME_PREFIX}{model_name}-", AlarmTypes=["MetricAlarm"]
    )
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            name = str(alarm["AlarmName"])
            if name in own and is_owned(_tags(cloudwatch, alarm["AlarmArn"]), model_name):
                doomed.append(name)
    if doomed:
        cloudwatch.delete_alarms(AlarmNames=sorted(doomed))
    log.info("Deleted CloudWatch alarms: %s", ", ".join(sorted(doomed)) or "none left")
    return sorted(doomed)
