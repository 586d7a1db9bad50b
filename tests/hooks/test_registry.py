"""The copy wire protocol (skopeo) against two real registries on loopback."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagelift.domain.images import manifest_digest, select_platforms
from sagelift.hooks.registry import (
    ImageNotFoundError,
    RegistryAccess,
    RegistryAuthError,
    RegistryCredentials,
    RegistryHook,
    RegistryTlsError,
    RegistryTransientError,
)
from tests.support.oci_images import BuiltImage, build_multi_platform_image, build_single_platform_image
from tests.support.oci_registry import FlakyProxy, RegistryPair

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


def test_an_untrusted_certificate_names_the_registry(registries: Registries, small_image) -> None:
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


def test_credentials_stay_off_the_command_line(registries: Registries, small_image, tmp_path: Path) -> None:
    """skopeo sees only an auth file's path, in a private directory that is gone afterwards."""
    _, ref = small_image
    record = tmp_path / "argv.json"
    wrapper = tmp_path / "skopeo"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'python3 -c \'import json,os,sys,stat; a=sys.argv[1:]; f=a[a.index("--authfile")+1]; '
        f'json.dump({{"argv": a, "authfile": f, "mode": stat.S_IMODE(os.stat(f).st_mode), '
        f'"dirmode": stat.S_IMODE(os.stat(os.path.dirname(f)).st_mode)}}, open("{record}", "w"))\' "$@"\n'
        'exec /usr/bin/skopeo "$@"\n'
    )
    wrapper.chmod(0o755)
    hook = RegistryHook(skopeo=str(wrapper), retry_times=0, attempts=1)
    hook.copy(
        ref, registries.source_access, f"{registries.target.host}/i/trainer:v1", registries.target_access()
    )
    seen = json.loads(record.read_text())
    assert PASSWORD not in " ".join(seen["argv"])
    assert seen["mode"] == stat.S_IRUSR | stat.S_IWUSR
    assert seen["dirmode"] == stat.S_IRWXU
    assert not Path(seen["authfile"]).exists()


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
