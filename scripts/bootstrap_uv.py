"""Put a pinned uv at .tools/bin/uv using nothing but python3's standard library.

A fresh Debian machine has python3 but neither pip nor venv (python3-venv and python3-pip are separate
packages), so `make` cannot rely on them. This fetches uv's wheel from the package index, checks its
sha256 against the pin below, and unpacks the uv binary. uv then manages the project environment with
the machine's own python3 and never downloads an interpreter (UV_PYTHON_DOWNLOADS=never in the Makefile).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import sys
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.9"
WHEELS = {
    "x86_64": (
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    "aarch64": (
        "uv-0.13.9-py3-none-manylinux_2_28_aarch64.whl",
        "ecb6028d79dc96fbeafffe5c8af62a7099487ebc05a701e76714eebcffd06375",
    ),
}
INDEX = os.environ.get("UV_BOOTSTRAP_INDEX", "https://pypi.org/simple")


def installed(target: Path) -> bool:
    if not target.exists():
        return False
    import subprocess

    out = subprocess.run([str(target), "--version"], capture_output=True, text=True, check=False).stdout
    return out.split()[1:2] == [VERSION]


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin/uv")
    if installed(target):
        return 0
    arch = platform.machine()
    if arch not in WHEELS:
        print(f"bootstrap_uv: no pinned uv wheel for {arch}; install uv {VERSION} yourself", file=sys.stderr)
        return 1
    filename, sha256 = WHEELS[arch]
    request = urllib.request.Request(
        f"{INDEX}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    url = next(f["url"] for f in files if f["filename"] == filename)
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        print(f"bootstrap_uv: {filename} has sha256 {digest}, expected {sha256}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith("/scripts/uv"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with wheel.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    print(f"bootstrap_uv: installed uv {VERSION} at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
