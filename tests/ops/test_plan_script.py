"""``make plan CONF=...`` (scripts/plan.py): without Airflow, validate, reach the account through the role
chain from the process's own identity, read it, print the change set; no request the local AWS receives
writes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.plan import main
from tests.support.local_aws import LocalAws
from tests.support.scenario import Scenario, demo_conf

# What the role chain and the reads send: STS's two calls, and reads named as reads.
READS = ("Describe", "List", "Get", "Head")
CHAIN = ("AssumeRole", "GetCallerIdentity")


def is_read(method: str, target: str, path: str) -> bool:
    """A request of the local AWS's log: REST reads are GET/HEAD, query and JSON APIs name their action."""
    if method in ("GET", "HEAD"):
        return True
    action = target.split(".")[-1] or path
    return action.startswith(READS) or action in CHAIN


def test_make_plan_prints_the_change_set_and_writes_nothing(
    local_aws: LocalAws,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = Scenario(local_aws).build()
    key, secret = world.runner_key
    for name, value in {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": local_aws.url,
        "SAGELIFT_PLATFORM": json.dumps(world.platform()),
    }.items():
        monkeypatch.setenv(name, value)
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(demo_conf()))
    before = local_aws.request_count()

    assert main([str(conf), "--run-id", "plan_script__1"]) == 0

    out, err = capsys.readouterr()
    assert "as arn:aws:sts::333333333333:assumed-role/sagelift-pipeline-execution/" in err
    # 9: the lock, training job, model package group and version (register_model), model, config, endpoint,
    # API and its stage
    assert "9 to create, 0 to update, 2 unchanged. Nothing was changed." in out
    assert "+ create    SageMaker model package version churn-predictor (a new version)" in out
    assert "+ create    SageMaker endpoint churn-predictor" in out
    received = local_aws.requests[before:]
    assert any(r.target.endswith("DescribeEndpoint") for r in received)
    # the STS hops and every read; a POST is a read only when it names a read action (query APIs name it
    # in the body, which the log does not keep: STS is the only one here)
    writes = [(r.method, r.path, r.target) for r in received if not is_read(r.method, r.target, r.path)]
    assert all(r[0] == "POST" and r[1] == "/" and not r[2] for r in writes), writes
    assert len(writes) == 3  # AssumeRole twice (runner -> master -> execution role), GetCallerIdentity
    assert local_aws.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_a_refused_conf_names_the_field_and_reaches_no_account(
    local_aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = Scenario(local_aws)
    monkeypatch.setenv("SAGELIFT_PLATFORM", json.dumps(world.platform()))
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps(demo_conf(plan_only="yes")))
    before = local_aws.request_count()

    assert main([str(conf)]) == 2

    assert capsys.readouterr().err.startswith("plan: plan_only: must be true or false")
    assert local_aws.request_count() == before


def test_a_conf_file_that_is_not_a_json_object_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf.json"
    conf.write_text("[1, 2]")
    assert main([str(conf)]) == 2
    assert capsys.readouterr().err.startswith(f"plan: conf: {conf}: must be a JSON object")
