"""follow-up of the plan: official answers to actions, progress, follow-up questionnaires

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:57:13.064386
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followupround",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("opened_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consultation_id", "number"),
    )
    with op.batch_alter_table("followupround", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followupround_consultation_id"), ["consultation_id"], unique=False
        )

    op.create_table(
        "actiondecision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("wording", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lead", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("status_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue_reminded_for", sa.Date(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["action_id"], ["action.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["participant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action_id"),
    )
    with op.batch_alter_table("actiondecision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_actiondecision_consultation_id"), ["consultation_id"], unique=False
        )

    op.create_table(
        "followupanswer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("remark", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["action_id"], ["action.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
        ),
        sa.ForeignKeyConstraint(["round_id"], ["followupround.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("round_id", "participant_id", "action_id"),
    )
    with op.batch_alter_table("followupanswer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followupanswer_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_followupanswer_round_id"), ["round_id"], unique=False)

    op.create_table(
        "planevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["action_id"], ["action.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["participant.id"],
        ),
        sa.ForeignKeyConstraint(["consultation_id"], ["consultation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("planevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_planevent_action_id"), ["action_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_planevent_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_planevent_consultation_id"), ["consultation_id"], unique=False
        )

    op.create_table(
        "actionmilestone",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("done_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["actiondecision.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("decision_id", "position"),
    )
    with op.batch_alter_table("actionmilestone", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_actionmilestone_decision_id"), ["decision_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("actionmilestone", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actionmilestone_decision_id"))

    op.drop_table("actionmilestone")
    with op.batch_alter_table("planevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_planevent_consultation_id"))
        batch_op.drop_index(batch_op.f("ix_planevent_at"))
        batch_op.drop_index(batch_op.f("ix_planevent_action_id"))

    op.drop_table("planevent")
    with op.batch_alter_table("followupanswer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followupanswer_round_id"))
        batch_op.drop_index(batch_op.f("ix_followupanswer_participant_id"))

    op.drop_table("followupanswer")
    with op.batch_alter_table("actiondecision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actiondecision_consultation_id"))

    op.drop_table("actiondecision")
    with op.batch_alter_table("followupround", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followupround_consultation_id"))

    op.drop_table("followupround")
