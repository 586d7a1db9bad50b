"""`make demo` as a newcomer sees it: every step runs and succeeds (the optional ones its conf does not use skip), both images are copied from the local
source registry with their digests kept, and a successful run prints no error and no warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

TASKS = [
    "validate",
    "ensure_pvc",
    "assume_role_chain",
    "plan_changes",
    "acquire_model_lock",
    "resolve_tags",
    "copy_images",
    "label_data",
    "train_model",
    "tune_model",
    "register_model",
    "approve_deploy",
    "recommend_instance",
    "create_model",
    "deploy_endpoint",
    "expose_api",
    "monitor_endpoint",
    "batch_transform",
    "summarize_run",
    "release_model_lock",
]
# The demo's conf sets no labeling, no tuning, no monitoring and no batch scoring, and its account needs
# no approval.
OPTIONAL_AND_UNUSED = {"label_data", "tune_model", "approve_deploy", "monitor_endpoint", "batch_transform"}
DIGEST = r"sha256:[0-9a-f]{64}"


def _section(output: str, heading: str) -> list[str]:
    """The indented lines under the first line starting with ``heading``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        body.append(line.strip())
    return body


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tests.support.k8s_api import can_run_pods

    if not can_run_pods():
        pytest.skip("the Kubernetes double's kubelet needs root and unshare to run ensure_pvc's pod")
    # The demo configures its own Airflow and AWS; nothing of this test session's may leak into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env["SAGELIFT_DEMO_HOME"] = str(tmp_path_factory.mktemp("demo") / "home")
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.demo", "include/examples/demo.json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done


def test_every_step_runs_and_succeeds(demo):
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    states = dict(line.split() for line in _section(demo.stdout, "run "))
    assert list(states) == TASKS
    assert {t for t, state in states.items() if state == "skipped"} == OPTIONAL_AND_UNUSED, states
    assert {states[t] for t in TASKS if t not in OPTIONAL_AND_UNUSED} == {"success"}, states
    assert re.search(r"^run \S+: success$", demo.stdout, re.MULTILINE)


def test_both_images_are_copied_from_the_source_registry_with_their_digests(demo):
    pushed = {}
    for line in _section(demo.stdout, "conf include/examples/demo.json"):
        param, reference, digest = line.split()
        assert reference.startswith("127.0.0.1:")  # the local source registry, not the account's ECR
        pushed[param] = digest
    assert sorted(pushed) == ["model_docker_image", "training_docker_image"]
    assert all(re.fullmatch(DIGEST, d) for d in pushed.values())
    assert pushed["model_docker_image"] != pushed["training_docker_image"]

    served = {}
    for line in _section(demo.stdout, "images in account"):
        param, name, digest = line.split()[:3]
        served[param] = (name, digest)
    assert served == {
        "model_docker_image": ("sagelift/churn-serving:1.4", pushed["model_docker_image"]),
        "training_docker_image": ("sagelift/churn-train:1.4", pushed["training_docker_image"]),
    }

    # SageMaker was handed the copies in the account's ECR, pinned by those digests.
    created = _section(demo.stdout, "created in account")
    ecr = "333333333333.dkr.ecr.us-east-1.amazonaws.com"
    training = next(line for line in created if line.startswith("training job"))
    # the model is built from the run's registered version, which holds the pinned serving image
    model = next(line for line in created if line.startswith("model ") and " image " in line)
    assert any(line.startswith("model ") and " version arn:aws:sagemaker:" in line for line in created)
    assert training.endswith(f"image {ecr}/sagelift/churn-train@{pushed['training_docker_image']}")
    assert model.endswith(f"image {ecr}/sagelift/churn-serving@{pushed['model_docker_image']}")
    assert any(re.match(r"PVC\s+sagelift-pipeline\s+Bound\b", line) for line in created)


def test_a_successful_run_prints_no_error_and_no_warning(demo):
    output = demo.stdout + demo.stderr
    noisy = [line for line in output.splitlines() if re.search(r"error|warn|traceback", line, re.IGNORECASE)]
    assert noisy == []


def test_it_prints_its_own_wall_time(demo):
    assert re.search(r"^demo wall time: \d+ s$", demo.stdout, re.MULTILINE)
