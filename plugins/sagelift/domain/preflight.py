"""The rules between a run's parameters and the platform, checked by validate before anything is created.

``parse_params`` checks the conf on its own and ``PlatformConfig.from_dict`` the platform on its own;
what is left are the rules that need both, each one a rule some later step would otherwise enforce
hours later (the step is named next to each check). ``build_plan`` runs them all.
"""

from __future__ import annotations

from sagelift.domain.batch_settings import check_batch_against_platform
from sagelift.domain.endpoint_settings import check_endpoint_against_caps
from sagelift.domain.errors import Problems, SageliftValidationError, show
from sagelift.domain.images import (
    check_image_sources,
    ecr_registry_host,
    plan_image_steps,
)
from sagelift.domain.labeling import check_labeling_against_platform
from sagelift.domain.monitoring import check_monitoring_region
from sagelift.domain.multi_model import check_multi_model_against_platform
from sagelift.domain.overrides import check_request_overrides
from sagelift.domain.params import IMAGE_MAX, RunParams, builtin_algorithm_image
from sagelift.domain.platform import PlatformConfig, s3_key_segments_problem
from sagelift.domain.recommendation import check_recommendation_against_platform, serves_own_endpoint
from sagelift.domain.tags import check_tags, derive_run_tags
from sagelift.domain.training_settings import check_training_against_platform

# "@sha256:" and 64 hex characters: how much pinning by digest adds to an image reference.
DIGEST_SUFFIX_LEN = len("@sha256:") + 64


def check_against_platform(
    params: RunParams, platform: PlatformConfig, dag_id: str, run_id: str, problems: Problems
) -> None:
    """Add a problem for every rule between ``params`` and ``platform`` that they break."""
    try:
        account = platform.account(params.account_id)  # assume_role_chain: only onboarded accounts
    except SageliftValidationError as err:
        problems.extend(err)
    else:  # deploy_endpoint: the account's caps on the serving settings
        if params.deploys:
            check_endpoint_against_caps(params.endpoint, account.endpoint, problems)
        # batch_transform: reads and writes only where the account's batch_prefixes allow
        check_batch_against_platform(
            params.batch, account.batch_prefixes, params.training_s3_output_path, problems
        )
        # recommend_instance and deploy_endpoint: the job is allowed, "auto" has an endpoint to size
        check_recommendation_against_platform(
            params.instance_recommendation,
            endpoint_instance_type=params.endpoint_instance_type,
            allows_job=account.inference_recommender,
            allowed_types=account.endpoint_instance_types,
            account_id=params.account_id,
            serves_own_endpoint=serves_own_endpoint(params),
            problems=problems,
        )
        # label_data: the account's workteam, the region's Ground Truth functions, the manifest's prefix
        check_labeling_against_platform(
            params.labeling,
            account_id=params.account_id,
            workteam_arn=account.labeling_workteam_arn,
            prefixes=account.labeling_prefixes,
            region=platform.region,
            problems=problems,
        )
        # create_model, deploy_endpoint: the team's shared endpoint is enabled and serves this model
        check_multi_model_against_platform(
            params.multi_model,
            account_id=params.account_id,
            endpoints=account.multi_model_endpoints,
            model_image=params.model_docker_image,
            algorithm=params.training_algorithm_name,
            instance_type=params.endpoint_instance_type,
            problems=problems,
            region=platform.region,
        )
    _check_algorithm_region(params, platform, problems)
    # monitor_endpoint: the analyzer image exists in the region
    check_monitoring_region(params.monitoring, platform.region, problems)
    _check_images(params, platform, problems)
    # train_model: a spot job's max wait covers the platform's max runtime
    check_training_against_platform(
        params.training, platform.sagemaker.training_max_runtime_seconds, problems
    )
    # train_model, create_model, deploy_endpoint: only the request fields the platform allows
    check_request_overrides(
        params.request_overrides,
        platform.sagemaker.allowed_overrides,
        problems,
        trains=params.trains,
        deploys=params.deploys,
        batch=params.batch.enabled,
    )
    if params.tags_s3_path is not None:  # resolve_tags: only documents the platform allows
        problem = tag_document_problem(params.tags_s3_path, platform)
        if problem is not None:
            problems.add("tags_s3_path", problem)
    platform.kubernetes.claim_override_problems(params.pvc_size, params.pvc_storage_class, problems)
    try:  # resolve_tags: the run's own tags go on every resource
        check_tags(
            derive_run_tags(
                model_name=params.model_name, dag_id=dag_id, run_id=run_id, account_id=params.account_id
            ),
            "tags (run)",
        )
    except SageliftValidationError as err:
        problems.extend(err)


def _check_algorithm_region(params: RunParams, platform: PlatformConfig, problems: Problems) -> None:
    """train_model and create_model: a built-in algorithm's image must exist in the platform's region."""
    algorithm = params.training_algorithm_name
    if algorithm is not None and builtin_algorithm_image(algorithm, platform.region) is None:
        problems.add(
            "training_algorithm_name",
            f"{show(algorithm)} has no registry listed for region {platform.region} in sagelift's algorithm table",
        )


def _check_images(params: RunParams, platform: PlatformConfig, problems: Problems) -> None:
    """copy_images: allowed sources and valid ECR repository names; train_model and create_model: the
    digest-pinned reference SageMaker receives fits its 255 characters."""
    images = params.to_dict()
    check_image_sources(images, platform.ecr, platform.accounts, problems)
    try:
        steps = plan_image_steps(images, params.account_id, platform.region, platform.ecr.repository_prefix)
    except SageliftValidationError as err:
        problems.extend(err)
        return
    host = ecr_registry_host(params.account_id, platform.region)
    for step in steps:
        pinned = f"{host}/{step.target_repository}" if step.copy else step.source.name
        if len(pinned) + DIGEST_SUFFIX_LEN > IMAGE_MAX:
            problems.add(
                step.param,
                f"once copied to ECR and pinned by digest it has {len(pinned) + DIGEST_SUFFIX_LEN} characters; "
                f"SageMaker takes {IMAGE_MAX}: use a shorter repository path",
            )


def tag_document_problem(uri: str, platform: PlatformConfig) -> str | None:
    """Why a run may not read its standard tags from ``uri``, or None when the platform allows it.

    The document's contents are logged, passed on and put on every resource, and it is read with the
    scientist account's role, so a conf may name only the platform's own ``tags_s3_uri`` or a document
    under ``platform.allowed_tag_document_prefixes`` (an entry ending in '/' allows what is under it,
    any other entry exactly that object).
    """
    segments = s3_key_segments_problem(uri)
    if segments is not None:
        return f"{show(uri, 48)} {segments}"
    allowed = (
        (platform.tags_s3_uri,) if platform.tags_s3_uri else ()
    ) + platform.allowed_tag_document_prefixes
    if any(uri == entry or (entry.endswith("/") and uri.startswith(entry)) for entry in allowed):
        return None
    return f"{show(uri, 48)} is neither the platform's tags_s3_uri nor under platform.allowed_tag_document_prefixes"
