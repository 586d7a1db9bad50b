"""label_data: a Ground Truth labeling job over the conf's manifest before training (issue 20 item 4).

``prepare_labeling`` writes the job's two documents (the worker UI template and the label categories)
beside its output under the training output path, then returns CreateLabelingJob's body; both are fixed
for the run, so a retry writes the same objects and adopts the job of the same name
(``steps.jobs.start_or_adopt``). Only ``Completed`` is a success; ``Failed`` and ``Stopped`` are final.
Waiting belongs to the engine: Airflow defers to ``SageMakerJobTrigger`` (or polls in the worker), KFP
polls here in ``label_here``; cancelling stops the job. Its output manifest is already in the plan's
training channels (``build_plan``), so train_model and tune_model read the labels without a hand-off.

Nothing is deleted afterwards: a labeling job is a record that ends by itself, and the labeled manifest
is the scientist's data (teardown removes neither).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sagelift.domain.labeling import (
    CATEGORIES_NAME,
    TEMPLATE_NAME,
    build_labeling_job_request,
    derive_labeling_job_name,
    input_documents_prefix,
    label_category_config,
    labeling_facts,
    render_ui_template,
)
from sagelift.domain.plan import Plan
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts

log = logging.getLogger(__name__)

KIND = jobs.LABELING_JOB


def labeling_job_name(plan: Plan) -> str:
    return derive_labeling_job_name(plan.names.training_job)


def _training_output(plan: Plan) -> str:
    output = plan.params.training_s3_output_path
    if output is None:  # validate refuses labeling for a run that trains nothing
        raise ValueError("labeling: the run has no training_s3_output_path")
    return output


def labeling_request(plan: Plan, tags: list[dict[str, str]]) -> dict[str, Any]:
    account = plan.platform.account(plan.account_id)
    if account.labeling_workteam_arn is None:  # validate refuses this
        raise ValueError("labeling: the account has no labeling_workteam_arn")
    return build_labeling_job_request(
        plan.params.labeling,
        job_name=labeling_job_name(plan),
        training_output=_training_output(plan),
        region=plan.region,
        role_arn=plan.platform.training_role_arn(plan.account_id),
        workteam_arn=account.labeling_workteam_arn,
        tags=tags,
        output_kms_key=account.network.output_kms_key,
    )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def write_documents(s3_client: Any, plan: Plan) -> dict[str, str]:
    """Write the worker UI template and the label categories where the job reads them; returns their URIs."""
    settings = plan.params.labeling
    prefix = input_documents_prefix(_training_output(plan), labeling_job_name(plan))
    documents = {
        TEMPLATE_NAME: (render_ui_template(settings), "text/html"),
        CATEGORIES_NAME: (json.dumps(label_category_config(settings), indent=2), "application/json"),
    }
    written: dict[str, str] = {}
    for name, (body, content_type) in documents.items():
        bucket, key = _split(prefix + name)
        # the bucket's default encryption applies: the documents hold no data, only the labels and the
        # workers' page, and the execution role holds no data key of the account's KMS keys
        s3_client.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)
        written[name] = prefix + name
    return written


def prepare_labeling(s3_client: Any, plan: Plan, tags: list[dict[str, str]]) -> dict[str, Any]:
    """Write the job's documents; return CreateLabelingJob's body."""
    write_documents(s3_client, plan)
    return labeling_request(plan, tags)


def report_labeling(description: Mapping[str, Any], say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Tell (``say``) how many objects were labeled and where the labels are; returns the job's facts."""
    facts = labeling_facts(description)
    say(
        f"Labeling job {facts['job']} labeled {facts['labeled']} objects ({facts['human_labeled']} by people, "
        f"{facts['failed']} failed, {facts['unlabeled']} left unlabeled); the labels are in "
        f"{facts['output_manifest_s3_uri']} under {facts['label_attribute_name']}, which training reads."
    )
    return facts


def label_here(
    sagemaker_client: Any,
    s3_client: Any,
    plan: Plan,
    tags: list[dict[str, str]],
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Label in this process, for an engine that waits where Airflow defers (KFP): write the documents,
    start this run's job or follow it, stop it if the process is told to end (SIGTERM), and return the
    ended job's facts; empty when the run labels nothing."""
    if plan.skip_reason("label_data"):
        return {}
    request = prepare_labeling(s3_client, plan, tags)
    delay = plan.platform.sagemaker.check_interval_seconds
    budget = plan.params.labeling.wait_seconds  # the job's own longest run, as on Airflow
    description = jobs.follow_here(sagemaker_client, KIND, request, delay, attempts(budget, delay), say)
    return report_labeling(description, say)
