"""Test images written as OCI image layouts with plain Python, ready for ``skopeo copy oci:<dir>:<tag>``.

Each layer is a tar+gzip archive holding one file of random bytes, written and hashed in chunks so a
multi-hundred-megabyte layer never sits in memory. Images are deterministic for a given seed, so a
test can predict nothing but can compare digests between registries.

What it does not emulate: real root filesystems (a layer holds one file, nothing runs), image
signatures or attestations, Docker schema 2 media types (everything is OCI), zstd layers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1024 * 1024


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass
class BuiltImage:
    """What a test needs to know about an image it wrote: the top digest and every blob."""

    layout: Path
    tag: str
    digest: str  # the manifest's digest, or the index's for a multi-platform image
    media_type: str
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, configs and layers
    platform_digests: dict[str, str] = field(default_factory=dict)  # "os/arch" -> manifest digest

    @property
    def reference(self) -> str:
        return f"oci:{self.layout}:{self.tag}"

    @property
    def total_blob_bytes(self) -> int:
        return sum(self.blobs.values())


class _RandomReader:
    def __init__(self, size: int, rng: random.Random) -> None:
        self.remaining = size
        self.rng = rng

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        self.remaining -= n
        return self.rng.randbytes(n)


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: io.BufferedWriter) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


class OciLayout:
    """One OCI layout directory; write blobs and images into it, then push it with skopeo."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.index: list[dict[str, object]] = []

    def _blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.split(":", 1)[1]

    def write_bytes_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._blob_path(digest).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def write_random_layer(self, size: int, seed: int) -> tuple[Descriptor, str]:
        """A tar+gzip layer with one file of ``size`` random bytes; returns (descriptor, diff_id)."""
        tmp = self.path / f"layer-{seed}.tmp"
        diff = hashlib.sha256()
        with tmp.open("wb") as raw:
            hashing = _HashingWriter(raw)
            with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=1, mtime=0) as gz:

                class _DiffTap(io.RawIOBase):
                    def writable(self) -> bool:
                        return True

                    def write(self, data: bytes) -> int:  # type: ignore[override]
                        diff.update(data)
                        gz.write(data)
                        return len(data)

                tap = io.BufferedWriter(_DiffTap(), buffer_size=CHUNK)
                with tarfile.open(fileobj=tap, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    info = tarfile.TarInfo(f"data/layer-{seed}.bin")
                    info.size = size
                    info.mtime = 0
                    tar.addfile(info, _RandomReader(size, random.Random(seed)))  # type: ignore[arg-type]
                tap.flush()
        digest = "sha256:" + hashing.sha.hexdigest()
        tmp.rename(self._blob_path(digest))
        return Descriptor(OCI_LAYER_GZIP, digest, hashing.size), "sha256:" + diff.hexdigest()

    def write_image(
        self, layer_sizes: list[int], seed: int, os_name: str = "linux", arch: str = "amd64"
    ) -> tuple[Descriptor, dict[str, int]]:
        """A single-platform image manifest; returns its descriptor and its blobs."""
        blobs: dict[str, int] = {}
        layers: list[Descriptor] = []
        diff_ids: list[str] = []
        for i, size in enumerate(layer_sizes):
            layer, diff_id = self.write_random_layer(size, seed * 1000 + i)
            layers.append(layer)
            diff_ids.append(diff_id)
            blobs[layer.digest] = layer.size
        config_doc = {
            "architecture": arch,
            "os": os_name,
            "config": {"Entrypoint": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        config = self.write_bytes_blob(json.dumps(config_doc, sort_keys=True).encode(), OCI_CONFIG)
        blobs[config.digest] = config.size
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        manifest = self.write_bytes_blob(json.dumps(manifest_doc, sort_keys=True).encode(), OCI_MANIFEST)
        manifest.platform = {"os": os_name, "architecture": arch}
        return manifest, blobs

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        entry = descriptor.to_json()
        entry.pop("platform", None)
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index.append(entry)
        (self.path / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index})
        )


def build_single_platform_image(path: Path, tag: str, layer_sizes: list[int], seed: int) -> BuiltImage:
    layout = OciLayout(path)
    manifest, blobs = layout.write_image(layer_sizes, seed)
    layout.tag(manifest, tag)
    return BuiltImage(path, tag, manifest.digest, OCI_MANIFEST, blobs, {"linux/amd64": manifest.digest})


def build_multi_platform_image(
    path: Path,
    tag: str,
    layer_sizes: list[int],
    seed: int,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
) -> BuiltImage:
    """An OCI index over one image per platform, each with its own random layers."""
    layout = OciLayout(path)
    entries: list[Descriptor] = []
    blobs: dict[str, int] = {}
    per_platform: dict[str, str] = {}
    for i, platform in enumerate(platforms):
        os_name, arch = platform.split("/", 1)
        manifest, image_blobs = layout.write_image(layer_sizes, seed * 10 + i, os_name, arch)
        entries.append(manifest)
        blobs.update(image_blobs)
        per_platform[platform] = manifest.digest
    index_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [e.to_json() for e in entries]}
    index = layout.write_bytes_blob(json.dumps(index_doc, sort_keys=True).encode(), OCI_INDEX)
    layout.tag(index, tag)
    return BuiltImage(path, tag, index.digest, OCI_INDEX, blobs, per_platform)
