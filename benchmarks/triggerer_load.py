"""Defer N concurrent training waits in one triggerer process; print its memory and achieved poll interval.

    .venv/bin/python benchmarks/triggerer_load.py [--counts 100 500 1000] [--seconds 60] [--interval 30]

Starts the local AWS (moto on loopback) with the three-account scenario and a SageMaker lifecycle in
which every training job stays InProgress, creates N training jobs in the scientist account, then runs,
in one separate Python process, N ``SageMakerTrainingCompleteTrigger`` instances concurrently on one
asyncio event loop -- what the triggerer's trigger runner does with deferred tasks: each trigger builds
its role-chained session from the ``sagelift_aws_<account>`` connection and polls DescribeTrainingJob
every ``--interval`` seconds through aiobotocore.

Printed per N: the process's resident memory before the triggers start and its peak while they run
(sampled every 100 ms with psutil), and the achieved poll interval: N x window / DescribeTrainingJob
calls the server received in the window (equal to ``--interval`` when the loop keeps up).

Not measured: the triggerer job itself (its DB heartbeat, trigger assignment, the supervisor process and
log forwarding). Those add a roughly constant overhead, not a per-trigger one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

CHILD = r"""
import asyncio, json, sys, threading, time
import psutil
from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger

names, interval, seconds, conn_id, region = json.loads(sys.argv[1])
proc = psutil.Process()
baseline = proc.memory_info().rss
peak = baseline
stop = threading.Event()

def sample():
    global peak
    while not stop.is_set():
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.1)

async def drive(trigger):
    async for event in trigger.run():
        return event

async def main():
    triggers = [
        SageMakerTrainingCompleteTrigger(
            job_name=n, waiter_delay=interval, waiter_max_attempts=10_000, aws_conn_id=conn_id, region_name=region
        )
        for n in names
    ]
    tasks = [asyncio.create_task(drive(t)) for t in triggers]
    print("RESULT " + json.dumps({"started": time.time()}), flush=True)
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

threading.Thread(target=sample, daemon=True).start()
asyncio.run(main())
stop.set()
print("RESULT " + json.dumps({"baseline_mb": baseline / 2**20, "peak_mb": peak / 2**20}), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window per N")
    parser.add_argument("--interval", type=int, default=30, help="check_interval_seconds of each trigger")
    args = parser.parse_args()

    import tempfile

    home = tempfile.mkdtemp(prefix="sagelift-bench-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.sts.RoleChainSessionFactory",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        }
    )
    from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
    from tests.support.sagemaker_lifecycle import SageMakerLifecycle
    from tests.support.scenario import DATA_BUCKET, Scenario, role_arn

    print(f"{'N':>6} {'baseline MB':>12} {'peak MB':>9} {'MB/trigger':>11} {'poll interval s':>16}")
    with LocalAws() as aws:
        for count in args.counts:
            aws.reset()
            scenario = Scenario(aws).build()
            env = dict(os.environ, **scenario.airflow_env())
            life = SageMakerLifecycle().training(seconds=10**9)
            with life.installed(aws):
                sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
                names = [f"bench-{i:05d}" for i in range(count)]
                for name in names:
                    sm.create_training_job(
                        TrainingJobName=name,
                        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
                        RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
                        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
                        ResourceConfig={
                            "InstanceType": "ml.m5.large",
                            "InstanceCount": 1,
                            "VolumeSizeInGB": 1,
                        },
                        StoppingCondition={"MaxRuntimeInSeconds": 86400},
                    )
                payload = json.dumps(
                    [names, args.interval, args.seconds, f"sagelift_aws_{SCIENTIST_ACCOUNT}", REGION]
                )
                child = subprocess.Popen(
                    [sys.executable, "-c", CHILD, payload],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                assert child.stdout is not None
                _result(child.stdout)  # triggers created: the window starts
                # Skip the first interval (every trigger's first poll lands at once), then count.
                time.sleep(args.interval)
                before, window_start = _describes(aws), time.monotonic()
                time.sleep(max(0.0, args.seconds - args.interval))
                calls, window = _describes(aws) - before, time.monotonic() - window_start
                memory = _result(child.stdout)
                child.wait()
            achieved = count * window / calls if calls else float("inf")
            growth = (memory["peak_mb"] - memory["baseline_mb"]) / count
            print(
                f"{count:>6} {memory['baseline_mb']:>12.1f} {memory['peak_mb']:>9.1f} "
                f"{growth:>11.3f} {achieved:>16.1f}",
                flush=True,
            )


def _result(stream: Any) -> dict[str, Any]:
    """The child's next RESULT line (its other output is the triggers' logging)."""
    for line in stream:
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError("the trigger process ended without a result")


def _describes(aws: Any) -> int:
    with aws._lock:
        return sum(1 for r in aws.requests if r.target == "SageMaker.DescribeTrainingJob")


if __name__ == "__main__":
    main()
