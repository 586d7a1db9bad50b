"""Files the README's commands create that hold secrets stay out of git."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "path",
    [
        ".env",  # compose's settings (README "Scale out")
        ".airflow/simple_auth_manager_passwords.json.generated",  # the local admin password
        "build/onboarding/333333333333/connection.json",  # make onboard's output
    ],
)
def test_local_secret_bearing_files_are_ignored_by_git(path):
    # --no-index: asks .gitignore even if someone already added the file by mistake
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{path} is not ignored: {result.stderr}"
