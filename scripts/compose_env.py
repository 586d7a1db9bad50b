"""Write the local stack's secrets into .env before the first `docker compose up` (README "Full local stack").

docker compose reads `.env` beside docker-compose.yaml, which requires these and refuses to start without
them. The script adds what is missing and keeps what is there, so running it again changes nothing:
- AIRFLOW_FERNET_KEY: the key Airflow encrypts connection passwords and Variables with in its database,
  made as Airflow's "Fernet" page says (cryptography's `Fernet.generate_key()`: 32 random bytes, url-safe
  base64; made here with the standard library so the host needs no packages). Kept once written: another
  key would make what the database already holds unreadable.
- AIRFLOW_JWT_SECRET and AIRFLOW_API_SECRET_KEY: the API server's token signing key and secret key, the
  same on every component.
- AIRFLOW_UID: the host user's id, as Airflow's own docker-compose guide sets it, so the mounted folders
  stay the user's.
`.env` is in .gitignore: never commit it.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate_fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def missing_settings(existing: set[str]) -> dict[str, str]:
    generated = {
        "AIRFLOW_FERNET_KEY": generate_fernet_key,
        "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(32),
    }
    if hasattr(os, "getuid"):
        generated["AIRFLOW_UID"] = lambda: str(os.getuid())
    return {name: make() for name, make in generated.items() if name not in existing}


def write_env(path: Path) -> list[str]:
    """Append the missing settings to `path` (created 0600); return the names added."""
    text = path.read_text() if path.exists() else ""
    existing = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    added = missing_settings(existing)
    if added:
        lines = "".join(f"{name}={value}\n" for name, value in added.items())
        separator = "\n" if text and not text.endswith("\n") else ""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as file:
            file.write(separator + lines)
    os.chmod(path, 0o600)
    return list(added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=ROOT / ".env")
    args = parser.parse_args()
    added = write_env(args.path)
    print(f"{args.path}: added {', '.join(added)}" if added else f"{args.path}: nothing to add")


if __name__ == "__main__":
    main()
