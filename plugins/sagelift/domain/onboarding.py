"""Onboarding a scientist account: the IAM policies of the three roles and the account's connection.

Rendered from the jinja2 templates in the package's assets/iam/ and the platform configuration, so the trust chain
(runner -> master pipeline role -> pipeline execution role) and the connection that performs it can
never drift apart. ``scripts/onboard.py`` (``make onboard``) writes them out for an ML engineer to apply
with their usual tooling (Terraform, CloudFormation, the console) and to add the connection to Airflow.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jinja2

from sagelift.domain.lock import account_locks
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.security import execution_role_statements, sagemaker_role_statements
from sagelift.domain.training_settings import checkpoint_role_statements

# package data, so an installed wheel renders the same policies as the work tree
TEMPLATES = resources.files("sagelift").joinpath("assets", "iam")

# (output name, template, which account it belongs in)
POLICIES = (
    ("master-trust", "master-trust.json.j2", "ml-support"),
    ("master-permissions", "master-permissions.json.j2", "ml-support"),
    ("execution-trust", "execution-trust.json.j2", "scientist"),
    ("execution-permissions", "execution-permissions.json.j2", "scientist"),
    ("training-and-model-trust", "sagemaker-role-trust.json.j2", "scientist"),
    ("training-and-model-permissions", "sagemaker-role-permissions.json.j2", "scientist"),
    ("apigateway-invoke-trust", "apigateway-invoke-trust.json.j2", "scientist"),
    ("apigateway-invoke-permissions", "apigateway-invoke-permissions.json.j2", "scientist"),
)


def _s3_arns(uris: list[str], *, buckets: bool) -> list[str]:
    """Object ARNs for S3 URIs (a trailing '/' means everything under the prefix), plus bucket ARNs."""
    arns: set[str] = set()
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if buckets:
            arns.add(f"arn:aws:s3:::{bucket}")
        arns.add(
            f"arn:aws:s3:::{bucket}/{key}*"
            if not key or key.endswith("/")
            else f"arn:aws:s3:::{bucket}/{key}"
        )
    return sorted(arns)


def _labeling_document_arns(output_uris: list[str]) -> list[str]:
    """``<output>/<job>/labeling-input/*`` under each training output (sagelift.domain.labeling)."""
    arns = set()
    for uri in output_uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        arns.add(f"arn:aws:s3:::{bucket}/{key.rstrip('/') + '/' if key.strip('/') else ''}*/labeling-input/*")
    return sorted(arns)


def render_policies(
    platform: PlatformConfig,
    account_id: str,
    *,
    runner_principal_arn: str,
    data_uris: list[str],
    output_uris: list[str],
    templates: Traversable = TEMPLATES,
) -> dict[str, dict[str, Any]]:
    """Every policy document for onboarding ``account_id``, parsed; raises on an unknown account."""
    account = platform.account(account_id)
    if platform.master_role_arn is None:
        raise ValueError("platform.master_role_arn: required to onboard an account")
    read_uris = list(data_uris) + ([platform.tags_s3_uri] if platform.tags_s3_uri else [])
    read_uris += list(account.batch_prefixes)  # a batch transform reads its input there (issue 17)
    if account.labeling_workteam_arn:  # a labeling job reads the manifest's objects and its own output
        read_uris += list(account.labeling_prefixes) + list(output_uris)
    # recommend_instance (issue 20) reads the size of the run's artifact under the training output
    read_uris += list(output_uris)
    # monitor_endpoint (issue 20): the baseline reads the training data, the monitor the endpoint's
    # captures; both read the baseline's results under the training output (only where capture can be on)
    monitoring = bool(account.endpoint.capture_prefixes)
    if monitoring:
        read_uris += list(account.endpoint.capture_prefixes) + list(output_uris)
    # a team's shared multi-model endpoint (issue 20): its model reads the prefix; create_model copies a
    # run's artifact there and teardown deletes it (the execution role lists, writes and deletes)
    shared_prefixes = sorted({e.prefix for e in account.multi_model_endpoints.values()})
    read_uris += shared_prefixes
    locks = account_locks(platform, account_id)
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: templates.joinpath(name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    values = {
        "account_id": account_id,
        "region": platform.region,
        "runner_principal_arn": runner_principal_arn,
        "master_role_arn": platform.master_role_arn,
        "master_external_id": platform.master_external_id,
        "execution_external_id": account.execution_external_id,
        "execution_roles": [
            (a, s.execution_role_name or platform.execution_role_name)
            for a, s in sorted(platform.accounts.items())
        ],
        "training_role_name": account.training_role_name or platform.training_role_name,
        "model_role_name": account.model_role_name or platform.model_role_name,
        "api_invoke_role_name": account.api_invoke_role_name or platform.api_invoke_role_name,
        "s3_read_arns": _s3_arns(read_uris, buckets=True),
        # training output (where a batch transform writes by default), where the account's endpoints write
        # data capture and async results, and its batch prefixes (a transform's output may be there)
        "s3_write_arns": _s3_arns(
            list(output_uris) + list(account.endpoint.capture_prefixes) + list(account.batch_prefixes),
            buckets=False,
        ),
        # the account's model locks (sagelift.steps.lock), when the platform serializes runs
        "lock_bucket_arn": f"arn:aws:s3:::{locks[0]}" if locks else None,
        "lock_objects_arn": f"arn:aws:s3:::{locks[0]}/{locks[1]}*" if locks else None,
        # the EC2 and KMS permissions the account's network settings need (none without them)
        "sagemaker_network_statements": sagemaker_role_statements(
            account.network, account_id, platform.region
        ),
        "execution_network_statements": execution_role_statements(
            account.network, account_id, platform.region
        ),
        # a spot job resumes from the checkpoints it wrote under the training output (issue 17)
        "checkpoint_statements": checkpoint_role_statements(list(output_uris)),
        # monitor_endpoint's baseline job, data-quality definitions and the endpoint's schedule (issue 20)
        "monitoring": monitoring,
        # recommend_instance's Inference Recommender jobs, where the account allows them (issue 20)
        "inference_recommender": account.inference_recommender,
        # the teams' shared multi-model endpoints' prefixes (issue 20): the execution role's writes there
        "multi_model_prefix_arns": _s3_arns(shared_prefixes, buckets=False),
        "multi_model_bucket_arns": sorted(
            {a.split("/", 1)[0] for a in _s3_arns(shared_prefixes, buckets=False)}
        ),
        # label_data writes the labeling job's worker template and labels beside its output (issue 20)
        "labeling_document_arns": (
            _labeling_document_arns(output_uris) if account.labeling_workteam_arn else []
        ),
    }
    return {name: json.loads(env.get_template(template).render(**values)) for name, template, _ in POLICIES}


def render_connection(platform: PlatformConfig, account_id: str, **local_overrides: Any) -> dict[str, Any]:
    """The Airflow connection ``sagelift_aws_<account>`` that performs the chain (no credentials in it:
    the worker's own identity, e.g. IRSA, is the first link)."""
    account = platform.account(account_id)
    hop: dict[str, Any] = {"role_arn": platform.master_role_arn}
    if platform.master_external_id:
        hop["external_id"] = platform.master_external_id
    extra: dict[str, Any] = {
        "region_name": platform.region,
        "role_chain": [hop],
        "role_arn": platform.execution_role_arn(account_id),
        "session_duration_seconds": platform.session_duration_seconds,
        "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 10}},
    }
    if account.execution_external_id:
        extra["assume_role_kwargs"] = {"ExternalId": account.execution_external_id}
    extra.update(local_overrides)
    return {
        "conn_type": "aws",
        "description": f"sagelift: scientist account {account_id} through the role chain",
        "extra": extra,
    }
