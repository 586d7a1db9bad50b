"""Trust-policy enforcement for the local AWS's AssumeRole, which moto 5.2.5 grants to anyone.

Without it a broken hop of the role chain could never be tested: moto hands out credentials for any
role ARN, existing or not. With ``install()`` applied, AssumeRole answers AccessDenied (403) as AWS
does unless the role exists and its trust policy allows the caller:

- ``Principal.AWS`` names the caller's user ARN, the role the caller assumed (for chained sessions),
  the caller's account (``arn:aws:iam::<id>:root`` or the bare id), or ``*``;
- a ``StringEquals`` condition on ``sts:ExternalId`` matches the request's ExternalId.

What it does not emulate: Deny statements, other condition keys and operators, service principals,
session policies, permission policies of the caller (any identity may call AssumeRole), and the one-hour
cap on role-chained session durations (moto honours any DurationSeconds).
"""

from __future__ import annotations

import json
from typing import Any


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return ["*"]
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    return [values] if isinstance(values, str) else list(values)


def _caller_matches(principal: str, caller_arn: str, caller_account: str) -> bool:
    if principal in ("*", caller_arn, caller_account, f"arn:aws:iam::{caller_account}:root"):
        return True
    # A chained session's caller is arn:aws:sts::<acct>:assumed-role/<name>/<session>: the trust policy
    # names the role, arn:aws:iam::<acct>:role/<name>.
    if ":assumed-role/" in caller_arn:
        role_name = caller_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
        return principal == f"arn:aws:iam::{caller_account}:role/{role_name}"
    return False


def _external_id_ok(statement: dict[str, Any], external_id: str | None) -> bool:
    expected = statement.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
    return expected is None or expected == external_id


def trusts(policy_document: str, caller_arn: str, caller_account: str, external_id: str | None) -> bool:
    policy = json.loads(policy_document)
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return any(
        s.get("Effect") == "Allow"
        and "sts:AssumeRole" in ([s["Action"]] if isinstance(s.get("Action"), str) else s.get("Action", []))
        and any(_caller_matches(p, caller_arn, caller_account) for p in _principals(s))
        and _external_id_ok(s, external_id)
        for s in statements
    )


def install() -> None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    if getattr(TokenResponse, "_sagelift_trust_enforced", False):
        return
    original = TokenResponse.assume_role

    def assume_role(self: Any) -> Any:
        role_arn = self._get_param("RoleArn") or ""
        _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
        role_account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        role = None
        if role_account in iam_backends:
            try:
                role = iam_backends[role_account]["aws"].get_role_by_arn(role_arn)
            except NotFoundException:
                role = None
        if role is None or not trusts(
            role.assume_role_policy_document, caller_arn, caller_account, self._get_param("ExternalId")
        ):
            raise STSClientError(
                "AccessDenied",
                f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return original(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
    TokenResponse._sagelift_trust_enforced = True  # type: ignore[attr-defined]
