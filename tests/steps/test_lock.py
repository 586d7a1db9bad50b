"""The model lock's S3 protocol (sagelift.steps.lock) against the local AWS: take, hold, lapse, give back.

Each test reads the lock object as an administrator of the scientist account would, to see what a user
inspecting the bucket sees.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import boto3
import pytest
from botocore.config import Config

from sagelift.domain.labeling import LabelingSettings
from sagelift.domain.lock import lease_seconds_for, plan_lock, run_holder
from sagelift.domain.monitoring import MonitoringSettings
from sagelift.domain.plan import Plan
from sagelift.domain.recommendation import RecommendationSettings
from sagelift.steps import lock as locks
from sagelift.steps.errors import StepFailed
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.task_context import step_plan

BUCKET = f"sagelift-state-{SCIENTIST_ACCOUNT}"
KEY = f"locks/{SCIENTIST_ACCOUNT}/churn-predictor.json"


def _platform(**locks_settings) -> dict:
    return {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "locks_s3_uri": "s3://sagelift-state-{account_id}/locks/",
        "locks": {"check_interval_seconds": 1, **locks_settings},
    }


def _plan(run: str, model: str = "churn-predictor", **locks_settings) -> Plan:
    conf = {"model_name": model}
    return Plan.from_xcom(step_plan(conf, _platform(**locks_settings), run_id=f"manual__{run}"))


@pytest.fixture
def s3(local_aws):
    """A client as the product's are made (the account's own keys, botocore's standard retries)."""
    local_aws.client("s3", SCIENTIST_ACCOUNT).create_bucket(Bucket=BUCKET)
    key, secret = local_aws.create_access_key(SCIENTIST_ACCOUNT, user="lock-test")
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
    ).client("s3", endpoint_url=local_aws.url, config=Config(retries={"mode": "standard"}))


def _object(local_aws) -> dict | None:
    admin = local_aws.client("s3", SCIENTIST_ACCOUNT)
    try:
        return json.loads(admin.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
    except admin.exceptions.NoSuchKey:
        return None


def test_the_lock_lives_per_account_and_model_where_the_platform_says():
    lock = plan_lock(_plan("a"))
    assert (lock.bucket, lock.key, lock.uri) == (BUCKET, KEY, f"s3://{BUCKET}/{KEY}")
    override = _platform()
    override["accounts"][SCIENTIST_ACCOUNT] = {"locks_s3_uri": "s3://team-bucket"}
    plan = Plan.from_xcom(step_plan(None, override))
    assert plan_lock(plan).uri == f"s3://team-bucket/{SCIENTIST_ACCOUNT}/churn-predictor.json"
    unset = Plan.from_xcom(step_plan(None, {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}}))
    assert plan_lock(unset) is None


def test_the_derived_lease_covers_the_run_s_own_budgets():
    trains = _plan("a")
    settings = trains.platform
    copy_and_endpoint = 2 * 120 * 60 + 2 * settings.sagemaker.endpoint_wait_budget_seconds + 3600
    assert lease_seconds_for(trains) == settings.sagemaker.training_wait_budget_seconds + copy_and_endpoint
    artifact_conf = {
        "model_artifact_s3_path": "s3://scientist-ml-data/models/churn/model.tar.gz",
        "training_docker_image": "",
        "training_channels": [],
        "training_s3_output_path": "",
    }
    artifact = Plan.from_xcom(step_plan(artifact_conf, _platform()))
    assert lease_seconds_for(artifact) == copy_and_endpoint
    assert lease_seconds_for(_plan("a", lease_seconds=600)) == 600
    # A linear update bakes after each step (5 steps of 20 %), and a smoke test's revert waits once more.
    endpoint = {
        "deployment": {"type": "linear", "linear_step_percent": 20, "bake_seconds": 1800},
        "smoke_test": {"body": "{}"},
    }
    guarded = Plan.from_xcom(step_plan({**artifact_conf, "endpoint": endpoint}, _platform()))
    budget = settings.sagemaker.endpoint_wait_budget_seconds
    assert lease_seconds_for(guarded) == copy_and_endpoint + 5 * 1800 + budget
    # batch_transform waits under the lock too, within the training wait budget
    scoring = Plan.from_xcom(
        step_plan({"batch": {"input_s3_uri": "s3://scientist-ml-data/score/"}}, _platform())
    )
    assert scoring.params.batch.enabled
    assert (
        lease_seconds_for(scoring)
        == lease_seconds_for(trains) + settings.sagemaker.training_wait_budget_seconds
    )
    # issue 20's jobs wait under the lock too: an Inference Recommender job and the monitoring baseline
    # within that budget each, labeling as long as its tasks stay open (2 days + 5 min + 1 h by default)
    params = replace(
        trains.params,
        labeling=LabelingSettings.from_dict({"manifest_s3_uri": "s3://scientist-ml-data/label/in.manifest"}),
        instance_recommendation=RecommendationSettings.from_dict({"job": "default"}),
        monitoring=MonitoringSettings.from_dict({"schedule": "daily"}),
    )
    assert params.labeling.enabled and params.instance_recommendation.enabled and params.monitoring.enabled
    assert lease_seconds_for(replace(trains, params=params)) == (
        lease_seconds_for(trains)
        + 2 * settings.sagemaker.training_wait_budget_seconds
        + 2 * 86400
        + 300
        + 3600
    )


def test_one_run_holds_the_lock_until_it_gives_it_back(s3, local_aws):
    first, second = _plan("first"), _plan("second")
    lock = plan_lock(first)

    taken = locks.try_acquire(s3, lock, run_holder(first))
    refused = locks.try_acquire(s3, lock, run_holder(second))
    held = _object(local_aws)
    not_given_by_the_other = locks.release(s3, lock, second.names.run_key)
    given_back = locks.release(s3, lock, first.names.run_key)
    after = _object(local_aws)
    then = locks.try_acquire(s3, lock, run_holder(second))

    assert taken.acquired and not refused.acquired
    assert refused.state.holder.run_id == first.run_id
    assert refused.state.until > refused.state.since  # the lease, by S3's clock
    assert held["run_id"] == first.run_id and held["model_name"] == "churn-predictor"
    assert (not_given_by_the_other, given_back, after) == (False, True, None)
    assert then.acquired and _object(local_aws)["run_id"] == second.run_id


def test_the_holder_takes_its_own_lock_again_on_a_retry(s3, local_aws):
    plan = _plan("first")
    lock = plan_lock(plan)
    assert locks.try_acquire(s3, lock, run_holder(plan)).acquired
    again = locks.try_acquire(s3, lock, run_holder(plan))
    assert again.acquired and again.took_over is None
    assert _object(local_aws)["run_key"] == plan.names.run_key


def test_other_models_and_accounts_are_not_held_by_it(s3):
    churn, fraud = _plan("a"), _plan("b", model="fraud-scorer")
    assert locks.try_acquire(s3, plan_lock(churn), run_holder(churn)).acquired
    assert locks.try_acquire(s3, plan_lock(fraud), run_holder(fraud)).acquired


def test_a_lapsed_lock_goes_to_exactly_one_of_the_runs_racing_for_it(s3, local_aws):
    crashed = _plan("crashed", lease_seconds=1)
    lock = plan_lock(crashed)
    assert locks.try_acquire(s3, lock, run_holder(crashed)).acquired
    time.sleep(2.2)  # S3's clock counts in whole seconds
    racers = [_plan(f"racer-{n}") for n in range(4)]
    start, attempts = threading.Barrier(len(racers)), {}

    def race(plan: Plan) -> None:
        start.wait()
        attempts[plan.run_id] = locks.try_acquire(s3, lock, run_holder(plan))

    threads = [threading.Thread(target=race, args=(p,)) for p in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    winners = [run_id for run_id, a in attempts.items() if a.acquired]
    assert len(winners) == 1, attempts
    assert attempts[winners[0]].took_over.run_id == crashed.run_id
    assert _object(local_aws)["run_id"] == winners[0]
    losers = [a for a in attempts.values() if not a.acquired]
    assert all(a.state.holder.run_id == winners[0] for a in losers)


def test_a_body_sagelift_did_not_write_is_refused_naming_the_object(s3, local_aws):
    local_aws.client("s3", SCIENTIST_ACCOUNT).put_object(Bucket=BUCKET, Key=KEY, Body=b'{"holder": "me"}')
    plan = _plan("a")
    with pytest.raises(StepFailed) as raised:
        locks.try_acquire(s3, plan_lock(plan), run_holder(plan))
    first_line, reason = str(raised.value).splitlines()
    assert first_line == (
        f"The lock object s3://{BUCKET}/{KEY} of model churn-predictor was not written by sagelift: "
        "delete it unless a run of the model is running."
    )
    assert len(first_line) <= 200 and reason == "Its body is not a sagelift-model-lock record of version 1."


class _FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_wait_that_runs_out_names_the_model_the_account_and_the_holding_run(s3):
    holder, waiter = _plan("holder"), _plan("waiter", wait_budget_seconds=5, check_interval_seconds=2)
    assert locks.try_acquire(s3, plan_lock(holder), run_holder(holder)).acquired
    clock = _FakeClock()

    with pytest.raises(StepFailed) as raised:
        locks.acquire_waiting(s3, waiter, sleep=clock.sleep, clock=clock)

    message = str(raised.value)
    assert message.splitlines()[0].startswith(
        f"Model churn-predictor in account {SCIENTIST_ACCOUNT} is locked by run {holder.run_id} "
        "of sagemaker_deploy"
    )
    assert "waited 5 s (platform.locks.wait_budget_seconds)" in message
    assert f"deleting s3://{BUCKET}/{KEY} releases it" in message
    assert clock.sleeps == [2, 2, 1]


def test_a_waiting_run_takes_the_lock_once_the_holder_gives_it_back(s3):
    holder, waiter = _plan("holder"), _plan("waiter", wait_budget_seconds=60)
    lock = plan_lock(holder)
    assert locks.try_acquire(s3, lock, run_holder(holder)).acquired
    clock = _FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            locks.release(s3, lock, holder.names.run_key)

    outcome = locks.acquire_waiting(s3, waiter, sleep=sleep, clock=clock)

    assert outcome["lock_uri"] == lock.uri and outcome["run_key"] == waiter.names.run_key
    assert outcome["waited_for"] == [holder.run_id] and outcome["waited_seconds"] == 3
    assert outcome["took_over_from"] is None


def test_a_run_whose_lock_another_run_took_stops_before_the_endpoint(s3, local_aws):
    slow, next_run = _plan("slow", lease_seconds=1), _plan("next")
    lock = plan_lock(slow)
    assert locks.try_acquire(s3, lock, run_holder(slow)).acquired
    time.sleep(2.2)
    assert locks.try_acquire(s3, lock, run_holder(next_run)).took_over.run_id == slow.run_id

    with pytest.raises(StepFailed, match=f"is now locked by run {next_run.run_id} of sagemaker_deploy"):
        locks.verify_held(s3, slow)
    locks.verify_held(s3, next_run)
    assert locks.runs_in_progress(s3, slow) == {next_run.names.run_key}
    assert locks.runs_in_progress(s3, next_run) == frozenset()


def test_renewing_starts_the_lease_again_so_a_long_run_keeps_its_lock(s3, local_aws):
    """Two runs take their models' locks with a 3 s lease; one renews after 2.5 s. At 4.2 s the other's
    lock has lapsed and a later run takes it over; the renewed one is still held. S3's clock counts whole
    seconds, cut down, so a 3 s lease lapses 3 to 5 s after it was written (never early): the idle lock
    lapsed by 4 s, the renewed one lapses after 5.5 s."""
    long_run, idle = _plan("long", lease_seconds=3), _plan("idle", model="fraud-scorer", lease_seconds=3)
    assert locks.try_acquire(s3, plan_lock(long_run), run_holder(long_run)).acquired
    assert locks.try_acquire(s3, plan_lock(idle), run_holder(idle)).acquired
    time.sleep(2.5)
    renewed = locks.renew(s3, long_run)
    assert renewed is not None and renewed.holder.run_key == long_run.names.run_key
    time.sleep(1.7)

    later, later_fraud = _plan("later"), _plan("later-fraud", model="fraud-scorer")
    refused = locks.try_acquire(s3, plan_lock(later), run_holder(later))
    taken = locks.try_acquire(s3, plan_lock(idle), run_holder(later_fraud))

    assert not refused.acquired and refused.state.holder.run_id == long_run.run_id
    assert taken.acquired and taken.took_over.run_id == idle.run_id
    assert _object(local_aws)["run_id"] == long_run.run_id  # the body is the same record, rewritten
    with pytest.raises(StepFailed, match=f"is now locked by run {later_fraud.run_id} of sagemaker_deploy"):
        locks.renew(s3, idle)  # the run that did not renew stops at its next renewal


def test_a_lock_released_by_hand_is_taken_again_before_the_endpoint(s3, local_aws):
    plan = _plan("a")
    assert locks.try_acquire(s3, plan_lock(plan), run_holder(plan)).acquired
    local_aws.client("s3", SCIENTIST_ACCOUNT).delete_object(Bucket=BUCKET, Key=KEY)
    locks.verify_held(s3, plan)
    assert _object(local_aws)["run_id"] == plan.run_id


def test_without_a_lock_location_runs_are_not_serialized(s3, local_aws):
    plan = Plan.from_xcom(step_plan(None, {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}}))
    before = local_aws.request_count()
    assert locks.acquire_waiting(s3, plan) == {"lock_uri": None}
    assert locks.release_run(s3, plan) is False
    locks.verify_held(s3, plan)
    assert locks.renew(s3, plan) is None
    assert locks.runs_in_progress(s3, plan) is None  # unknown: pruning spares models without a config
    assert local_aws.request_count() == before
