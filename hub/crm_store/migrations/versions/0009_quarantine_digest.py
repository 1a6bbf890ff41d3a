"""quarantine digest: a quarantined message is known by its content, not its UID

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_quarantine") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(op.f("uq_email_quarantine_digest"), ["mailbox", "digest"])


def downgrade() -> None:
    with op.batch_alter_table("email_quarantine") as batch:
        batch.drop_constraint(op.f("uq_email_quarantine_digest"), type_="unique")
        batch.drop_column("digest")
