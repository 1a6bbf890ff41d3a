"""Roles, what each may do, and the authenticated caller (the principal)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.errors import Forbidden


class Role(StrEnum):
    """What a user is in the contact centre."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MARKETER = "marketer"
    ADMIN = "admin"


class Permission(StrEnum):
    """Things a route or service may require of the caller."""

    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    TIMELINE_READ = "timeline:read"
    NOTES_WRITE = "notes:write"
    CUSTOMERS_MERGE = "customers:merge"
    CUSTOMERS_UNMERGE = "customers:unmerge"
    INBOUND_PUSH = "inbound:push"
    AUDIT_READ = "audit:read"
    METRICS_READ = "metrics:read"
    USERS_MANAGE = "users:manage"
    WORK_TAKE = "work:take"
    QUEUES_READ = "queues:read"
    AGENTS_READ = "agents:read"
    AGENTS_MANAGE = "agents:manage"
    ROUTING_MANAGE = "routing:manage"
    CHANNELS_MANAGE = "channels:manage"  # channel settings: numbers, mailboxes, IVR, greetings
    CALLS_MONITOR = "calls:monitor"  # listen to, whisper to, barge into agents' calls


P = Permission
_AGENT = {
    P.CUSTOMERS_READ,
    P.CUSTOMERS_WRITE,
    P.TIMELINE_READ,
    P.NOTES_WRITE,
    P.CUSTOMERS_MERGE,
    P.WORK_TAKE,
    P.QUEUES_READ,
}
_SUPERVISOR = _AGENT | {
    P.CUSTOMERS_UNMERGE,
    P.INBOUND_PUSH,
    P.METRICS_READ,
    P.AGENTS_READ,
    P.AGENTS_MANAGE,
    P.CALLS_MONITOR,
}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset(_AGENT),
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    # Marketers build calling lists: they find customers but do not read conversations.
    Role.MARKETER: frozenset({P.CUSTOMERS_READ}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request or command."""

    user_id: int
    username: str
    role: Role
    team_ids: frozenset[int]

    @property
    def sees_everything(self) -> bool:
        """Admins see every customer; everybody else sees their teams' customers."""
        return self.role is Role.ADMIN

    def can(self, permission: Permission) -> bool:
        """Whether the role grants the permission."""
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        """Raise Forbidden unless the role grants the permission."""
        if not self.can(permission):
            raise Forbidden(f"a {self.role} may not {permission.value}", required=permission.value)
