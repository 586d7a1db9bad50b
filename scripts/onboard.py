"""Render what onboarding a scientist account takes: IAM policies and the Airflow connection.

    make onboard PLATFORM=platform.json ACCOUNT=333333333333 RUNNER=arn:aws:iam::111111111111:role/runner \
        DATA=s3://bucket/data/ OUTPUT=s3://bucket/output/

writes build/onboarding/<account>/*.json and prints the `airflow connections add` command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# sagelift is installed in the environment (the project's .venv, or the wheel): its templates are package data
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.onboarding import POLICIES, render_connection, render_policies
from sagelift.domain.platform import PlatformConfig


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", required=True, help="JSON file with the sagelift_platform Variable")
    parser.add_argument("--account", required=True)
    parser.add_argument(
        "--runner", required=True, help="ARN of the runner identity (e.g. the workers' IRSA role)"
    )
    parser.add_argument("--data", action="append", default=[], help="S3 URI the account trains from (repeat)")
    parser.add_argument("--output", action="append", default=[], help="S3 URI training writes to (repeat)")
    parser.add_argument("--out-dir", default="build/onboarding")
    args = parser.parse_args()
    try:
        platform = PlatformConfig.from_dict(json.loads(Path(args.platform).read_text()))
        policies = render_policies(
            platform,
            args.account,
            runner_principal_arn=args.runner,
            data_uris=args.data,
            output_uris=args.output,
        )
        connection = render_connection(platform, args.account)
    except SageliftValidationError as err:
        print(f"onboard: {err}", file=sys.stderr)
        return 2
    out = Path(args.out_dir) / args.account
    out.mkdir(parents=True, exist_ok=True)
    where = {name: account for name, _, account in POLICIES}
    for name, document in policies.items():
        path = out / f"{name}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{where[name]:<11} {path}")
    conn_id = platform.aws_conn_id(args.account)
    print(f"\nairflow connections add {conn_id} --conn-json '{json.dumps(connection)}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
