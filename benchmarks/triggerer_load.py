"""Defer N concurrent waits on one triggerer; print its memory, start time, poll interval and AWS call rates.

    .venv/bin/python benchmarks/triggerer_load.py [--counts 100 500 1000] [--endpoints 0] [--kfp-runs 0]
        [--seconds 90] [--interval 30] [--training-seconds 240] [--variants floor sagelift]

The mixed benchmark of issue 19 is ``--counts 1000 --endpoints 200 --kfp-runs 100``.

What runs, per N and variant: the local AWS (moto on loopback, in this process) with the three-account
scenario, N training jobs in the scientist account (and ``--endpoints`` endpoints that stay Creating),
and the KFP API double with ``--kfp-runs`` runs that stay RUNNING. Then, in a separate process, Airflow's
own triggerer machinery: a ``TriggerRunnerSupervisor`` (the triggerer job's supervisor class) forks the
real ``TriggerRunner`` and hands it one ``RunTrigger`` workload per wait, its kwargs serialized and
encrypted as the scheduler stores them:

- ``sagelift``: ``SageMakerTrainingCompleteTrigger`` as train_model defers it (the job's instance count
  in its kwargs, the training log streamed), ``SageMakerEndpointCompleteTrigger`` and
  ``KubeflowPipelinesRunCompleteTrigger``. Each builds its sessions from the ``sagelift_aws_<account>``
  connection (the two-hop role chain of ``[aws] session_factory``);
- ``floor``: ``benchmarks.trigger_floor.StatusReadFloorTrigger`` for every wait: one status read per
  interval through one client per loop, nothing else. The ratios printed are sagelift's over it.

The training jobs follow the local AWS's SageMaker lifecycle emulation, over ``--training-seconds``
counted from each job's first DescribeTrainingJob: Starting, then Downloading at 10% (SageMaker has
started the container: its CloudWatch Logs stream appears with a first line), Training at 20%, a few
lines up to the end. With the default 240 s every job is still training when a 90 s window ends, and its
log tail has a stream to find and lines to read. Jobs and endpoints are made again for each variant, so
each variant's waits meet the same lifecycle. ``--plugins`` loads sagelift from another folder, e.g. a
checkout of another revision, so that two revisions can be compared on the same machine.

Printed per N, for each variant:

- runner MB: resident memory of the TriggerRunner process (where the triggers run) just before the
  triggers are handed to it, and its peak while they run (sampled every 200 ms); MB per wait divides
  the growth by the number of waits;
- clients: aiobotocore clients the runner made, and how many were still open at the end;
- AssumeRole calls the local STS answered; stalls: how often the runner's watchdog found its event loop
  blocked for more than 0.2 s, and the longest block;
- DescribeLogStreams and GetLogEvents: the most calls the local CloudWatch Logs answered in any
  one-second window, and the total (AWS's default quotas per account and region: DescribeLogStreams 5
  a second in the quota tables, 25 in the current API reference; GetLogEvents 25);

and per kind of wait: how many were read at least once and the seconds from the hand-over until all
were ("-" if some never were: how long the last wait took to start working); the time between two
consecutive status reads of the same resource, mean and 95th percentile (``--interval`` when every
wait keeps its schedule); duplicate reads: reads less than a third of ``--interval`` after the
previous one of the same resource (a wait that describes its job twice at the start counts one).

Not measured: the supervisor's database work (assigning triggers, heartbeats, persisting events: here
replaced by no-ops, so the supervisor is not the real triggerer job), per-trigger log files (trigger
logs go to the supervisor's output), real AWS latency and throttling, and credential refresh (a window
shorter than the session duration never reaches the refresh margin; tests/e2e/test_role_chain.py covers
refresh with a fake clock). The runner is stopped early (and the row says so) if its memory passes
``--max-rss-mb``, to keep the machine usable.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

STALL = re.compile(r"async thread was blocked for ([0-9.]+) seconds")
KFP_CONN_ID = "kfp_bench"
KINDS = ("training", "endpoint", "kfp")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 500, 1000], help="training waits")
    parser.add_argument("--endpoints", type=int, default=0, help="endpoint waits beside each count")
    parser.add_argument("--kfp-runs", type=int, default=0, help="KFP run waits beside each count")
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the triggers run per N")
    parser.add_argument("--interval", type=int, default=30, help="poll interval of each wait")
    parser.add_argument("--training-seconds", type=float, default=240.0, help="emulated job duration")
    parser.add_argument("--variants", nargs="+", default=["floor", "sagelift"], choices=["floor", "sagelift"])
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
    from tests.support.kfp_api import KfpApiDouble
    from tests.support.local_aws import LocalAws

    print(
        f"sagelift from {args.plugins}; waits poll every {args.interval} s for {args.seconds:.0f} s; "
        f"jobs train for {args.training_seconds:.0f} s; logs and results in {home}",
        flush=True,
    )
    with LocalAws() as aws, KfpApiDouble() as kfp:
        for count in args.counts:
            waits = {"training": count, "endpoint": args.endpoints, "kfp": args.kfp_runs}
            results = {
                variant: _measure(aws, kfp, waits, variant, args, home / f"{variant}-{count}")
                for variant in args.variants
            }
            print(_report(waits, args, results), flush=True)


@dataclass
class Result:
    runner: dict[str, Any]
    reads: dict[str, dict[str, list[float]]]  # kind -> resource -> read times
    calls: dict[str, list[float]] = field(default_factory=dict)  # CloudWatch Logs operation -> times
    assumed: int = 0
    stalls: list[float] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _measure(aws: Any, kfp: Any, waits: dict[str, int], variant: str, args: Any, base: Path) -> Result:
    from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
    from tests.support.sagemaker_lifecycle import SageMakerLifecycle
    from tests.support.scenario import Scenario

    aws.reset()
    scenario = Scenario(aws).build()
    life = SageMakerLifecycle().training(seconds=args.training_seconds).endpoint_create(seconds=10**9)
    kfp.set_run_outcome("SUCCEEDED", after_polls=10**9)
    jobs = _make_jobs(aws, waits["training"])  # before the lifecycle: its clock starts at the first read
    with life.installed(aws), _recording(kfp) as (reads, calls):
        names = {"training": jobs, **_make_others(aws, kfp, waits)}
        payload = {
            "waits": [[kind, name] for kind in KINDS for name in names[kind]],
            "variant": variant,
            "interval": args.interval,
            "seconds": args.seconds,
            "conn_id": f"sagelift_aws_{SCIENTIST_ACCOUNT}",
            "kfp_conn_id": KFP_CONN_ID,
            "region": REGION,
            "max_rss_mb": args.max_rss_mb,
            "result": str(base.with_suffix(".json")),
        }
        base.with_suffix(".payload").write_text(json.dumps(payload))
        log_path = base.with_suffix(".log")
        assumed_before = _assumed_roles()
        env = dict(os.environ, **scenario.airflow_env())
        env[f"AIRFLOW_CONN_{KFP_CONN_ID.upper()}"] = kfp.connection_json()
        load = os.getloadavg()
        with log_path.open("w") as log:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--triggerer",
                    str(base.with_suffix(".payload")),
                    "--plugins",
                    args.plugins,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        assumed = _assumed_roles() - assumed_before
    runner = json.loads(base.with_suffix(".json").read_text())
    result = Result(runner, reads, calls, assumed, [float(s) for s in STALL.findall(log_path.read_text())])
    result.load = load
    base.with_suffix(".reads.json").write_text(json.dumps({"reads": reads, "calls": calls}))
    return result


def _make_jobs(aws: Any, count: int) -> list[str]:
    from tests.support.local_aws import SCIENTIST_ACCOUNT
    from tests.support.scenario import DATA_BUCKET, role_arn

    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    names = [f"bench-{i:05d}" for i in range(count)]
    for name in names:
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
            RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
            OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
        )
    return names


def _make_others(aws: Any, kfp: Any, waits: dict[str, int]) -> dict[str, list[str]]:
    """Endpoints that stay Creating (made under the lifecycle) and KFP runs that stay RUNNING."""
    import requests

    from tests.support.local_aws import SCIENTIST_ACCOUNT
    from tests.support.scenario import DATA_BUCKET, role_arn

    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    names: dict[str, list[str]] = {"endpoint": [], "kfp": []}
    if waits["endpoint"]:
        sm.create_model(
            ModelName="bench-model",
            PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{DATA_BUCKET}/model.tar.gz"},
            ExecutionRoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-model-execution"),
        )
        sm.create_endpoint_config(
            EndpointConfigName="bench-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "bench-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    for i in range(waits["endpoint"]):
        name = f"bench-endpoint-{i:05d}"
        sm.create_endpoint(EndpointName=name, EndpointConfigName="bench-config")
        names["endpoint"].append(name)
    spec = {"pipelineInfo": {"name": "bench"}, "root": {"dag": {"tasks": {}}}, "schemaVersion": "2.1.0"}
    for i in range(waits["kfp"]):
        response = requests.post(
            f"{kfp.url}/apis/v2beta1/runs",
            json={"display_name": f"bench-run-{i:05d}", "pipeline_spec": spec},
            headers={"Authorization": f"Bearer {kfp.token}"},
            timeout=30,
        )
        response.raise_for_status()
        names["kfp"].append(response.json()["run_id"])
    return names


@contextmanager
def _recording(kfp: Any) -> Iterator[tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]]:
    """Record when the local AWS and the KFP double answer each read (the servers run in this process)."""
    from moto.logs.models import LogsBackend
    from moto.sagemaker.models import SageMakerModelBackend

    reads: dict[str, dict[str, list[float]]] = {kind: {} for kind in KINDS}
    calls: dict[str, list[float]] = {"DescribeLogStreams": [], "GetLogEvents": []}

    def read(kind: str, key_of: Any, original: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            reads[kind].setdefault(key_of(*args, **kwargs), []).append(time.time())
            return original(*args, **kwargs)

        return recorded

    def call(operation: str, original: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            calls[operation].append(time.time())
            return original(*args, **kwargs)

        return recorded

    patches = [
        (SageMakerModelBackend, "describe_training_job", lambda o: read("training", lambda b, n: n, o)),
        (SageMakerModelBackend, "describe_endpoint", lambda o: read("endpoint", lambda b, n: n, o)),
        (LogsBackend, "describe_log_streams", lambda o: call("DescribeLogStreams", o)),
        (LogsBackend, "get_log_events", lambda o: call("GetLogEvents", o)),
        (kfp, "_get_run", lambda o: read("kfp", lambda request, run_id: run_id, o)),
    ]
    with ExitStack() as stack:
        for owner, name, wrap in patches:
            original = getattr(owner, name)
            setattr(owner, name, wrap(original))
            stack.callback(setattr, owner, name, original)
        yield reads, calls
    if "_get_run" in vars(kfp):
        del kfp._get_run


def _report(waits: dict[str, int], args: Any, results: dict[str, Result]) -> str:
    described = ", ".join(f"{n} {kind}" for kind, n in waits.items() if n)
    lines = [
        f"\n{described} waits; load average before each variant: "
        + "; ".join(f"{v} {' '.join(f'{x:.1f}' for x in r.load)}" for v, r in results.items()),
        f"  {'variant':<9} {'runner MB before':>16} {'peak':>7} {'MB/wait':>8} {'clients made/open':>18} "
        f"{'AssumeRole':>10} {'stalls':>6} {'longest s':>9} {'DescribeLogStreams max/s (all)':>31} "
        f"{'GetLogEvents max/s (all)':>25}",
    ]
    total = sum(waits.values())
    for variant, result in results.items():
        runner = result.runner
        growth = (runner["peak_mb"] - runner["baseline_mb"]) / max(1, total)
        clients = f"{runner['clients_made']}/{runner['clients_made'] - runner['clients_closed']}"
        logs = {op: f"{_max_per_second(times)} ({len(times)})" for op, times in result.calls.items()}
        row = (
            f"  {variant:<9} {runner['baseline_mb']:>16.1f} {runner['peak_mb']:>7.1f} {growth:>8.3f} "
            f"{clients:>18} {result.assumed:>10} {len(result.stalls):>6} {max(result.stalls, default=0.0):>9.2f} "
            f"{logs['DescribeLogStreams']:>31} {logs['GetLogEvents']:>25}"
        )
        if runner["stopped_early"]:
            row += f"  (runner stopped after {runner['ended_at'] - runner['handed_at']:.0f} s: over --max-rss-mb)"
        if runner["failures"] or runner["events"]:
            row += f"  ({runner['failures']} triggers failed, {runner['events']} fired; see the log)"
        lines.append(row)
    lines.append(
        f"  {'kind':<9} {'variant':<9} {'read':>6} {'all after s':>11} {'poll interval s mean/p95':>25} "
        f"{'duplicate reads':>15}"
    )
    starts: dict[tuple[str, str], float | None] = {}
    for kind, count in waits.items():
        for variant, result in results.items():
            if not count:
                continue
            stats = _read_stats(result.reads[kind], count, result.runner["handed_at"], args.interval)
            starts[kind, variant] = stats["all_after"]
            all_after = "-" if stats["all_after"] is None else f"{stats['all_after']:.1f}"
            lines.append(
                f"  {kind:<9} {variant:<9} {stats['read']:>6} {all_after:>11} {stats['interval']:>25} "
                f"{stats['duplicates']:>15}"
            )
    if "floor" in results and "sagelift" in results:
        floor, ours = results["floor"].runner, results["sagelift"].runner
        ratios = [
            f"peak RSS x{ours['peak_mb'] / floor['peak_mb']:.2f}",
            f"RSS growth x{_ratio(ours['peak_mb'] - ours['baseline_mb'], floor['peak_mb'] - floor['baseline_mb'])}",
        ]
        for kind, count in waits.items():
            if count:
                ratios.append(
                    f"all {kind} read after x{_ratio(starts[kind, 'sagelift'], starts[kind, 'floor'])}"
                )
        lines.append("  sagelift / floor: " + ", ".join(ratios))
    return "\n".join(lines)


def _ratio(value: float | None, floor: float | None) -> str:
    if value is None or floor is None or floor <= 0:
        return "-"
    return f"{value / floor:.2f}"


def _read_stats(reads: dict[str, list[float]], count: int, handed: float, interval: int) -> dict[str, Any]:
    firsts = [min(times) for times in reads.values()]
    gaps = sorted(b - a for times in reads.values() for a, b in pairwise(sorted(times)))
    regular = [g for g in gaps if g >= interval / 3]
    return {
        "read": len(firsts),
        "all_after": max(firsts) - handed if len(firsts) == count else None,
        "interval": (
            f"{sum(regular) / len(regular):.1f} / {regular[int(0.95 * len(regular))]:.1f}" if regular else "-"
        ),
        "duplicates": len(gaps) - len(regular),
    }


def _max_per_second(times: list[float]) -> int:
    """The most calls in any one-second window."""
    ordered, most, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _assumed_roles() -> int:
    """AssumeRole calls the local STS granted so far (moto keeps every assumed-role session)."""
    from moto.sts.models import sts_backends

    return sum(len(b.assumed_roles) for account in list(sts_backends) for b in sts_backends[account].values())


def _run_triggerer(payload: dict[str, Any]) -> None:
    """The triggerer process: Airflow's supervisor and its forked TriggerRunner, without the database."""
    import math
    import signal
    import threading

    import psutil
    from airflow.executors import workloads
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.models.trigger import Trigger

    made, closed = _counting_clients()
    pending = []
    for trigger_id, (kind, name) in enumerate(payload["waits"], start=1):
        classpath, kwargs = _trigger(kind, name, payload).serialize()
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

    supervisor = Supervisor.start(job=None, capacity=len(payload["waits"]))
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
    clients_made, clients_closed = made.value, closed.value
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
                "clients_made": clients_made,
                "clients_closed": clients_closed,
            }
        )
    )


def _counting_clients() -> tuple[Any, Any]:
    """Count the aiobotocore clients made and closed, in the runner too (a fork: shared memory)."""
    import ctypes
    import multiprocessing

    from aiobotocore.client import AioBaseClient
    from aiobotocore.session import AioSession

    made = multiprocessing.Value(ctypes.c_long, 0, lock=False)
    closed = multiprocessing.Value(ctypes.c_long, 0, lock=False)
    create_client, close = AioSession._create_client, AioBaseClient.__aexit__

    async def counted_create(self: Any, *args: Any, **kwargs: Any) -> Any:
        made.value += 1
        return await create_client(self, *args, **kwargs)

    async def counted_close(self: Any, *exc: Any) -> Any:
        closed.value += 1
        return await close(self, *exc)

    AioSession._create_client = counted_create  # type: ignore[method-assign]
    AioBaseClient.__aexit__ = counted_close  # type: ignore[method-assign]
    return made, closed


def _trigger(kind: str, name: str, payload: dict[str, Any]) -> Any:
    interval = payload["interval"]
    if payload["variant"] == "floor":
        from benchmarks.trigger_floor import StatusReadFloorTrigger

        conn_id = payload["kfp_conn_id"] if kind == "kfp" else payload["conn_id"]
        return StatusReadFloorTrigger(kind, name, conn_id, payload["region"], interval)
    if kind == "kfp":
        from sagelift.triggers.kfp import KubeflowPipelinesRunCompleteTrigger

        return KubeflowPipelinesRunCompleteTrigger(
            run_id=name, kfp_conn_id=payload["kfp_conn_id"], poll_interval=interval, timeout_at=None
        )
    from sagelift.triggers.sagemaker import SageMakerEndpointCompleteTrigger, SageMakerTrainingCompleteTrigger

    common = {
        "job_name": name,
        "waiter_delay": interval,
        "waiter_max_attempts": 10_000,
        "aws_conn_id": payload["conn_id"],
        "region_name": payload["region"],
    }
    if kind == "endpoint":
        return SageMakerEndpointCompleteTrigger(**common)
    # As train_model defers it: the instance count travels in the kwargs, the log is streamed.
    return SageMakerTrainingCompleteTrigger(**common, print_log=True, instance_count=1)


if __name__ == "__main__":
    main()
