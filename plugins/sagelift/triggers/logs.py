"""Tailing a training job's CloudWatch Logs streams into a trigger's log, a bounded read at a time.

The log group ``/aws/sagemaker/TrainingJobs`` has one stream per instance, ``<job name>/algo-<n>-<epoch
seconds>``, created by SageMaker once the instance's container starts (until then a missing group or
stream is normal). Each ``poll`` reads at most ``LOG_EVENTS_PER_POLL`` events across the streams (a
chatty job is caught up over the next polls), resuming each stream at the timestamp of the last line
printed and skipping the lines already printed at that timestamp, so a line is printed once and none is
skipped. A job with several instances gets each line prefixed with its stream's name after the job name,
``[algo-2-1733400000] <line>``; a single instance's lines are printed as they are. ``drain`` reads the
log to its end after the job has ended. A log that cannot be read is a warning, never an error.

At a thousand waits the read calls meet CloudWatch Logs' per-account, per-region quotas
(DescribeLogStreams: 5 calls per second by default in the quota tables, 25 in the current API
reference; GetLogEvents: 25), shared with everyone else reading logs in the account. So a trigger's
tail:

- looks for streams only once the job's container can have started: the training trigger passes it
  every DescribeTrainingJob answer its waiter gets (``observe``), and streams are not looked for while
  the job's SecondaryStatus is one of ``NOT_STARTED`` (the instance count comes from there too when the
  trigger was serialized without it), at no extra call;
- while streams are still missing, looks again after a backoff that doubles from ``list_backoff``
  seconds up to ``LIST_BACKOFF_MAX_SECONDS``;
- makes its calls through a ``PacedLogsClient``: every trigger of the triggerer that reads the same
  connection and region waits its turn in one pace per operation, at most 2 DescribeLogStreams and 10
  GetLogEvents calls in any second by default (40% of the lower default quotas: two triggerers,
  Airflow's usual pair, stay within them with room for the console). An account with higher quotas
  can raise them in the Airflow configuration of the triggerer: ``[sagelift]
  describe_log_streams_per_second`` and ``get_log_events_per_second``
  (``AIRFLOW__SAGELIFT__DESCRIBE_LOG_STREAMS_PER_SECOND``, ...). The final read of a job that has
  ended goes before the routine reads of the others.

A standalone tail (no ``wait_for_start``, no ``list_backoff``, a plain client) looks at every poll.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.training_settings import spot_event_lines, spot_events

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LOG_EVENTS_PER_POLL = 2000
LOG_PAGES_PER_STREAM = 5
FINAL_DRAIN_POLLS = 10
DESCRIBE_LOG_STREAMS_PER_SECOND = 2
GET_LOG_EVENTS_PER_SECOND = 10
LIST_BACKOFF_MAX_SECONDS = 300.0
# SecondaryStatus values before the training container starts: no instance can have logged anything.
NOT_STARTED = frozenset({"Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack"})
# Answers worth another try at the next poll; any other error stops the streaming (with a warning).
TRANSIENT_LOG_ERRORS = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalFailure", "RequestLimitExceeded"}
)


@dataclass
class _Position:
    """The timestamp of the last line printed from a stream, and how many lines at it were printed."""

    timestamp: int = 0
    skip: int = 0


class TrainingLogTail:
    """Where the trigger is in each log stream of one training job, and one bounded read of what is new.

    ``poll`` and ``drain`` take an async CloudWatch Logs client; the lines go to ``log.info``.
    """

    def __init__(
        self,
        job_name: str,
        log: Any,
        instance_count: int = 0,
        *,
        wait_for_start: bool = False,
        list_backoff: float = 0.0,
    ) -> None:
        self.job_name = job_name
        self.log = log
        self.instance_count = instance_count  # 0: unknown, so streams are looked for until the job ends
        self.positions: dict[str, _Position] = {}
        self.look_for_streams = True
        self.caught_up = False
        self.stopped = False
        self.started = not wait_for_start  # until observed, a waiting tail assumes nothing has started
        self.list_backoff = list_backoff
        self._listings_short = 0  # listings so far; each one pushes the next further out
        self._next_listing = 0.0
        self.spot_events_told = 0

    def observe(self, description: dict[str, Any]) -> None:
        """Learn from a DescribeTrainingJob answer: has the container started, how many instances."""
        secondary = description.get("SecondaryStatus")
        if secondary:
            self.started = secondary not in NOT_STARTED
        # a spot job's interruptions and resumes, from its transitions (a poll may fall between them)
        events = spot_events(description)
        for line in spot_event_lines(self.job_name, events, self.spot_events_told):
            self.log.info(line)
        self.spot_events_told = max(self.spot_events_told, len(events))
        if not self.instance_count:
            count = description.get("ResourceConfig", {}).get("InstanceCount")
            if isinstance(count, int) and count > 0:
                self.instance_count = count

    async def poll(self, client: Any, budget: int = LOG_EVENTS_PER_POLL, *, to_the_end: bool = False) -> None:
        """Print what is new, at most about ``budget`` lines.

        Sets ``caught_up`` when every stream was read to its end, and ``stopped`` when the log cannot be
        read at all (access denied, ...). ``to_the_end`` confirms each stream's end with one more call
        (CloudWatch may return a short page before the end), as the final read does.
        """
        self.caught_up = False
        if self.stopped:
            return
        try:
            await self._find_streams(client, now=to_the_end)
            await self._read_new(client, budget, to_the_end)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "ResourceNotFoundException":
                self.caught_up = True  # no log group or stream yet: no instance has logged anything
            elif code in TRANSIENT_LOG_ERRORS or status >= 500:
                self.log.warning(
                    "Could not read the training log of %s now (%s); retrying", self.job_name, code
                )
            else:
                self.stopped = True
                self.log.warning(
                    "Stopped streaming the training log of %s: %s. It stays in CloudWatch Logs (%s).",
                    self.job_name,
                    err,
                    TRAINING_LOG_GROUP,
                )
        except BotoCoreError as err:
            self.log.warning("Could not read the training log of %s now (%s); retrying", self.job_name, err)

    async def drain(self, client: Any) -> None:
        """Read the log to its end, within ``FINAL_DRAIN_POLLS`` polls; for after the job has ended.

        Streams still missing are looked for at once (not gated nor backed off); when every instance's
        stream was found, none is looked for again.
        """
        for _ in range(FINAL_DRAIN_POLLS):
            await self.poll(client, to_the_end=True)
            if self.stopped or self.caught_up:
                return
        self.log.warning(
            "The training log of %s goes on beyond this task log; the rest is in CloudWatch Logs (%s).",
            self.job_name,
            TRAINING_LOG_GROUP,
        )

    async def _find_streams(self, client: Any, *, now: bool) -> None:
        """List the job's streams, unless all were found, or (``now`` aside) it is too early."""
        if not self.look_for_streams:
            return
        if not now and (not self.started or time.monotonic() < self._next_listing):
            return
        if self.list_backoff:  # the next look, should this one find streams missing (or no log group)
            delay = self.list_backoff * 2 ** min(self._listings_short, 16)
            self._next_listing = time.monotonic() + min(
                delay, max(self.list_backoff, LIST_BACKOFF_MAX_SECONDS)
            )
            self._listings_short += 1
        kwargs: dict[str, Any] = {
            "logGroupName": TRAINING_LOG_GROUP,
            "logStreamNamePrefix": f"{self.job_name}/",
            "limit": 50,
        }
        for _ in range(2):
            response = await client.describe_log_streams(**kwargs)
            for stream in response.get("logStreams", []):
                if stream["logStreamName"] not in self.positions:
                    if not self.positions:
                        self.log.info(
                            "Training log of %s (CloudWatch Logs %s), from its beginning:",
                            self.job_name,
                            TRAINING_LOG_GROUP,
                        )
                    self.positions[stream["logStreamName"]] = _Position()
            if not response.get("nextToken"):
                break
            kwargs["nextToken"] = response["nextToken"]
        # Once every instance has its stream, stop listing (DescribeLogStreams has a low quota).
        self.look_for_streams = not self.instance_count or len(self.positions) < self.instance_count

    async def _read_new(self, client: Any, budget: int, to_the_end: bool) -> None:
        if not self.positions:
            self.caught_up = True
            return
        per_stream = max(1, budget // len(self.positions))
        fetched: list[tuple[int, str, dict[str, Any]]] = []
        ended = True
        for stream in sorted(self.positions):
            events, at_end = await self._read_stream(client, stream, per_stream, to_the_end)
            fetched.extend((event["timestamp"], stream, event) for event in events)
            ended = ended and at_end
        # Nothing awaited from here on: a cancelled trigger never leaves a line printed but not counted.
        for _, stream, event in sorted(fetched, key=lambda item: item[0]):  # stable: streams keep order
            self._print(stream, event)
        self.caught_up = ended

    async def _read_stream(
        self, client: Any, stream: str, limit: int, to_the_end: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to about ``limit`` new events of ``stream``, and whether they reach its end."""
        position = self.positions[stream]
        skip, token = position.skip, None
        events: list[dict[str, Any]] = []
        for _ in range(LOG_PAGES_PER_STREAM):
            asked = min(10_000, limit - len(events) + skip)
            kwargs: dict[str, Any] = {
                "logGroupName": TRAINING_LOG_GROUP,
                "logStreamName": stream,
                "startTime": position.timestamp,
                "startFromHead": True,
                "limit": asked,
            }
            if token:
                kwargs["nextToken"] = token
            response = await client.get_log_events(**kwargs)
            page = response.get("events", [])
            dropped = min(skip, len(page))
            skip -= dropped
            events.extend(page[dropped:])
            next_token = response.get("nextForwardToken")
            if not next_token or next_token == token or (len(page) < asked and not to_the_end):
                return events, True
            token = next_token
            if len(events) >= limit:
                break
        return events, False

    def _print(self, stream: str, event: dict[str, Any]) -> None:
        message = str(event.get("message", "")).rstrip("\r\n")
        if self.instance_count > 1 or len(self.positions) > 1:
            message = f"[{stream.removeprefix(self.job_name + '/')}] {message}"
        self.log.info("%s", message)
        position = self.positions[stream]
        if event["timestamp"] == position.timestamp:
            position.skip += 1
        else:
            position.timestamp, position.skip = event["timestamp"], 1


class PacedLogsClient:
    """The read calls of a shared CloudWatch Logs client, each after its turn in the client's paces.

    ``urgent``: the final read of an ended job, which goes before the routine reads of running ones.
    ``unless``: once this event is set, a read still waiting for its turn is given up
    (``sagelift.triggers.clients.Abandoned``), e.g. when the wait has ended and the final read is next.
    """

    def __init__(self, shared: Any, *, urgent: bool = False, unless: asyncio.Event | None = None) -> None:
        self._shared = shared  # a sagelift.triggers.clients.SharedAwsClient of "logs"
        self._urgent = urgent
        self._unless = unless

    async def describe_log_streams(self, **kwargs: Any) -> Any:
        pace = self._shared.pace("DescribeLogStreams", lambda: calls_per_second("DescribeLogStreams"))
        async with pace.call(urgent=self._urgent, unless=self._unless):
            return await self._shared.client.describe_log_streams(**kwargs)

    async def get_log_events(self, **kwargs: Any) -> Any:
        pace = self._shared.pace("GetLogEvents", lambda: calls_per_second("GetLogEvents"))
        async with pace.call(urgent=self._urgent, unless=self._unless):
            return await self._shared.client.get_log_events(**kwargs)


def calls_per_second(operation: str) -> int:
    """The pace of ``operation`` for one triggerer: its ``[sagelift]`` option, else the default."""
    from airflow.providers.common.compat.sdk import conf

    option, default = {
        "DescribeLogStreams": ("describe_log_streams_per_second", DESCRIBE_LOG_STREAMS_PER_SECOND),
        "GetLogEvents": ("get_log_events_per_second", GET_LOG_EVENTS_PER_SECOND),
    }[operation]
    value = conf.getint("sagelift", option, fallback=default)
    if value < 1:
        raise ValueError(f"[sagelift] {option} must be a whole number of calls per second, at least 1")
    return value
