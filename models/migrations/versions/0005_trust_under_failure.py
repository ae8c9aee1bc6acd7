"""trust under failure: revoked invitations, forgotten addresses, stale messages

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_after", models.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "forgottenaddress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consultation_id", "digest"),
    )
    with op.batch_alter_table("forgottenaddress", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_forgottenaddress_consultation_id"), ["consultation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("forgottenaddress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forgottenaddress_consultation_id"))
    op.drop_table("forgottenaddress")
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.drop_column("not_after")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
