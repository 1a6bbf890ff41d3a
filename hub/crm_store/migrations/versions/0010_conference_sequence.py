"""conference sequence: conference events are applied in Twilio's order, not arrival's

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_legs") as batch:
        batch.add_column(sa.Column("conference_sequence", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_legs") as batch:
        batch.drop_column("conference_sequence")
