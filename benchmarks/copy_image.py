"""Copy a ~500 MB image with step 4's copy path and with plain skopeo; print throughput and memory.

    .venv/bin/python benchmarks/copy_image.py [--size-mb 500] [--rounds 2]

Starts the same two loopback registries the tests use (tests/support/oci_registry.py: an anonymous TLS
source, a TLS + password "ECR side"), builds an image of random layers and pushes it to the source.
Each round copies it once with ``skopeo copy`` invoked directly (credentials via an auth file) and once
through ``sagelift.steps.registry.RegistryHook.copy`` (what EcrCopyImagesOperator runs), each into a
freshly started ECR-side registry so neither run finds blobs the other already moved.

Memory is measured in a separate Python process running the hook's copy: its resident set size
before the copy (baseline) and the peak, sampled every 10 ms, of the Python process alone and of the
whole process tree (Python plus skopeo). Targets: throughput at least 0.9x skopeo's, the Python
process at most 64 MB above baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from sagelift.steps.registry import RegistryAccess, RegistryCredentials, RegistryHook  # noqa: E402
from tests.support.oci_images import build_single_platform_image  # noqa: E402
from tests.support.oci_registry import OciRegistry, RegistryPair  # noqa: E402

PASSWORD = "333333333333-auth-token"

MEMORY_PROBE = r"""
import json, sys, threading, time
import psutil
sys.path[:0] = sys.argv[1:3]
from sagelift.steps.registry import RegistryAccess, RegistryCredentials, RegistryHook
args = json.loads(sys.argv[3])
me = psutil.Process()
baseline = me.memory_info().rss
peak = {"self": baseline, "tree": baseline}
done = threading.Event()
def sample():
    while not done.is_set():
        try:
            rss_self = me.memory_info().rss
            tree = rss_self + sum(c.memory_info().rss for c in me.children(recursive=True))
        except psutil.Error:
            continue
        peak["self"] = max(peak["self"], rss_self)
        peak["tree"] = max(peak["tree"], tree)
        time.sleep(0.01)
thread = threading.Thread(target=sample, daemon=True)
thread.start()
hook = RegistryHook(retry_times=0, attempts=1)
hook.copy(args["source"], RegistryAccess(args["source_host"], None, args["ca"]), args["dest"],
          RegistryAccess(args["dest_host"], RegistryCredentials("AWS", args["password"]), args["ca"]))
done.set()
thread.join()
print(json.dumps({"baseline": baseline, "peak_self": peak["self"], "peak_tree": peak["tree"]}))
"""


def skopeo_copy(source: str, dest: str, ca_dir: Path, dest_host: str, work: Path) -> float:
    import base64

    authfile = work / "auth.json"
    fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"auths": {dest_host: {"auth": base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()}}}, handle
        )
    started = time.perf_counter()
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--preserve-digests",
            "--authfile",
            str(authfile),
            "--src-cert-dir",
            str(ca_dir),
            "--dest-cert-dir",
            str(ca_dir),
            f"docker://{source}",
            f"docker://{dest}",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sagelift-bench-") as tmp:
        root = Path(tmp)
        pair = RegistryPair(root / "pair", PASSWORD)
        started: list[OciRegistry] = []
        try:
            half = options.size_mb * 1024 * 1024 // 2
            print(f"building a {options.size_mb} MB image (two random layers) ...", flush=True)
            image = build_single_platform_image(root / "image", "bench", [4096, half, half], seed=7)
            source = pair.push(image.reference, "bench/big", "bench")
            size = image.total_blob_bytes
            ca_file = str(pair.ca.ca_file)
            hook = RegistryHook(retry_times=0, attempts=1)
            timings: dict[str, list[float]] = {"skopeo": [], "sagelift": []}

            def fresh_target(name: str) -> OciRegistry:
                registry = OciRegistry(root / name, pair.ca, "AWS", PASSWORD).start()
                started.append(registry)
                return registry

            for round_no in range(options.rounds):
                target = fresh_target(f"skopeo-{round_no}")
                timings["skopeo"].append(
                    skopeo_copy(source, f"{target.host}/bench/big:bench", pair.ca.cert_dir, target.host, root)
                )
                target.stop()
                target = fresh_target(f"sagelift-{round_no}")
                began = time.perf_counter()
                digest = hook.copy(
                    source,
                    RegistryAccess(pair.source.host, None, ca_file),
                    f"{target.host}/bench/big:bench",
                    RegistryAccess(target.host, RegistryCredentials("AWS", PASSWORD), ca_file),
                )
                timings["sagelift"].append(time.perf_counter() - began)
                if digest != image.digest:
                    raise SystemExit(f"digest changed: {digest} != {image.digest}")
                target.stop()

            target = fresh_target("memory")
            probe = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    MEMORY_PROBE,
                    str(ROOT / "plugins"),
                    str(ROOT),
                    json.dumps(
                        {
                            "source": source,
                            "source_host": pair.source.host,
                            "ca": ca_file,
                            "password": PASSWORD,
                            "dest": f"{target.host}/bench/big:bench",
                            "dest_host": target.host,
                        }
                    ),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            memory = json.loads(probe.stdout.strip().splitlines()[-1])
        finally:
            for registry in started:
                registry.stop()
            pair.stop()

    mb = 1024 * 1024
    skopeo_s = statistics.median(timings["skopeo"])
    ours_s = statistics.median(timings["sagelift"])
    print(f"image: {size / mb:.0f} MB of blobs, digest {image.digest}")
    print(
        f"skopeo copy       : median {skopeo_s:.2f} s  {size / mb / skopeo_s:7.1f} MB/s  runs {timings['skopeo']}"
    )
    print(
        f"sagelift copy path: median {ours_s:.2f} s  {size / mb / ours_s:7.1f} MB/s  runs {timings['sagelift']}"
    )
    print(f"throughput ratio  : {skopeo_s / ours_s:.2f}x skopeo (target >= 0.90x)")
    print(
        f"memory: baseline {memory['baseline'] / mb:.1f} MB; python peak +{(memory['peak_self'] - memory['baseline']) / mb:.1f} MB"
        f" (target <= 64 MB); process tree (python + skopeo) peak +{(memory['peak_tree'] - memory['baseline']) / mb:.1f} MB"
    )


if __name__ == "__main__":
    main()
