"""Defer N concurrent training waits on one triggerer; print its memory, poll interval and STS calls.

    .venv/bin/python benchmarks/triggerer_load.py [--counts 100 500 1000] [--seconds 90] [--interval 30]

What runs, per N: the local AWS (moto on loopback, in this process) with the three-account scenario, a
SageMaker lifecycle in which every training job stays InProgress, and N training jobs in the scientist
account. Then, in a separate process, Airflow's own triggerer machinery: a ``TriggerRunnerSupervisor``
(the triggerer job's supervisor class) forks the real ``TriggerRunner`` and hands it N ``RunTrigger``
workloads of ``SageMakerTrainingCompleteTrigger`` with its default arguments besides the wait settings,
their kwargs serialized and encrypted as the scheduler stores them. Each trigger builds its sessions from
the ``sagelift_aws_<account>`` connection (the two-hop role chain of ``[aws] session_factory``) and polls
DescribeTrainingJob every ``--interval`` seconds, and does whatever else the trigger does while it waits
(tailing the job's CloudWatch log, which these jobs never get far enough to write: reads find nothing).
``--plugins`` loads sagelift from another folder, e.g. a copy with another revision of a module, so that
two revisions can be compared on the same machine.

Printed per N:

- runner MB: resident memory of the TriggerRunner process (where the triggers run) just before the
  triggers are handed to it, and its peak while they run (sampled every 200 ms); MB/polled divides the
  growth by the number of triggers that got as far as describing their job;
- polled: how many of the N jobs were described at least once while the triggers ran, and the seconds
  from the hand-over until all of them had been ("-" if some never were): how long the last trigger
  took to start working;
- poll interval: the time between two consecutive DescribeTrainingJob calls for the same job, mean and
  95th percentile over every job described at least twice: ``--interval`` when every trigger keeps its
  schedule (calls less than a third of ``--interval`` apart count as one: a trigger may describe its job
  once more as it starts, as the log tail does to learn the instance count);
- AssumeRole: calls the local STS answered while the triggerer ran (each hop of the chain is one);
- stalls: how often the runner's own watchdog found its event loop blocked for more than 0.2 s, and the
  longest such block.

Not measured: the supervisor's database work (assigning triggers, heartbeats, persisting events: here
replaced by no-ops, so the supervisor is not the real triggerer job), per-trigger log files (trigger logs go
to the supervisor's output), real AWS latency and throttling, and credential refresh (a window shorter than
the session duration never reaches the refresh margin; tests/e2e/test_role_chain.py covers refresh with a
fake clock). The runner is stopped early (and the row says so) if its memory passes ``--max-rss-mb``, to
keep the machine usable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

STALL = re.compile(r"async thread was blocked for ([0-9.]+) seconds")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the triggers run per N")
    parser.add_argument("--interval", type=int, default=30, help="waiter_delay of each trigger")
    parser.add_argument("--max-rss-mb", type=float, default=6000.0, help="stop the runner above this")
    parser.add_argument(
        "--plugins",
        default=str(ROOT / "plugins"),
        help="the plugins folder the triggerer loads sagelift from, e.g. another revision's to compare",
    )
    parser.add_argument("--triggerer", help=argparse.SUPPRESS)  # internal: run as the triggerer process
    args = parser.parse_args()
    if args.triggerer:
        sys.path.insert(0, args.plugins)
        _run_triggerer(json.loads(Path(args.triggerer).read_text()))
        return

    from cryptography.fernet import Fernet

    home = Path(tempfile.mkdtemp(prefix="sagelift-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.session_factory.RoleChainSessionFactory",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([args.plugins, str(ROOT)]),
        }
    )
    from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
    from tests.support.sagemaker_lifecycle import SageMakerLifecycle
    from tests.support.scenario import DATA_BUCKET, Scenario, role_arn

    print(
        f"sagelift from {args.plugins}; triggers poll every {args.interval} s for {args.seconds:.0f} s; "
        f"logs and results in {home}\n"
        f"{'N':>6} {'runner MB before':>16} {'peak':>7} {'MB/polled':>10} {'polled / all after s':>20} "
        f"{'poll interval s mean / p95':>26} {'AssumeRole':>10} {'stalls':>6} {'longest s':>9}",
        flush=True,
    )
    with LocalAws() as aws:
        for count in args.counts:
            aws.reset()
            scenario = Scenario(aws).build()
            with SageMakerLifecycle().training(seconds=10**9).installed(aws):
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
                payload = home / f"payload-{count}.json"
                result_path = home / f"result-{count}.json"
                payload.write_text(
                    json.dumps(
                        {
                            "names": names,
                            "interval": args.interval,
                            "seconds": args.seconds,
                            "conn_id": f"sagelift_aws_{SCIENTIST_ACCOUNT}",
                            "region": REGION,
                            "max_rss_mb": args.max_rss_mb,
                            "result": str(result_path),
                        }
                    )
                )
                log_path = home / f"triggerer-{count}.log"
                assumed_before = _assumed_roles()
                with _recording_describes() as polls, log_path.open("w") as log:
                    subprocess.run(
                        [sys.executable, __file__, "--triggerer", str(payload), "--plugins", args.plugins],
                        env=dict(os.environ, **scenario.airflow_env()),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        check=True,
                    )
                assumed = _assumed_roles() - assumed_before
            result = json.loads(result_path.read_text())
            (home / f"polls-{count}.json").write_text(json.dumps(polls))
            print(_row(count, args, result, polls, assumed, log_path.read_text()), flush=True)


def _row(
    count: int, args: Any, result: dict[str, Any], polls: list[tuple[float, str]], assumed: int, log: str
) -> str:
    handed = result["handed_at"]
    by_job: dict[str, list[float]] = {}
    for at, name in sorted(polls):
        times = by_job.setdefault(name, [])
        if not times or at - times[-1] >= args.interval / 3:
            times.append(at)
    firsts = [times[0] for times in by_job.values()]
    all_polled = f"{max(firsts) - handed:.1f}" if len(firsts) == count else "-"
    polled = f"{len(firsts)} / {all_polled}"
    gaps = sorted(b - a for times in by_job.values() for a, b in pairwise(times))
    achieved = f"{sum(gaps) / len(gaps):.1f} / {gaps[int(0.95 * len(gaps))]:.1f}" if gaps else "-"
    stalls = [float(s) for s in STALL.findall(log)]
    growth = (result["peak_mb"] - result["baseline_mb"]) / max(1, len(firsts))
    row = (
        f"{count:>6} {result['baseline_mb']:>16.1f} {result['peak_mb']:>7.1f} {growth:>10.2f} "
        f"{polled:>20} {achieved:>26} {assumed:>10} {len(stalls):>6} {max(stalls, default=0.0):>9.2f}"
    )
    if result["stopped_early"]:
        row += f"  (runner stopped after {result['ended_at'] - handed:.0f} s: over --max-rss-mb)"
    if result["failures"]:
        row += f"  ({result['failures']} triggers failed; see the log)"
    return row


def _assumed_roles() -> int:
    """AssumeRole calls the local STS granted so far (moto keeps every assumed-role session)."""
    from moto.sts.models import sts_backends

    return sum(len(b.assumed_roles) for account in list(sts_backends) for b in sts_backends[account].values())


class _recording_describes:
    """Record (time, job name) of every DescribeTrainingJob the local AWS answers, across processes."""

    def __enter__(self) -> list[tuple[float, str]]:
        from moto.sagemaker.models import SageMakerModelBackend

        self.original = SageMakerModelBackend.describe_training_job
        polls: list[tuple[float, str]] = []
        original = self.original

        def describe(backend: Any, training_job_name: str) -> Any:
            polls.append((time.time(), training_job_name))
            return original(backend, training_job_name)

        SageMakerModelBackend.describe_training_job = describe  # type: ignore[method-assign]
        return polls

    def __exit__(self, *exc: object) -> None:
        from moto.sagemaker.models import SageMakerModelBackend

        SageMakerModelBackend.describe_training_job = self.original  # type: ignore[method-assign]


def _run_triggerer(payload: dict[str, Any]) -> None:
    """The triggerer process: Airflow's supervisor and its forked TriggerRunner, without the database."""
    import math
    import signal
    import threading

    import psutil
    from airflow.executors import workloads
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.models.trigger import Trigger

    from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger

    pending = []
    for trigger_id, name in enumerate(payload["names"], start=1):
        classpath, kwargs = SageMakerTrainingCompleteTrigger(
            job_name=name,
            waiter_delay=payload["interval"],
            waiter_max_attempts=10_000,
            aws_conn_id=payload["conn_id"],
            region_name=payload["region"],
        ).serialize()
        pending.append(
            workloads.RunTrigger(
                id=trigger_id, classpath=classpath, encrypted_kwargs=Trigger.encrypt_kwargs(kwargs)
            )
        )
    state: dict[str, Any] = {"handed_at": None, "baseline": 0, "failures": 0, "events": 0}

    class Supervisor(TriggerRunnerSupervisor):
        """The triggerer's supervisor with its database reads and writes replaced (see the docstring)."""

        def load_triggers(self) -> None:
            # Hand everything over once the runner has checked in (its first state sync).
            if pending and not math.isinf(self._last_runner_comms):
                state["baseline"] = psutil.Process(self.pid).memory_info().rss
                self.creating_triggers.extend(pending)
                pending.clear()
                state["handed_at"] = time.time()

        def heartbeat(self) -> None:
            pass

        def clean_unused(self) -> None:
            pass

        def metric_tags(self) -> dict[str, str]:
            return {"hostname": "benchmark"}

        def on_trigger_event(self, trigger_id: int, event: Any) -> None:
            state["events"] += 1

        def on_trigger_failure(self, trigger_id: int, exc: list[str] | None) -> None:
            state["failures"] += 1
            print(f"trigger {trigger_id} failed:", "".join(exc or []), flush=True)

    supervisor = Supervisor.start(job=None, capacity=len(payload["names"]))
    runner = psutil.Process(supervisor.pid)
    peak = [runner.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            try:
                peak[0] = max(peak[0], runner.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    threading.Thread(target=sample, daemon=True).start()
    stopped_early = False
    deadline = math.inf
    while time.time() < deadline and supervisor.is_alive():
        supervisor.run_once()
        if state["handed_at"] is not None:
            deadline = state["handed_at"] + payload["seconds"]
        if peak[0] > payload["max_rss_mb"] * 2**20:
            stopped_early = True
            break
    ended_at = time.time()
    stop.set()
    supervisor.kill(signal.SIGTERM, escalation_delay=30, force=True)
    Path(payload["result"]).write_text(
        json.dumps(
            {
                "baseline_mb": state["baseline"] / 2**20,
                "peak_mb": peak[0] / 2**20,
                "handed_at": state["handed_at"],
                "ended_at": ended_at,
                "stopped_early": stopped_early,
                "events": state["events"],
                "failures": state["failures"],
            }
        )
    )


if __name__ == "__main__":
    main()
