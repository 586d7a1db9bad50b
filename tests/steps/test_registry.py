"""The copy wire protocol (skopeo) against two real registries on loopback."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagelift.domain.images import CopyLimits, TokenRealmRules, manifest_digest, select_platforms
from sagelift.steps.registry import (
    ImageNotFoundError,
    RegistryAccess,
    RegistryAuthError,
    RegistryCredentials,
    RegistryError,
    RegistryHook,
    RegistryPolicyError,
    RegistryTimeoutError,
    RegistryTlsError,
    RegistryTransientError,
    RegistryUnreachableError,
    classify_failure,
    https_proxy_for,
    sweep_stale_workspaces,
)
from tests.support.fake_registry import (
    FAKE_TOKEN,
    METADATA_TOKEN,
    ConnectProxy,
    FakeRegistry,
    MetadataStandIn,
    SeenRequest,
    closed_port,
)
from tests.support.oci_images import BuiltImage, build_multi_platform_image, build_single_platform_image
from tests.support.oci_registry import PROXIED_NAME, FlakyProxy, RegistryPair

ROOT = Path(__file__).resolve().parents[2]

PASSWORD = "333333333333-auth-token"


class Registries(RegistryPair):
    def __init__(self, root: Path) -> None:
        super().__init__(root, PASSWORD)
        self.target = self.ecr
        self.hook = RegistryHook(retry_times=0, attempts=3, backoff_seconds=0.1)

    @property
    def source_access(self) -> RegistryAccess:
        return RegistryAccess(self.source.host, None, str(self.ca.ca_file))

    def target_access(self, password: str = PASSWORD, host: str | None = None) -> RegistryAccess:
        return RegistryAccess(
            host or self.target.host, RegistryCredentials("AWS", password), str(self.ca.ca_file)
        )


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    regs = Registries(tmp_path_factory.mktemp("registries"))
    yield regs
    regs.stop()


@pytest.fixture(scope="module")
def small_image(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltImage, str]:
    image = build_single_platform_image(tmp_path_factory.mktemp("small"), "v1", [2048, 300_000, 4096], seed=1)
    return image, registries.push(image.reference, "team/trainer", image.tag)


@pytest.fixture(scope="module")
def multi_image(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltImage, str]:
    image = build_multi_platform_image(
        tmp_path_factory.mktemp("multi"),
        "v2",
        [1024, 65_536],
        seed=2,
        platforms=("linux/amd64", "linux/arm64", "linux/arm/v7"),
    )
    return image, registries.push(image.reference, "team/server", image.tag)


def test_copy_keeps_the_digest_and_moves_every_blob(registries: Registries, small_image) -> None:
    image, ref = small_image
    registries.target.mark()
    written = registries.hook.copy(
        ref, registries.source_access, f"{registries.target.host}/a/trainer:v1", registries.target_access()
    )
    assert written == image.digest
    served = registries.hook.inspect(f"{registries.target.host}/a/trainer:v1", registries.target_access())
    assert served.digest == image.digest
    assert registries.target.uploaded_blob_bytes() == image.total_blob_bytes


def test_copying_again_moves_no_blob(registries: Registries, small_image) -> None:
    image, ref = small_image
    dest = f"{registries.target.host}/b/trainer:v1"
    registries.hook.copy(ref, registries.source_access, dest, registries.target_access())
    registries.target.mark()
    registries.source.mark()
    assert (
        registries.hook.copy(ref, registries.source_access, dest, registries.target_access()) == image.digest
    )
    assert registries.target.uploaded_blob_bytes() == 0
    # skopeo reads the small config blob to check the image; no layer is read again
    assert registries.source.downloaded_blob_bytes() < 10_000


def test_a_whole_index_keeps_its_digest_and_every_platform(registries: Registries, multi_image) -> None:
    image, ref = multi_image
    dest = f"{registries.target.host}/c/server:v2"
    assert (
        registries.hook.copy(
            ref, registries.source_access, dest, registries.target_access(), all_platforms=True
        )
        == image.digest
    )
    for digest in image.platform_digests.values():
        served = registries.hook.inspect(
            f"{registries.target.host}/c/server@{digest}", registries.target_access()
        )
        assert served.digest == digest


def test_a_filtered_index_lists_only_the_chosen_platforms(registries: Registries, multi_image) -> None:
    image, ref = multi_image
    index = registries.hook.inspect(ref, registries.source_access)
    selection = select_platforms(ref, index.document, ["linux/amd64", "linux/arm64"])
    dest = f"{registries.target.host}/d/server"
    for entry in selection.entries:
        registries.hook.copy(
            f"{ref.rsplit(':', 1)[0]}@{entry['digest']}",
            registries.source_access,
            f"{dest}@{entry['digest']}",
            registries.target_access(),
        )
    assert selection.index is not None
    pushed = registries.hook.push_index(selection.index, f"{dest}:v2", registries.target_access())
    served = registries.hook.inspect(f"{dest}:v2", registries.target_access())
    assert pushed == served.digest == manifest_digest(selection.index)
    platforms = [m["platform"]["architecture"] for m in json.loads(served.raw)["manifests"]]
    assert platforms == ["amd64", "arm64"]
    assert (
        registries.hook.digest_if_present(
            f"{dest}@{image.platform_digests['linux/arm/v7']}", registries.target_access()
        )
        is None
    )


def test_an_unknown_tag_names_the_image(registries: Registries, small_image) -> None:
    _, ref = small_image
    missing = ref.replace(":v1", ":does-not-exist")
    with pytest.raises(ImageNotFoundError, match=r"team/trainer:does-not-exist"):
        registries.hook.copy(
            missing,
            registries.source_access,
            f"{registries.target.host}/e/trainer:x",
            registries.target_access(),
        )
    with pytest.raises(ImageNotFoundError, match=r"no/such-repo:v1"):
        registries.hook.inspect(f"{registries.source.host}/no/such-repo:v1", registries.source_access)


def test_a_refused_password_names_the_registry(registries: Registries, small_image) -> None:
    _, ref = small_image
    with pytest.raises(RegistryAuthError, match=registries.target.host):
        registries.hook.copy(
            ref,
            registries.source_access,
            f"{registries.target.host}/f/trainer:v1",
            registries.target_access(password="wrong"),
        )


def test_an_untrusted_certificate_of_the_platform_registry_names_it(
    registries: Registries, small_image
) -> None:
    _, ref = small_image
    with pytest.raises(RegistryTlsError, match=registries.source.host):
        registries.hook.inspect(ref, RegistryAccess(registries.source.host))


def test_transient_5xx_are_retried(registries: Registries, small_image) -> None:
    image, ref = small_image
    proxy = FlakyProxy(registries.target)
    try:
        proxy.match = "/blobs/uploads/"
        proxy.fail_with_503 = 1
        dest = f"{proxy.host}/g/trainer:v1"
        assert (
            registries.hook.copy(
                ref, registries.source_access, dest, registries.target_access(host=proxy.host)
            )
            == image.digest
        )
        assert proxy.injected, "the proxy never failed a request, so nothing was retried"
    finally:
        proxy.stop()


def test_an_interrupted_copy_is_finished_by_a_rerun(registries: Registries, small_image) -> None:
    image, ref = small_image
    proxy = FlakyProxy(registries.target)
    fragile = RegistryHook(retry_times=0, attempts=1)
    try:
        proxy.match = "PATCH "
        proxy.drop_after_bytes = 100_000  # in the middle of the 300 kB layer's upload
        dest = f"{proxy.host}/h/trainer:v1"
        with pytest.raises(RegistryTransientError, match=proxy.host):
            fragile.copy(ref, registries.source_access, dest, registries.target_access(host=proxy.host))
        assert proxy.injected
        assert fragile.digest_if_present(dest, registries.target_access(host=proxy.host)) is None
        assert (
            fragile.copy(ref, registries.source_access, dest, registries.target_access(host=proxy.host))
            == image.digest
        )
    finally:
        proxy.stop()


def test_credentials_stay_off_the_command_line_and_off_disk(
    registries: Registries, small_image, tmp_path: Path
) -> None:
    """skopeo gets the path of an anonymous memory file (/proc/self/fd/<n>), never a password or a file."""
    _, ref = small_image
    record = tmp_path / "argv.json"
    wrapper = tmp_path / "skopeo"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'python3 -c \'import json,os,sys; a=sys.argv[1:]; f=a[a.index("--authfile")+1]; '
        f'json.dump({{"argv": a, "authfile": f, "target": os.readlink(f), "auths": json.load(open(f))["auths"]}}, '
        f'open("{record}", "w"))\' "$@"\n'
        'exec /usr/bin/skopeo "$@"\n'
    )
    wrapper.chmod(0o755)
    hook = RegistryHook(skopeo=str(wrapper), retry_times=0, attempts=1)
    hook.copy(
        ref, registries.source_access, f"{registries.target.host}/i/trainer:v1", registries.target_access()
    )
    seen = json.loads(record.read_text())
    assert PASSWORD not in " ".join(seen["argv"])
    assert seen["authfile"].startswith("/proc/self/fd/")
    assert seen["target"].startswith("/memfd:")  # on no file system at all
    assert base64.b64decode(seen["auths"][registries.target.host]["auth"]) == f"AWS:{PASSWORD}".encode()
    assert files_holding(Path(tempfile.gettempdir()), PASSWORD, prefix="sagelift-registry-") == []


def files_holding(root: Path, password: str, prefix: str = "") -> list[Path]:
    """Every file under ``root`` (in entries starting with ``prefix``) holding the password, plain or base64."""
    needles = (password.encode(), base64.b64encode(f"AWS:{password}".encode()))
    found = []
    for top in root.glob(f"{prefix}*"):
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    data = path.read_bytes()
                    if any(n in data for n in needles):
                        found.append(path)
    return found


KILLED_COPY = """
import sys
sys.path[:0] = [{root!r}, {plugins!r}]
from sagelift.steps.registry import RegistryAccess, RegistryCredentials, RegistryHook
RegistryHook(retry_times=0, attempts=1).copy(
    {source!r}, RegistryAccess({source_host!r}, None, {ca!r}),
    {destination!r}, RegistryAccess({target_host!r}, RegistryCredentials("AWS", {password!r}), {ca!r}),
    size_bytes=0,
)
"""


def test_a_worker_killed_mid_copy_leaves_no_credential_behind(
    registries: Registries, small_image, tmp_path: Path
) -> None:
    """SIGKILL the process running a copy while skopeo is moving a layer: no file under the temp dir holds
    the password, skopeo dies with it, and the next operation removes the workspace left behind."""
    _, ref = small_image
    slow = FakeRegistry(registries.ca, upstream=registries.source, hang="blobs")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = KILLED_COPY.format(
        root=str(ROOT),
        plugins=str(ROOT / "plugins"),
        source=ref.replace(registries.source.host, slow.host),
        source_host=slow.host,
        ca=str(registries.ca.ca_file),
        destination=f"{registries.target.host}/killed/trainer:v1",
        target_host=registries.target.host,
        password=PASSWORD,
    )
    worker = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.monotonic() + 60
        while slow.hung == 0 and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.hung, f"skopeo never reached a layer (worker exit {worker.poll()})"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 10
        while skopeo_pids_using(tmp) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert skopeo_pids_using(tmp) == []  # killed with its parent, not left copying
        left = list(tmp.glob("sagelift-registry-*"))
        assert left, "the kill left no workspace: it did not happen mid-copy"
        assert files_holding(tmp, PASSWORD) == []
        assert sweep_stale_workspaces(tmp) == left
        assert list(tmp.iterdir()) == []
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        slow.stop()


def skopeo_pids_using(directory: Path) -> list[int]:
    """Processes whose command line names ``directory`` (skopeo gets its --tmpdir there)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if str(directory).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
    return pids


def test_stale_workspaces_of_gone_processes_are_swept(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = tmp_path / "sagelift-registry-dead"
    live = tmp_path / "sagelift-registry-live"
    legacy_old = tmp_path / "sagelift-registry-legacy-old"
    legacy_new = tmp_path / "sagelift-registry-legacy-new"
    for directory in (dead, live, legacy_old, legacy_new):
        directory.mkdir()
        (directory / "auth.json").write_text(json.dumps({"auths": {"x": {"auth": "c2VjcmV0"}}}))
    (dead / "owner").write_text(f"{finished.pid} 1")
    start_time = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    (live / "owner").write_text(f"{os.getpid()} {start_time}")
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(legacy_old, (seven_hours_ago, seven_hours_ago))

    assert sorted(sweep_stale_workspaces(tmp_path)) == sorted([dead, legacy_old])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, legacy_new.name])


# --- conf-chosen registries: token realms, one network error, time bounds -------------------------------
def untrusted(host: str, ca_file: str | None, rules: TokenRealmRules | None = None) -> RegistryAccess:
    """A source registry a run's conf chose: probed, its realm checked, its network errors opaque."""
    return RegistryAccess(host, None, ca_file, rules or TokenRealmRules())


@pytest.fixture
def metadata() -> Iterator[MetadataStandIn]:
    stand_in = MetadataStandIn()
    yield stand_in
    stand_in.stop()


def test_without_the_probe_skopeo_fetches_a_token_from_the_metadata_service(
    registries: Registries, metadata: MetadataStandIn
) -> None:
    """The attack the probe stops, reproduced with skopeo alone: the realm sends it to the stand-in,
    and the stand-in's credential goes to the hostile registry."""
    hostile = FakeRegistry(registries.ca, realm=metadata.url)
    try:
        subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--cert-dir",
                str(registries.ca.cert_dir),
                f"docker://{hostile.host}/x/y:1",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert len(metadata.requests) == 1
        assert f"Bearer {METADATA_TOKEN}" in hostile.authorizations()
    finally:
        hostile.stop()


@pytest.mark.parametrize("realm_kind", ["metadata over http", "another https host"])
def test_a_realm_outside_the_rules_is_refused_before_skopeo_runs(
    registries: Registries, small_image, metadata: MetadataStandIn, realm_kind: str
) -> None:
    _, ref = small_image
    elsewhere = FakeRegistry(registries.ca)  # an https token server the platform never allowed
    realm = metadata.url if realm_kind == "metadata over http" else elsewhere.token_url
    hostile = FakeRegistry(registries.ca, realm=realm, upstream=registries.source)
    source = ref.replace(registries.source.host, hostile.host)
    registries.target.mark()
    try:
        with pytest.raises(RegistryPolicyError, match=rf"registry {hostile.host} sends token requests to "):
            registries.hook.copy(
                source,
                untrusted(hostile.host, str(registries.ca.ca_file)),
                f"{registries.target.host}/realm/trainer:v1",
                registries.target_access(),
            )
        assert metadata.requests == []
        assert elsewhere.requests == []
        assert hostile.requests == [SeenRequest("GET", "/v2/", None)]  # the probe, nothing else
        assert registries.target.requests() == []
    finally:
        hostile.stop()
        elsewhere.stop()


def test_realms_on_the_registry_itself_or_allowed_by_the_platform_still_copy(
    registries: Registries, small_image
) -> None:
    image, ref = small_image
    token_server = FakeRegistry(registries.ca)
    own = FakeRegistry(registries.ca, upstream=registries.source)
    own.realm = own.token_url
    listed = FakeRegistry(registries.ca, realm=token_server.token_url, upstream=registries.source)
    try:
        for front, rules in ((own, TokenRealmRules()), (listed, TokenRealmRules((token_server.host,)))):
            written = registries.hook.copy(
                ref.replace(registries.source.host, front.host),
                untrusted(front.host, str(registries.ca.ca_file), rules),
                f"{registries.target.host}/realm-ok/{front.port}:v1",
                registries.target_access(),
            )
            assert written == image.digest
            assert f"Bearer {FAKE_TOKEN}" in front.authorizations()
        assert token_server.requests  # the listed realm did hand out the token
    finally:
        for fake in (own, listed, token_server):
            fake.stop()


def test_every_network_failure_of_a_source_reads_the_same(
    registries: Registries, metadata: MetadataStandIn
) -> None:
    """Closed port, plain HTTP, an HTTPS service that is no registry, an untrusted certificate, a name
    that does not resolve: one message, so a task log cannot map the platform's network."""
    hook = RegistryHook(retry_times=0, attempts=1)
    https_not_registry = FakeRegistry(registries.ca, not_a_registry=True)
    ca = str(registries.ca.ca_file)
    try:
        with closed_port() as port:
            cases = {
                "closed port": (f"127.0.0.1:{port}", ca),
                "plain http": (f"127.0.0.1:{metadata.port}", ca),
                "https, not a registry": (https_not_registry.host, ca),
                "untrusted certificate": (registries.source.host, None),
                "no such host": ("no-such-registry.invalid", ca),
            }
            messages = {}
            for kind, (host, ca_file) in cases.items():
                with pytest.raises(RegistryUnreachableError) as err:
                    hook.inspect(f"{host}/team/trainer:v1", untrusted(host, ca_file))
                messages[kind] = str(err.value).replace(host, "<registry>")
        assert len(set(messages.values())) == 1, messages
        assert "<registry>" in messages["closed port"]
    finally:
        https_not_registry.stop()


def test_skopeo_network_errors_of_a_source_are_opaque_and_of_the_platform_registry_detailed() -> None:
    source, ecr = "registry.example.com", "111111111111.dkr.ecr.us-east-1.amazonaws.com"
    stderrs = [
        f'pinging container registry {source}: Get "https://{source}/v2/": dial tcp 10.0.0.7:443: connect: connection refused',
        f'pinging container registry {source}: Get "https://{source}/v2/": http: server gave HTTP response to HTTPS client',
        f'pinging container registry {source}: Get "https://{source}/v2/": x509: certificate signed by unknown authority',
        f'reading blob sha256:abc: Get "https://{source}/v2/a/blobs/sha256:abc": unexpected EOF',
    ]
    errors = [classify_failure(s, f"{source}/a:1", [source, ecr], opaque=[source]) for s in stderrs]
    assert {type(e) for e in errors} == {RegistryUnreachableError}
    assert len({str(e) for e in errors}) == 1
    platform_side = classify_failure(stderrs[2].replace(source, ecr), "a", [source, ecr], opaque=[source])
    assert isinstance(platform_side, RegistryTlsError)


@pytest.mark.parametrize("hang", ["all", "after_ping"])
def test_a_hung_registry_fails_within_the_bound_naming_it(registries: Registries, hang: str) -> None:
    """A registry that accepts connections (and TLS) and never answers: the operation ends within its
    bound (here 0.05 min = 3 s) with an error naming the registry, however many attempts were allowed."""
    hung = FakeRegistry(registries.ca, hang=hang)
    hook = RegistryHook(retry_times=3, attempts=3, backoff_seconds=0.1, limits=CopyLimits(0.05, 1.0, 0.05))
    started = time.monotonic()
    try:
        with pytest.raises((RegistryUnreachableError, RegistryTimeoutError), match=re.escape(hung.host)):
            hook.copy(
                f"{hung.host}/team/trainer:v1",
                untrusted(hung.host, str(registries.ca.ca_file)),
                f"{registries.target.host}/hung/trainer:v1",
                registries.target_access(),
            )
        elapsed = time.monotonic() - started
        assert 3 <= elapsed < 3 + 10, elapsed
        assert hung.hung >= 1
    finally:
        hung.stop()


def test_a_50_mb_layer_is_copied_exactly_and_not_again(registries: Registries, tmp_path: Path) -> None:
    image = build_single_platform_image(tmp_path / "big", "v3", [4096, 50 * 1024 * 1024, 8192], seed=3)
    ref = registries.push(image.reference, "team/big", image.tag)
    dest = f"{registries.target.host}/j/big:v3"
    registries.target.mark()
    assert (
        registries.hook.copy(ref, registries.source_access, dest, registries.target_access()) == image.digest
    )
    assert registries.target.uploaded_blob_bytes() == image.total_blob_bytes > 50 * 1024 * 1024
    registries.target.mark()
    assert (
        registries.hook.copy(ref, registries.source_access, dest, registries.target_access()) == image.digest
    )
    assert registries.target.uploaded_blob_bytes() == 0


def test_the_probe_goes_through_the_workers_https_proxy_as_skopeo_does(
    registries: Registries, metadata: MetadataStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy the probe tunnels like skopeo (https_proxy, no_proxy, never for loopback), so the
    realm check still runs where the worker cannot resolve registry names itself."""
    proxy = ConnectProxy()
    hostile = FakeRegistry(registries.ca, realm=metadata.url)
    proxied = f"{PROXIED_NAME}:{hostile.port}"
    hook = RegistryHook(retry_times=0, attempts=1)
    try:
        with pytest.raises(RegistryUnreachableError):  # the name resolves nowhere without the proxy
            hook.probe(untrusted(proxied, str(registries.ca.ca_file)))
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "internal.example.com")
        with pytest.raises(RegistryPolicyError, match=r"sends token requests to http://127\.0\.0\.1"):
            hook.probe(untrusted(proxied, str(registries.ca.ca_file)))
        assert proxy.targets == [proxied]
        assert metadata.requests == []
    finally:
        hostile.stop()
        proxy.stop()


def test_proxies_follow_the_environment_and_never_carry_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert https_proxy_for("registry.example.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", ".corp.example.com")
    proxy = https_proxy_for("registry.example.com")
    assert proxy is not None and proxy.address == ("proxy.example.com", 3128)
    assert base64.b64decode(str(proxy.credentials)) == b"user:p@ss"
    assert https_proxy_for("registry.corp.example.com") is None
    assert https_proxy_for("127.0.0.1") is None
    assert https_proxy_for("localhost") is None


def test_without_skopeo_a_copy_says_what_to_do_instead(tmp_path: Path) -> None:
    """Amazon MWAA cannot install skopeo: the task names the image and the ways around the copy."""
    hook = RegistryHook(skopeo=str(tmp_path / "skopeo"), retry_times=0, attempts=1)
    source = "registry.example.com/team/trainer:v1"
    with pytest.raises(RegistryError) as failure:
        hook.copy(
            source,
            RegistryAccess("registry.example.com", None, None),
            "333333333333.dkr.ecr.us-east-1.amazonaws.com/sagelift/team/trainer:v1",
            RegistryAccess(
                "333333333333.dkr.ecr.us-east-1.amazonaws.com", RegistryCredentials("AWS", "x"), None
            ),
        )
    message = str(failure.value)
    for fact in ("skopeo is not installed", source, "Amazon MWAA", "account's ECR", "AWS-owned"):
        assert fact in message


def test_a_workspace_removed_while_the_sweep_lists_it_is_passed_over(tmp_path: Path, monkeypatch) -> None:
    # another worker's sweep (or its owner) removes a workspace between the listing and its lstat
    gone = tmp_path / "sagelift-registry-gone"
    gone.mkdir()
    real_glob = Path.glob

    def glob_then_remove(self: Path, pattern: str):
        found = list(real_glob(self, pattern))
        shutil.rmtree(gone)
        return iter(found)

    monkeypatch.setattr(Path, "glob", glob_then_remove)
    assert sweep_stale_workspaces(tmp_path) == []
