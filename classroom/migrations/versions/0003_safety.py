"""Safety records: the moderation audit log, lesson bans and incident reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Frozen like 0001 and 0002: written out in full rather than imported from classroom.tables.

Why the constraints:

* ``moderation_actions`` and ``incidents`` are append-only, like attendance: the triggers of
  0002 (the PostgreSQL function ``lophoc_refuse_change`` is reused) refuse UPDATE and DELETE, so
  who removed whom, and what a child reported, cannot be rewritten afterwards. The action and
  the category are CHECKed against the lists the code knows.
* ``lesson_bans`` rows are updated once, when a ban is lifted (``lifted_at``, ``lifted_by``); the
  audit log keeps the ban and the lift as two rows that never change.
* No ON DELETE CASCADE anywhere: deleting a lesson never silently deletes its safety records.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_APPEND_ONLY = ("moderation_actions", "incidents")
_ACTIONS = (
    "admit",
    "deny",
    "remove",
    "ban",
    "unban",
    "mute",
    "stop_video",
    "ask_unmute",
    "make_moderator",
    "revoke_moderator",
    "lock",
    "unlock",
    "set_permissions",
    "set_waiting_room",
    "chat_off",
    "chat_on",
    "delete_message",
    "lower_hand",
    "end_lesson",
)
_CATEGORIES = ("intruder", "harassment", "inappropriate", "technical", "other")
_ROLES = ("teacher", "moderator", "student", "guest")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "moderation_actions",
        sa.Column("id", _EVENT_ID, nullable=False, autoincrement=True),
        sa.Column("lesson_id", sa.String(36), nullable=False),
        _time("at"),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("actor_participant_id", sa.String(64), nullable=False),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_participant_id", sa.String(64), nullable=True),
        sa.Column("target_name", sa.String(64), nullable=True),
        sa.Column("target_role", sa.String(16), nullable=True),
        sa.Column("target_roster_entry_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_moderation_actions"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_moderation_actions_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["target_roster_entry_id"],
            ["roster_entries.id"],
            name="fk_moderation_actions_target_roster_entry_id_roster_entries",
        ),
        sa.CheckConstraint(_in("action", _ACTIONS), name="ck_moderation_actions_action"),
        sa.CheckConstraint(_in("actor_role", _ROLES), name="ck_moderation_actions_actor_role"),
    )
    op.create_index("ix_moderation_actions_lesson_id", "moderation_actions", ["lesson_id", "id"])
    op.create_table(
        "lesson_bans",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("lesson_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("roster_entry_id", sa.String(36), nullable=True),
        sa.Column("device_digest", sa.String(64), nullable=True),
        _time("banned_at"),
        sa.Column("banned_by", sa.String(64), nullable=False),
        _time("lifted_at", nullable=True),
        sa.Column("lifted_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lesson_bans"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_lesson_bans_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["roster_entry_id"],
            ["roster_entries.id"],
            name="fk_lesson_bans_roster_entry_id_roster_entries",
        ),
    )
    op.create_index("ix_lesson_bans_lesson_id", "lesson_bans", ["lesson_id", "banned_at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("lesson_id", sa.String(36), nullable=False),
        _time("at"),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("reporter_participant_id", sa.String(64), nullable=False),
        sa.Column("reporter_name", sa.String(64), nullable=False),
        sa.Column("reporter_role", sa.String(16), nullable=False),
        sa.Column("reporter_roster_entry_id", sa.String(36), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_incidents_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["reporter_roster_entry_id"],
            ["roster_entries.id"],
            name="fk_incidents_reporter_roster_entry_id_roster_entries",
        ),
        sa.CheckConstraint(_in("category", _CATEGORIES), name="ck_incidents_category"),
    )
    op.create_index("ix_incidents_lesson_id", "incidents", ["lesson_id", "at"])
    op.create_index("ix_incidents_at", "incidents", ["at"])
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("incidents")
    op.drop_table("lesson_bans")
    op.drop_table("moderation_actions")


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in _APPEND_ONLY:  # lophoc_refuse_change() comes from revision 0002
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION lophoc_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION lophoc_refuse_change()"
            )
        return
    for table in _APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _drop_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        return
    for table in _APPEND_ONLY:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
