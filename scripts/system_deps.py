"""Install the Debian packages the local stand-ins need, only for the commands that are missing.

Tests and ``make demo`` start real programs on loopback in place of AWS's registries, a browser, a
kubectl client and the Redis broker of the scale-out tests' Celery workers; the product never needs them.
A machine image may already carry some of these commands from other packages (a kubectl from a cloud SDK,
say): asking apt for Debian's package of a command that already exists can collide with the other
package's file, so only the packages of missing commands are installed, without recommended packages, and
a second call installs nothing.

Usage: ``python3 scripts/system_deps.py [--dry-run]`` (root, or sudo on PATH). Standard library only: it
runs before any environment exists.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

# command on PATH -> the Debian package that provides it
COMMAND_PACKAGES: dict[str, str] = {
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "kubectl": "kubernetes-client",
    "chromium": "chromium",
    "redis-server": "redis-server",
}


def missing_packages(path: str | None = None) -> list[str]:
    """The packages whose command is not found on ``path`` (the process PATH by default), in table order."""
    wanted: list[str] = []
    for command, package in COMMAND_PACKAGES.items():
        if shutil.which(command, path=path) is None and package not in wanted:
            wanted.append(package)
    return wanted


def install_commands(packages: list[str], as_root: bool) -> list[list[str]]:
    prefix = [] if as_root else ["sudo"]
    return [
        [*prefix, "apt-get", "update", "-qq"],
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the apt-get commands and stop")
    args = parser.parse_args(argv)
    packages = missing_packages()
    if not packages:
        return 0
    as_root = os.geteuid() == 0
    commands = install_commands(packages, as_root)
    if args.dry_run:
        for command in commands:
            print(shlex.join(command))
        return 0
    if not as_root and shutil.which("sudo") is None:
        print(f"system_deps: need root or sudo to install {' '.join(packages)}", file=sys.stderr)
        return 1
    print(f"installing Debian packages for the local stand-ins: {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in commands:
        result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            print(f"system_deps: '{shlex.join(command)}' exited {result.returncode}", file=sys.stderr)
            return result.returncode
    still_missing = missing_packages()
    if still_missing:
        print(f"system_deps: still missing after install: {' '.join(still_missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
