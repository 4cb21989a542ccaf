"""Records: accounts, classes and rosters, class lessons, join links, attendance, reports.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25

Frozen like 0001: written out in full rather than imported from classroom.tables.

Why the constraints:

* ``lessons``: a class lesson has a schedule whose end is after its start (CHECK); ad-hoc
  lessons (``class_id`` NULL) keep working unchanged.
* ``join_links``: at most one *unrevoked* link per student and lesson (partial unique index);
  revoked links stay as the record of what was cut off.
* ``attendance_events`` and ``lesson_reports`` are append-only: triggers on both backends refuse
  UPDATE and DELETE (and TRUNCATE on PostgreSQL), so even a bug or a careless SQL session cannot
  rewrite who attended. One ``joined`` per participant (partial unique index) makes a retried
  join land once. Foreign keys have no ON DELETE CASCADE: deleting a lesson or a student
  never silently deletes their attendance.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_APPEND_ONLY = ("attendance_events", "lesson_reports")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("full_name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _time("created_at"),
        _time("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.CheckConstraint("role IN ('admin', 'teacher')", name="ck_users_role"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_user_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_sessions_user_id_users"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])
    op.create_table(
        "classes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_classes"),
        sa.UniqueConstraint("name", name="uq_classes_name"),
    )
    op.create_table(
        "class_teachers",
        sa.Column("class_id", sa.String(36), nullable=False),
        sa.Column("teacher_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("class_id", "teacher_id", name="pk_class_teachers"),
        sa.ForeignKeyConstraint(
            ["class_id"], ["classes.id"], name="fk_class_teachers_class_id_classes"
        ),
        sa.ForeignKeyConstraint(
            ["teacher_id"], ["users.id"], name="fk_class_teachers_teacher_id_users"
        ),
    )
    op.create_index("ix_class_teachers_teacher_id", "class_teachers", ["teacher_id"])
    op.create_table(
        "roster_entries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("class_id", sa.String(36), nullable=False),
        sa.Column("student_code", sa.String(32), nullable=False),
        sa.Column("full_name", sa.String(64), nullable=False),
        sa.Column("parent_contact", sa.String(200), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("withdrawn_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_roster_entries"),
        sa.ForeignKeyConstraint(
            ["class_id"], ["classes.id"], name="fk_roster_entries_class_id_classes"
        ),
        sa.UniqueConstraint("class_id", "student_code", name="uq_roster_entries_class_code"),
    )

    # SQLite cannot add a foreign key to an existing table: batch mode rebuilds it there, and
    # issues plain ALTER TABLE on PostgreSQL.
    with op.batch_alter_table("lessons") as batch:
        batch.add_column(sa.Column("class_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("teacher_id", sa.String(36), nullable=True))
        batch.add_column(_time("scheduled_start", nullable=True))
        batch.add_column(_time("scheduled_end", nullable=True))
        batch.create_foreign_key("fk_lessons_class_id_classes", "classes", ["class_id"], ["id"])
        batch.create_foreign_key("fk_lessons_teacher_id_users", "users", ["teacher_id"], ["id"])
        batch.create_check_constraint(
            "ck_lessons_schedule",
            "class_id IS NULL OR (scheduled_start IS NOT NULL AND scheduled_end IS NOT NULL"
            " AND scheduled_end > scheduled_start)",
        )
        batch.create_index("ix_lessons_class_schedule", ["class_id", "scheduled_start"])

    op.create_table(
        "join_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("lesson_id", sa.String(36), nullable=False),
        sa.Column("roster_entry_id", sa.String(36), nullable=False),
        _time("issued_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_join_links"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_join_links_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["roster_entry_id"],
            ["roster_entries.id"],
            name="fk_join_links_roster_entry_id_roster_entries",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["users.id"], name="fk_join_links_revoked_by_users"
        ),
    )
    op.create_index("ix_join_links_lesson_id", "join_links", ["lesson_id"])
    op.create_index(
        "uq_join_links_live",
        "join_links",
        ["lesson_id", "roster_entry_id"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )

    op.create_table(
        "attendance_events",
        sa.Column("id", _EVENT_ID, nullable=False, autoincrement=True),
        sa.Column("lesson_id", sa.String(36), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("roster_entry_id", sa.String(36), nullable=True),
        sa.Column("guest", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        _time("at"),
        _time("recorded_at"),
        sa.Column("recovered", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attendance_events"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_attendance_events_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["roster_entry_id"],
            ["roster_entries.id"],
            name="fk_attendance_events_roster_entry_id_roster_entries",
        ),
        sa.CheckConstraint(
            "kind IN ('joined', 'left', 'reconnected', 'replaced', 'removed', 'admitted',"
            " 'denied')",
            name="ck_attendance_events_kind",
        ),
        sa.CheckConstraint(
            "role IN ('teacher', 'moderator', 'student')", name="ck_attendance_events_role"
        ),
        sa.CheckConstraint(
            "NOT (guest AND roster_entry_id IS NOT NULL)",
            name="ck_attendance_events_guest_or_roster",
        ),
    )
    op.create_index("ix_attendance_events_lesson_at", "attendance_events", ["lesson_id", "at"])
    op.create_index(
        "ix_attendance_events_participant",
        "attendance_events",
        ["lesson_id", "participant_id", "id"],
    )
    op.create_index("ix_attendance_events_node", "attendance_events", ["node_id", "kind"])
    op.create_index(
        "uq_attendance_events_one_join",
        "attendance_events",
        ["lesson_id", "participant_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'joined'"),
        postgresql_where=sa.text("kind = 'joined'"),
    )

    op.create_table(
        "node_heartbeats",
        sa.Column("node_id", sa.String(64), nullable=False),
        _time("last_heartbeat_at"),
        sa.PrimaryKeyConstraint("node_id", name="pk_node_heartbeats"),
    )
    op.create_table(
        "lesson_reports",
        sa.Column("lesson_id", sa.String(36), nullable=False),
        _time("closed_at"),
        sa.Column("closed_by", sa.String(36), nullable=True),
        sa.Column("last_event_id", _EVENT_ID, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", name="pk_lesson_reports"),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name="fk_lesson_reports_lesson_id_lessons"
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["users.id"], name="fk_lesson_reports_closed_by_users"
        ),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_server_secrets"),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("server_secrets")
    op.drop_table("lesson_reports")
    op.drop_table("node_heartbeats")
    op.drop_table("attendance_events")
    op.drop_table("join_links")
    with op.batch_alter_table("lessons") as batch:
        batch.drop_index("ix_lessons_class_schedule")
        batch.drop_constraint("ck_lessons_schedule", type_="check")
        batch.drop_constraint("fk_lessons_teacher_id_users", type_="foreignkey")
        batch.drop_constraint("fk_lessons_class_id_classes", type_="foreignkey")
        batch.drop_column("scheduled_end")
        batch.drop_column("scheduled_start")
        batch.drop_column("teacher_id")
        batch.drop_column("class_id")
    op.drop_table("roster_entries")
    op.drop_table("class_teachers")
    op.drop_table("classes")
    op.drop_table("user_sessions")
    op.drop_table("users")


def _create_append_only_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION lophoc_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
        for table in _APPEND_ONLY:
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
        op.execute("DROP FUNCTION IF EXISTS lophoc_refuse_change()")
        return
    for table in _APPEND_ONLY:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
