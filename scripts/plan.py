"""Print what a run of a conf would change in its account, and change nothing (a plan, issue 16 item 9).

    make plan CONF=include/examples/demo.json [PLATFORM=platform.json]

runs without Airflow: it validates the conf against the platform configuration as the validate task
does, reaches the scientist account through the role chain from this process's own AWS identity (as a
KFP pod does: environment credentials, a profile or an instance role; ``AWS_ENDPOINT_URL`` is honoured),
checks who it acts as, then makes only the read-only calls of sagelift.steps.plan_changes and prints,
for every resource the run would touch: create, update (each field old -> new) or unchanged. It is what
a run with ``plan_only: true`` prints in its plan_changes task.

The platform configuration is the file ``--platform`` names, else the ``SAGELIFT_PLATFORM`` or
``AIRFLOW_VAR_SAGELIFT_PLATFORM`` environment variable (the sagelift_platform Variable's JSON). Per-run
names (training job, model, endpoint config) derive from ``--run-id``; a triggered run has its own.

Exit status: 0 with the plan printed, 2 when the conf or the platform is refused (the field and the
rule), 1 when the account cannot be reached or read (the step's message).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.bounded_json import parse_json_text
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.params import JSON_LIMITS, default_conf
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import parse_platform_variable
from sagelift.steps.clients import session_clients
from sagelift.steps.errors import StepFailed, StepRetry
from sagelift.steps.plan_changes import plan_changes
from sagelift.steps.role_chain import chained_session, check_identity, derive_session_name

DAG_ID = "sagemaker_deploy"
PLATFORM_ENV = ("SAGELIFT_PLATFORM", "AIRFLOW_VAR_SAGELIFT_PLATFORM")


def _read_json(path: str, what: str) -> str:
    file = Path(path)
    if file.stat().st_size > JSON_LIMITS.max_chars:
        raise SageliftValidationError.single(what, f"{path} is larger than {JSON_LIMITS.max_chars} bytes")
    return file.read_text()


def load_conf(path: str) -> dict[str, object]:
    """The conf file over the parameters' defaults, as a trigger merges them; read within the bounds of
    a conf's JSON parameters."""
    conf, problem = parse_json_text(_read_json(path, "conf"), JSON_LIMITS)
    if problem is not None or not isinstance(conf, dict):
        raise SageliftValidationError.single("conf", f"{path}: {problem or 'must be a JSON object'}")
    return {**default_conf(), **conf}


def load_platform(path: str | None) -> dict[str, object] | None:
    if path:
        return parse_platform_variable(_read_json(path, "platform"))
    text = next((os.environ[name] for name in PLATFORM_ENV if os.environ.get(name)), None)
    return parse_platform_variable(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("conf", help="JSON file with the run's conf, as you would trigger it")
    parser.add_argument("--platform", help="JSON file with the sagelift_platform Variable")
    parser.add_argument("--run-id", default="plan", help="the run id per-run names derive from")
    parser.add_argument("--user", help="check the account's deployers admit this Airflow user")
    parser.add_argument("--json", action="store_true", help="print the change set as JSON")
    args = parser.parse_args(argv)
    try:
        raw = build_plan(
            load_conf(args.conf), load_platform(args.platform), DAG_ID, args.run_id, triggered_by=args.user
        )
        plan = Plan.from_xcom(raw)
    except SageliftValidationError as err:
        print(f"plan: {err}", file=sys.stderr)
        return 2
    try:
        session = chained_session(
            plan.platform, plan.account_id, derive_session_name(DAG_ID, args.run_id, fallback="plan")
        )
        facts = check_identity(session.client("sts"), plan.platform, plan.account_id)
        print(f"Acting in account {facts['account_id']} as {facts['caller_arn']}.", file=sys.stderr)
        changes = plan_changes(plan, session_clients(session))
    except (StepFailed, StepRetry, ClientError, BotoCoreError) as err:
        print(f"plan: {err}", file=sys.stderr)
        return 1
    print(json.dumps(changes.to_xcom(), indent=2) if args.json else changes.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
