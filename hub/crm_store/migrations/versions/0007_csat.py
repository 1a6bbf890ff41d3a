"""csat: the customer's rating of an interaction

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("csat_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("csat_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("rated_at")
        batch.drop_column("csat_comment")
        batch.drop_column("csat_score")
