"""The role chain's credential core: runner identity -> master pipeline role -> execution role.

Both engines reach a scientist account through the same chain of AssumeRole hops and share this code:
the Airflow session factory (``sagelift.hooks.session_factory``) builds a ``RoleChain`` from an account's
AWS connection, a KFP component (``chained_session``) from the platform configuration and the pod's own
identity.

One chain per process, not per session: the triggerer runs hundreds of deferred waits of the same
account, and each builds its own sessions. They all share one ``RoleChain`` (``shared_chain``, keyed by
everything that makes the chain, so each run keeps its own role session name in CloudTrail), which holds
each hop's temporary credentials and assumes a hop again only when they come within a refresh margin
of expiry: one AssumeRole per hop per expiry for the whole process. Sessions renew themselves from the
shared hops before expiry (AWS caps chained sessions at one hour; training runs for many):

- sync: a new boto3 session per caller (boto3 sessions are not thread-safe), with botocore
  RefreshableCredentials renewing from the final hop;
- async (the triggerer): one aiobotocore session per chain, whose refreshable credentials renew in a
  worker thread (``asyncio.to_thread``), never with a blocking STS call on the event loop; its clients
  share one TLS context instead of loading the CA bundle each.

Every session shares one botocore data loader, so service models and the endpoint table are parsed
once per process. No credential is ever written anywhere: they live only inside the session and chain
objects.

Errors (see sagelift.steps.errors): a hop AWS refuses (AccessDenied, a trust policy or ExternalId that
does not allow it) raises ``RoleChainError``, final, naming the hop and the role; a hop STS cannot answer
now (throttling, 5xx, timeouts, once botocore's own retries are spent) raises ``RoleChainUnavailable``,
which the engines retry.

Retries: every client made from these sessions defaults to botocore's ``standard`` retry mode with
``DEFAULT_RETRIES["max_attempts"]`` retries after the first attempt (botocore's ``max_attempts`` counts
retries: 11 attempts in all), so throttling, 5xx answers and dropped connections are retried with
jittered exponential backoff. A connection's own ``config_kwargs.retries`` takes precedence.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import ssl
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.plan import derive_run_key
from sagelift.domain.platform import PlatformConfig
from sagelift.steps.errors import StepFailed, StepRetry, classify, error_code, http_status

log = logging.getLogger(__name__)

DEFAULT_RETRIES: Any = {"mode": "standard", "max_attempts": 10}
SESSION_NAME_MAX = 64
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")
DEFAULT_DURATION = 3600
CHAINS_KEPT = 64


# One loader for every session made here: it caches what it parses (service models, endpoints), and a
# session's own loader would parse them again for each session. Thread-safe enough: a race parses twice.
_LOADER = botocore.loaders.Loader()


class RoleChainError(StepFailed, PermissionError):
    """AWS refused a hop of the chain; the message names the hop and the role. Final."""


class RoleChainUnavailable(StepRetry):
    """STS could not answer for a hop now (throttled, 5xx, timed out); the step is retried later."""


def derive_session_name(dag_id: str | None, run_id: str | None, fallback: str) -> str:
    """RoleSessionName traceable to the run: 'sagelift-<run key>-<dag id>', within STS's 64 characters.

    The run key is the same 8 hex characters that suffix the run's resource names.
    """
    if dag_id and run_id:
        name = f"sagelift-{derive_run_key(dag_id, run_id)}-{dag_id}"
    else:
        name = f"sagelift-{fallback}"
    return _SESSION_NAME_BAD.sub("-", name)[:SESSION_NAME_MAX]


def refresh_margins(duration_seconds: int) -> tuple[int, int]:
    """(advisory, mandatory) seconds before expiry at which a hop is assumed again.

    botocore's own are 15 and 10 minutes; for 15-minute sessions those would mean a new AssumeRole on
    every call, so they shrink to a third and a sixth of the session duration.
    """
    return min(15 * 60, duration_seconds // 3), min(10 * 60, duration_seconds // 6)


@dataclass(frozen=True)
class _Issued:
    metadata: dict[str, Any]  # botocore's refreshable-credential metadata, expiry_time as ISO text
    expiry: datetime.datetime


class SharedCredentials:
    """One hop's temporary credentials, for every session of the process that goes through the hop.

    ``metadata()`` is botocore's ``refresh_using`` contract. Within the advisory margin one caller
    assumes the role again while the others keep the still-valid credentials; within the mandatory
    margin (or before the first AssumeRole) everyone waits for that one call. Call it from a thread,
    never from an event loop: it may block on STS.
    """

    def __init__(self, fetch: Callable[[], dict[str, Any]], label: str, margins: tuple[int, int]):
        self._fetch = fetch
        self._label = label
        self.advisory, self.mandatory = margins
        self._lock = threading.Lock()
        self._issued: _Issued | None = None

    def _needs_refresh(self, margin: int) -> bool:
        issued = self._issued
        if issued is None:
            return True
        return (issued.expiry - datetime.datetime.now(datetime.UTC)).total_seconds() < margin

    def metadata(self) -> dict[str, Any]:
        if self._needs_refresh(self.advisory):
            if self._lock.acquire(blocking=False):
                try:
                    self._refresh()
                finally:
                    self._lock.release()
            elif self._needs_refresh(self.mandatory):
                with self._lock:
                    self._refresh()
        issued = self._issued
        if issued is None:  # unreachable: a failed first AssumeRole raised above
            raise RoleChainError(f"{self._label}: no credentials")
        return dict(issued.metadata)

    def _refresh(self) -> None:
        """Assume the role again if still needed; the caller holds the lock."""
        if not self._needs_refresh(self.advisory):
            return
        try:
            metadata = self._fetch()
        except (RoleChainError, RoleChainUnavailable, BotoCoreError) as err:
            if self._needs_refresh(self.mandatory):
                raise
            log.warning("Renewing %s failed, trying again later: %s", self._label, err)
            return
        expiry = datetime.datetime.fromisoformat(metadata["expiry_time"])
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.UTC)
        self._issued = _Issued(metadata, expiry)


class RoleChain:
    """Each hop's shared credentials for one connection (see the module docstring); ``hops[-1]`` is final.

    Hop 1 is assumed with the STS client of the runner identity's session, hop k with one whose
    credentials renew from hop k-1. Each STS client is made once, by the hop's first AssumeRole.
    """

    def __init__(
        self,
        *,
        source: Callable[[], boto3.session.Session],
        roles: list[tuple[str, str | None]],
        session_name: str,
        duration_seconds: int,
        region: str | None,
        sts_endpoint: str | None,
        config: Config | None,
    ) -> None:
        self._source = source
        self._roles = roles
        self._session_name = session_name
        self._duration = duration_seconds
        self.region = region
        self._sts_endpoint = sts_endpoint
        self._config = config
        self.margins = refresh_margins(duration_seconds)
        self._sts: list[Any] = [None] * len(roles)
        self._async_session: Any = None
        self._async_lock = threading.Lock()
        self.hops = [
            SharedCredentials(self._assumer(index), self._label(index), self.margins)
            for index in range(len(roles))
        ]

    def _label(self, index: int) -> str:
        names = ["runner identity"] + [arn for arn, _ in self._roles]
        return f"hop {index + 1} of {len(self._roles)} ({names[index]} -> {names[index + 1]})"

    def _assumer(self, index: int) -> Callable[[], dict[str, Any]]:
        return lambda: self._assume(index)

    def _sts_client(self, index: int) -> Any:
        if self._sts[index] is None:
            source = self._source() if index == 0 else self.sync_session(self.hops[index - 1])
            self._sts[index] = source.client("sts", config=self._config, endpoint_url=self._sts_endpoint)
        return self._sts[index]

    def _assume(self, index: int) -> dict[str, Any]:
        role_arn, external_id = self._roles[index]
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self._session_name,
            "DurationSeconds": self._duration,
        }
        if external_id:
            kwargs["ExternalId"] = external_id
        try:
            response = self._sts_client(index).assume_role(**kwargs)
        except (ClientError, BotoCoreError) as err:
            raise _hop_error(self._label(index), role_arn, err) from None
        credentials = response["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    def sync_session(self, hop: SharedCredentials | None = None) -> boto3.session.Session:
        """A new boto3 session acting as ``hop`` (default: the final role), renewing from it."""
        hop = hop or self.hops[-1]
        advisory, mandatory = self.margins
        core = botocore.session.get_session()
        session = boto3.session.Session(botocore_session=core, region_name=self.region)
        core.register_component("data_loader", _LOADER)  # after boto3 has set up its own resource loader
        core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            metadata=hop.metadata(),
            refresh_using=hop.metadata,
            method="sts-assume-role",
            advisory_timeout=advisory,
            mandatory_timeout=mandatory,
        )
        _default_retries(core)
        return session

    def async_session(self) -> Any:
        """The aiobotocore session acting as the final role: one per chain, for every event loop.

        Unlike a boto3 session, an aiobotocore session may serve concurrent callers: each client is made
        on the caller's event loop (``create_client``) and takes copies of what it needs.
        """
        with self._async_lock:
            if self._async_session is None:
                self._async_session = self._new_async_session()
            return self._async_session

    def _new_async_session(self) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        hop = self.hops[-1]

        async def renew() -> dict[str, Any]:
            return await asyncio.to_thread(hop.metadata)

        advisory, mandatory = self.margins
        core = get_session()
        core.register_component("data_loader", _LOADER)
        credentials_class, http_session_class = _aio_classes()
        core._credentials = credentials_class.create_from_metadata(
            metadata=hop.metadata(),
            refresh_using=renew,
            method="sts-assume-role",
            advisory_timeout=advisory,
            mandatory_timeout=mandatory,
        )
        if self.region:
            core.set_config_variable("region", self.region)
        core.set_default_client_config(AioConfig(http_session_cls=http_session_class))
        _default_retries(core)
        return core


class _PerLoopLock:
    """An asyncio lock per event loop, behind asyncio.Lock's interface (an asyncio.Lock is bound to the
    first loop that waits on it, and a chain's session outlives any one loop)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
            return lock

    def locked(self) -> bool:
        return self._lock().locked()

    async def __aenter__(self) -> None:
        await self._lock().acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock().release()


@cache
def _aio_classes() -> tuple[Any, Any]:
    """(credentials, HTTP session) classes of the async sessions; made on first use, so that workers,
    which make only sync sessions, never import aiobotocore."""
    from aiobotocore.credentials import AioRefreshableCredentials
    from aiobotocore.httpsession import AIOHTTPSession

    class AnyLoopRefreshableCredentials(AioRefreshableCredentials):  # type: ignore[misc]
        def _create_lock(self) -> Any:
            return _PerLoopLock()

    class SharedTlsHttpSession(AIOHTTPSession):  # type: ignore[misc]
        """aiobotocore's HTTP session with one TLS context per CA bundle for the whole process.

        aiobotocore builds a context holding the whole CA bundle for every client (0.6 MB and some 40 ms
        of CPU each; a deferred training wait has several clients), though one serves any number of
        connections. With a client certificate or a proxy, each client still builds its own.
        """

        def _build_ssl_contexts(self, proxy_url: Any) -> Any:
            if self._cert_file or proxy_url:
                return super()._build_ssl_contexts(proxy_url)
            key = repr(self._verify)
            with _TLS_LOCK:
                if key not in _TLS_CONTEXTS:
                    _TLS_CONTEXTS[key] = self._build_verify_context()
                return _TLS_CONTEXTS[key], None

    return AnyLoopRefreshableCredentials, SharedTlsHttpSession


_TLS_CONTEXTS: dict[str, ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()

_CHAINS: OrderedDict[str, RoleChain] = OrderedDict()
_CHAINS_LOCK = threading.Lock()


def shared_chain(key: str, build: Callable[[], RoleChain]) -> RoleChain:
    """The process's chain for ``key``, built on first use; the least recently used beyond CHAINS_KEPT go."""
    with _CHAINS_LOCK:
        chain = _CHAINS.get(key)
        if chain is None:
            chain = _CHAINS[key] = build()
            while len(_CHAINS) > CHAINS_KEPT:
                _CHAINS.popitem(last=False)
        else:
            _CHAINS.move_to_end(key)
        return chain


def _default_retries(core: Any) -> None:
    """Make ``DEFAULT_RETRIES`` the default of every client of a botocore/aiobotocore session."""
    default = core.get_default_client_config()
    retries = Config(retries=DEFAULT_RETRIES.copy())
    core.set_default_client_config(default.merge(retries) if default is not None else retries)


def _hop_error(label: str, role_arn: str, err: ClientError | BotoCoreError) -> StepFailed | StepRetry:
    """A refused hop is final and names the role; STS not answering now is transient."""
    if isinstance(err, ClientError):
        message = str(err.response.get("Error", {}).get("Message", ""))
        what = f"{error_code(err) or 'Error'}"
        if classify(err) == "transient":
            return RoleChainUnavailable(
                f"{label}: STS did not answer ({what}, HTTP {http_status(err)}) after botocore's retries; "
                "the step is retried"
            )
        return RoleChainError(f"{label}: {what} assuming {role_arn}: {message}".rstrip(": "))
    if classify(err) == "transient":
        return RoleChainUnavailable(
            f"{label}: STS could not be reached ({type(err).__name__}); the step is retried"
        )
    return RoleChainError(f"{label}: {type(err).__name__} assuming {role_arn}: {err}")


def role_chain_hops(platform: PlatformConfig, account_id: str) -> list[tuple[str, str | None]]:
    """The (role ARN, external id) hops from the runner identity to the account's execution role."""
    hops: list[tuple[str, str | None]] = []
    if platform.master_role_arn:
        hops.append((platform.master_role_arn, platform.master_external_id))
    hops.append((platform.execution_role_arn(account_id), platform.account(account_id).execution_external_id))
    return hops


def chained_session(
    platform: PlatformConfig,
    account_id: str,
    session_name: str,
    runner: Callable[[], boto3.session.Session] | None = None,
) -> boto3.session.Session:
    """A session acting as the account's execution role, from the process's own identity (a KFP pod's).

    The chain is shared by every call with the same platform, account and session name in the process.
    The STS endpoint is botocore's (``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL`` when set).
    """
    hops = role_chain_hops(platform, account_id)
    key = repr((sorted(hops), account_id, platform.region, session_name, platform.session_duration_seconds))

    def source() -> boto3.session.Session:
        session = runner() if runner else boto3.session.Session(region_name=platform.region)
        session._session.register_component("data_loader", _LOADER)  # type: ignore[attr-defined]
        _default_retries(session._session)  # type: ignore[attr-defined]
        return session

    chain = shared_chain(
        key,
        lambda: RoleChain(
            source=source,
            roles=hops,
            session_name=session_name,
            duration_seconds=platform.session_duration_seconds,
            region=platform.region,
            sts_endpoint=None,
            config=None,
        ),
    )
    return chain.sync_session()


def check_identity(sts_client: Any, platform: PlatformConfig, account_id: str) -> dict[str, Any]:
    """Exercise the chain once (GetCallerIdentity) and check it ends as the account's execution role.

    Returns only non-secret facts: the roles, the caller ARN and the role session name.
    """
    identity = sts_client.get_caller_identity()
    expected = platform.execution_role_arn(account_id)
    role_name = expected.split(":role/", 1)[1].split("/")[-1]
    arn = str(identity["Arn"])
    if identity["Account"] != account_id or f":assumed-role/{role_name}/" not in arn:
        raise StepFailed(
            f"assume_role_chain: expected to act as {expected} in account {account_id}, but acting as {arn}; "
            "fix the account's connection (README 'Onboarding a scientist account')"
        )
    return {
        "region": platform.region,
        "account_id": account_id,
        "master_role_arn": platform.master_role_arn,
        "execution_role_arn": expected,
        "caller_arn": arn,
        "session_name": arn.rsplit("/", 1)[-1],
    }
