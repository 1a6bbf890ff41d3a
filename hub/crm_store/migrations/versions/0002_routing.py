"""routing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:47:50.478844
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "agent_profiles",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "skills",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "languages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "capacity",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_profiles")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("abandoned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_interactions_queue_abandoned", ["queue_id", "abandoned_at"], unique=False
        )
        batch_op.create_index(
            "ix_interactions_queue_answered", ["queue_id", "answered_at"], unique=False
        )
        batch_op.create_index(
            "ix_interactions_queue_closed", ["queue_id", "closed_at"], unique=False
        )
        batch_op.create_index(
            "ix_interactions_queue_queued", ["queue_id", "queued_at"], unique=False
        )
        batch_op.create_index("ix_interactions_state", ["state"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_state")
        batch_op.drop_index("ix_interactions_queue_queued")
        batch_op.drop_index("ix_interactions_queue_closed")
        batch_op.drop_index("ix_interactions_queue_answered")
        batch_op.drop_index("ix_interactions_queue_abandoned")
        batch_op.drop_column("abandoned_at")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("queued_at")
        batch_op.drop_column("priority")

    op.drop_table("agent_profiles")
