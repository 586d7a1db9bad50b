"""scripts/system_deps.py on a fake PATH: which Debian packages it asks apt for, and that it asks for none
when every command is there. apt-get and sudo are stubs on that PATH; the real apt is never reachable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from scripts.system_deps import COMMAND_PACKAGES, main, missing_packages

ALL_PACKAGES = [
    "skopeo",
    "docker-registry",
    "apache2-utils",
    "kubernetes-client",
    "chromium",
    "redis-server",
]

# Records its arguments; on `install` plays dpkg: drops an executable for each package's command,
# unless the package is listed in FAIL_PACKAGES (then it "installs" nothing) or APT_EXIT is set.
APT_STUB = """#!{python}
import json, os, sys
bindir = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(bindir, "..", "apt.log"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("APT_EXIT"):
    sys.exit(int(os.environ["APT_EXIT"]))
commands = {commands}
if sys.argv[1:2] == ["install"]:
    for package in sys.argv[2:]:
        if package.startswith("-") or package in os.environ.get("FAIL_PACKAGES", "").split():
            continue
        for command, provider in commands.items():
            if provider == package:
                path = os.path.join(bindir, command)
                with open(path, "w") as stub:
                    stub.write("#!/bin/sh\\n")
                os.chmod(path, 0o755)
"""
SUDO_STUB = """#!{python}
import os, sys
os.execvp(sys.argv[1], sys.argv[1:])
"""


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH of one directory holding only stub apt-get and sudo."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("apt-get", APT_STUB), ("sudo", SUDO_STUB)):
        stub = bindir / name
        stub.write_text(text.format(python=sys.executable, commands=repr(COMMAND_PACKAGES)))
        stub.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("APT_EXIT", raising=False)
    monkeypatch.delenv("FAIL_PACKAGES", raising=False)
    return bindir


def provide(bindir: Path, *commands: str) -> None:
    for command in commands:
        (bindir / command).write_text("#!/bin/sh\n")
        (bindir / command).chmod(0o755)


def apt_calls(bindir: Path) -> list[list[str]]:
    log = bindir.parent / "apt.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_kubectl_from_another_package_asks_for_no_kubernetes_client(fake_path: Path) -> None:
    provide(fake_path, "kubectl")
    assert missing_packages() == [
        "skopeo",
        "docker-registry",
        "apache2-utils",
        "chromium",
        "redis-server",
    ]


def test_an_empty_path_asks_for_all_six(tmp_path: Path) -> None:
    assert missing_packages(str(tmp_path)) == ALL_PACKAGES


def test_a_non_executable_file_is_not_a_command(fake_path: Path) -> None:
    (fake_path / "kubectl").write_text("not a program")
    assert "kubernetes-client" in missing_packages()


def test_installs_the_missing_packages_without_recommends_and_a_second_call_does_nothing(
    fake_path: Path,
) -> None:
    provide(fake_path, "kubectl", "htpasswd")
    assert main([]) == 0
    assert apt_calls(fake_path) == [
        ["update", "-qq"],
        [
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "skopeo",
            "docker-registry",
            "chromium",
            "redis-server",
        ],
    ]
    assert missing_packages() == []

    assert main([]) == 0
    assert len(apt_calls(fake_path)) == 2


def test_a_full_path_asks_apt_for_nothing(fake_path: Path) -> None:
    provide(fake_path, *COMMAND_PACKAGES)
    assert main([]) == 0
    assert apt_calls(fake_path) == []


def test_dry_run_prints_the_apt_command_and_runs_nothing(
    fake_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provide(fake_path, "kubectl")
    assert main(["--dry-run"]) == 0
    install = capsys.readouterr().out.splitlines()[-1]
    sudo = "" if os.geteuid() == 0 else "sudo "
    assert install == (
        f"{sudo}apt-get install -y -qq --no-install-recommends skopeo docker-registry apache2-utils chromium"
        " redis-server"
    )
    assert apt_calls(fake_path) == []


def test_an_apt_failure_is_the_exit_code(
    fake_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APT_EXIT", "100")
    assert main([]) == 100
    assert "apt-get update -qq' exited 100" in capsys.readouterr().err


def test_a_package_that_brings_no_command_fails(
    fake_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAIL_PACKAGES", "chromium")
    assert main([]) == 1
    assert "still missing after install: chromium" in capsys.readouterr().err
