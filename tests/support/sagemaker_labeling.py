"""Ground Truth labeling jobs for the local AWS: the labeling part of tests/support/sagemaker_lifecycle.

moto has no labeling jobs at all. This module adds CreateLabelingJob, DescribeLabelingJob and
StopLabelingJob to its SageMaker service, per account and region (patched in once by
sagemaker_lifecycle._patch_moto). With a lifecycle installed and ``SageMakerLifecycle.labeling(...)``
scripted, each DescribeLabelingJob computes the job from the emulated time since its creation:

- ``Initializing`` for the first tenth of ``seconds``, ``InProgress`` until ``seconds``, then
  ``Completed``, ``Failed`` with ``FailureReason``, or ``Stopped``; without a lifecycle a job is
  ``Completed`` at once, as moto does for the jobs it knows;
- a create checks what SageMaker checks before it accepts the job: the name is new in the account
  (``ResourceInUse``), and the input manifest, the UI template and the label category file exist in the
  account's S3 (``ValidationException`` naming the missing one); a manifest with no line fails the job;
- ``Completed`` writes the output manifest where Ground Truth does
  (``<S3OutputPath>/<job>/manifests/output/output.manifest``): each input line with the label attribute
  (the index of a label, in turn) and ``<attribute>-metadata`` (class name, confidence, human-annotated,
  creation date, job name), and ``LabelCounters`` count the lines;
- ``ListLabelingJobs`` lists every job of the account and region (no filters, no paging);
- ``StopLabelingJob``: ``Stopping`` for ``stop_seconds``, then ``Stopped``; stopping an ended job is a
  ValidationException.

What it does not emulate: workers, the worker portal and its UI (the template is stored, not rendered),
the pre-annotation and consolidation Lambda functions (their ARNs are only checked against botocore's
model by the request validation), automated data labeling, per-task-type output formats beyond a class
label (bounding boxes, masks, entities), streaming jobs (SNS input), ListLabelingJobs' filters, ListTags,
and KMS encryption of the output.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import tests.support.sagemaker_lifecycle as lifecycle

LABELING_OUTCOMES = ("Completed", "Failed", "Stopped")


@dataclass
class LabelingScript:
    seconds: float = 0.0
    outcome: str = "Completed"
    failure_reason: str = ""
    stop_seconds: float = 5.0


@dataclass
class _Labeling:
    request: dict[str, Any]
    arn: str
    account: str
    created: float
    created_at: datetime.datetime
    script: LabelingScript
    status: str = "Initializing"
    failure_reason: str = ""
    stop_requested: float | None = None
    ended_at: datetime.datetime | None = None
    counters: dict[str, int] | None = None


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read(account: str, uri: str) -> bytes | None:
    from moto.s3.models import s3_backends

    bucket, key = _split(uri)
    try:
        return bytes(s3_backends[account]["aws"].get_object(bucket, key).value)
    except Exception:  # no such bucket or key
        return None


def output_manifest_uri(request: dict[str, Any]) -> str:
    output = request["OutputConfig"]["S3OutputPath"].rstrip("/")
    return f"{output}/{request['LabelingJobName']}/manifests/output/output.manifest"


def _write_output(job: _Labeling) -> dict[str, int]:
    """The labeled manifest, as Ground Truth writes a classification job's; returns the counters."""
    from moto.s3.models import s3_backends

    request = job.request
    attribute = request["LabelAttributeName"]
    manifest = (
        _read(job.account, request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]) or b""
    )
    categories = json.loads(_read(job.account, request["LabelCategoryConfigS3Uri"]) or b"{}")
    labels = [entry["label"] for entry in categories.get("labels") or []] or ["label"]
    lines = []
    for i, line in enumerate(line for line in manifest.decode().splitlines() if line.strip()):
        record = json.loads(line)
        record[attribute] = i % len(labels)
        record[f"{attribute}-metadata"] = {
            "class-name": labels[i % len(labels)],
            "confidence": 0.9,
            "type": "groundtruth/image-classification",
            "job-name": f"labeling-job/{request['LabelingJobName']}",
            "human-annotated": "yes",
            "creation-date": job.created_at.isoformat(),
        }
        lines.append(json.dumps(record))
    bucket, key = _split(output_manifest_uri(request))
    s3_backends[job.account]["aws"].put_object(bucket, key, ("\n".join(lines) + "\n").encode())
    return {
        "TotalLabeled": len(lines),
        "HumanLabeled": len(lines),
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }


def _advance(job: _Labeling, life: Any) -> None:
    if job.status in LABELING_OUTCOMES:
        return
    now = life.now() if life is not None else job.created
    elapsed = now - job.created
    script = job.script
    if job.stop_requested is not None:
        status = "Stopped" if now - job.stop_requested >= script.stop_seconds else "Stopping"
    elif life is not None and elapsed < script.seconds / 10:
        status = "Initializing"
    elif life is not None and elapsed < script.seconds:
        status = "InProgress"
    else:
        status = script.outcome
    if status == "Completed":
        counters = _write_output(job)
        if not counters["TotalLabeled"]:
            status, job.failure_reason = "Failed", "ClientError: The input manifest has no data objects."
        job.counters = counters
    elif status == "Failed":
        job.failure_reason = script.failure_reason or "Labeling failed"
    job.status = status
    if status in LABELING_OUTCOMES:
        job.ended_at = lifecycle.utc_now()


def _describe(job: _Labeling) -> dict[str, Any]:
    request = job.request
    answer: dict[str, Any] = {
        key: request[key]
        for key in (
            "LabelingJobName",
            "LabelAttributeName",
            "InputConfig",
            "OutputConfig",
            "RoleArn",
            "LabelCategoryConfigS3Uri",
            "HumanTaskConfig",
            "Tags",
        )
        if key in request
    }
    answer.update(
        LabelingJobArn=job.arn,
        LabelingJobStatus=job.status,
        CreationTime=job.created_at,
        LastModifiedTime=job.ended_at or job.created_at,
        JobReferenceCode=job.arn.rsplit("/", 1)[-1],
        LabelCounters=job.counters
        or {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 0,
        },
    )
    if job.failure_reason:
        answer["FailureReason"] = job.failure_reason
    if job.status == "Completed":
        answer["LabelingJobOutput"] = {"OutputDatasetS3Uri": output_manifest_uri(request)}
    return answer


def _jobs(backend: Any) -> dict[str, _Labeling]:
    return backend.__dict__.setdefault("sagelift_labeling_jobs", {})


def patch_labeling() -> None:
    """Add the labeling job calls to moto's SageMaker. Called once by sagemaker_lifecycle._patch_moto."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    def create(self: Any) -> Any:
        backend = self.sagemaker_backend
        request = json.loads(self.body)
        name = request["LabelingJobName"]
        arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:labeling-job/{name.lower()}"
        life = lifecycle.active()
        with lifecycle._LOCK:
            if name in _jobs(backend):
                raise ResourceInUseException(message=f"Labeling job {name} already exists ({arn})")
            for field, uri in (
                ("ManifestS3Uri", request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]),
                ("UiTemplateS3Uri", request["HumanTaskConfig"]["UiConfig"].get("UiTemplateS3Uri", "")),
                ("LabelCategoryConfigS3Uri", request.get("LabelCategoryConfigS3Uri", "")),
            ):
                if uri and _read(backend.account_id, uri) is None:
                    raise ValidationError(message=f"{field} {uri} does not exist or the role cannot read it")
            job = _Labeling(
                request=request,
                arn=arn,
                account=backend.account_id,
                created=life.now() if life is not None else 0.0,
                created_at=lifecycle.utc_now(),
                script=(life.labeling_script if life is not None else None) or LabelingScript(),
            )
            _jobs(backend)[name] = job
            _advance(job, life)
        return ActionResult({"LabelingJobArn": arn})

    def _job(self: Any) -> _Labeling:
        name = self._get_param("LabelingJobName")
        job = _jobs(self.sagemaker_backend).get(name)
        if job is None:
            raise ResourceNotFound(message=f"Could not find labeling job '{name}'.")
        return job

    def describe(self: Any) -> Any:
        job = _job(self)
        with lifecycle._LOCK:
            _advance(job, lifecycle.active())
            return ActionResult(_describe(job))

    def stop(self: Any) -> Any:
        job = _job(self)
        life = lifecycle.active()
        with lifecycle._LOCK:
            _advance(job, life)
            if job.status not in ("Initializing", "InProgress", "Stopping"):
                raise ValidationError(
                    message=f"The request was rejected because the labeling job is in status {job.status}."
                )
            if life is None:
                job.status, job.ended_at = "Stopped", lifecycle.utc_now()
            elif job.stop_requested is None:
                job.stop_requested = life.now()
                _advance(job, life)
        return ActionResult({})

    def list_jobs(self: Any) -> Any:
        with lifecycle._LOCK:
            summaries = []
            for job in _jobs(self.sagemaker_backend).values():
                _advance(job, lifecycle.active())
                described = _describe(job)
                summaries.append(
                    {
                        "WorkteamArn": job.request["HumanTaskConfig"]["WorkteamArn"],
                        **{
                            key: described[key]
                            for key in (
                                "LabelingJobName",
                                "LabelingJobArn",
                                "CreationTime",
                                "LastModifiedTime",
                                "LabelingJobStatus",
                                "LabelCounters",
                                "FailureReason",
                                "LabelingJobOutput",
                            )
                            if key in described
                        },
                    }
                )
        return ActionResult({"LabelingJobSummaryList": summaries})

    SageMakerResponse.create_labeling_job = create  # type: ignore[attr-defined]
    SageMakerResponse.describe_labeling_job = describe  # type: ignore[attr-defined]
    SageMakerResponse.stop_labeling_job = stop  # type: ignore[attr-defined]
    SageMakerResponse.list_labeling_jobs = list_jobs  # type: ignore[attr-defined]
