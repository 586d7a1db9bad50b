"""Kept for deployments configured with ``[aws] session_factory = sagelift.hooks.sts.RoleChainSessionFactory``.

The factory lives in ``sagelift.hooks.session_factory``; the chain's core in ``sagelift.steps.role_chain``.
"""

from __future__ import annotations

from sagelift.hooks.session_factory import RoleChainSessionFactory
from sagelift.steps.role_chain import RoleChainError, RoleChainUnavailable, derive_session_name

__all__ = ["RoleChainError", "RoleChainSessionFactory", "RoleChainUnavailable", "derive_session_name"]
