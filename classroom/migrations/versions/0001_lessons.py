"""Lessons: code, title and the hashes of their password and teacher token.

Revision ID: 0001
Revises:
Create Date: 2025-11-24

Frozen: this describes the table as first shipped, independently of classroom.storage, so that
later changes to the code never rewrite history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lessons",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("teacher_token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lessons"),
        sa.UniqueConstraint("code", name="uq_lessons_code"),
        sa.UniqueConstraint("teacher_token_hash", name="uq_lessons_teacher_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("lessons")
