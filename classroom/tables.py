"""The SQL schema of every durable record, as SQLAlchemy Core tables.

This module is the schema as the *code* sees it; ``classroom/migrations`` is the schema as the
*database* gets it. A test compares the two after migrating an empty database, so they cannot
drift apart. Both backends (SQLite, PostgreSQL) get the same tables, constraints and indexes.

Tables (see the migrations for why each constraint exists):

* ``lessons`` — ad-hoc lessons (code + password) and class lessons (also ``class_id``,
  ``teacher_id``, ``scheduled_start``, ``scheduled_end``).
* ``users``, ``user_sessions`` — administrators and teachers; login sessions by token hash.
* ``classes``, ``class_teachers``, ``roster_entries`` — the school's classes, who teaches
  them, and their students.
* ``join_links`` — personal join links (the random id only: the token is derived with the
  server secret, so the database alone cannot produce a working link when the secret is
  configured outside it).
* ``attendance_events`` — the append-only attendance log (triggers refuse UPDATE and DELETE).
* ``node_heartbeats`` — each node's last heartbeat, for closing intervals after a crash.
* ``lesson_reports`` — frozen reports and their SHA-256 content hashes (append-only too).
* ``server_secrets`` — secrets generated on first start (the join-link key).
* ``moderation_actions`` — the audit log of moderation actions (append-only).
* ``lesson_bans`` — who may not come back into a lesson (by roster entry or device key).
* ``incidents`` — participants' reports of problems, with their context (append-only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from classroom.safety import Action, IncidentCategory


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type and hands back naive datetimes; storing UTC and re-attaching
    the zone on the way out means the domain only ever sees aware UTC values, whatever the
    database.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only gives an auto-incrementing rowid to a column declared exactly INTEGER.
EventId: Final = BigInteger().with_variant(Integer(), "sqlite")

ATTENDANCE_KINDS: Final = (
    "joined",
    "left",
    "reconnected",
    "replaced",
    "removed",
    "admitted",
    "denied",
)
PARTICIPANT_ROLES: Final = ("teacher", "moderator", "student")
USER_ROLES: Final = ("admin", "teacher")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


lessons = Table(
    "lessons",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("teacher_token_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("ended_at", UTCDateTime(timezone=True), nullable=True),
    Column("class_id", String(36), ForeignKey("classes.id"), nullable=True),
    Column("teacher_id", String(36), ForeignKey("users.id"), nullable=True),
    Column("scheduled_start", UTCDateTime(timezone=True), nullable=True),
    Column("scheduled_end", UTCDateTime(timezone=True), nullable=True),
    UniqueConstraint("code"),
    UniqueConstraint("teacher_token_hash"),
    CheckConstraint(
        "class_id IS NULL OR (scheduled_start IS NOT NULL AND scheduled_end IS NOT NULL"
        " AND scheduled_end > scheduled_start)",
        name="schedule",
    ),
    Index("ix_lessons_class_schedule", "class_id", "scheduled_start"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(32), nullable=False),
    Column("full_name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("disabled_at", UTCDateTime(timezone=True), nullable=True),
    UniqueConstraint("username"),
    CheckConstraint(_in("role", USER_ROLES), name="role"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("expires_at", UTCDateTime(timezone=True), nullable=False),
    Index("ix_user_sessions_user_id", "user_id"),
    Index("ix_user_sessions_expires_at", "expires_at"),
)

classes = Table(
    "classes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    UniqueConstraint("name"),
)

class_teachers = Table(
    "class_teachers",
    metadata,
    Column("class_id", String(36), ForeignKey("classes.id"), nullable=False),
    Column("teacher_id", String(36), ForeignKey("users.id"), nullable=False),
    PrimaryKeyConstraint("class_id", "teacher_id"),
    Index("ix_class_teachers_teacher_id", "teacher_id"),
)

roster_entries = Table(
    "roster_entries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("class_id", String(36), ForeignKey("classes.id"), nullable=False),
    Column("student_code", String(32), nullable=False),
    Column("full_name", String(64), nullable=False),
    Column("parent_contact", String(200), nullable=True),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True),
    UniqueConstraint("class_id", "student_code", name="uq_roster_entries_class_code"),
)

join_links = Table(
    "join_links",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("lesson_id", String(36), ForeignKey("lessons.id"), nullable=False),
    Column("roster_entry_id", String(36), ForeignKey("roster_entries.id"), nullable=False),
    Column("issued_at", UTCDateTime(timezone=True), nullable=False),
    Column("expires_at", UTCDateTime(timezone=True), nullable=False),
    Column("revoked_at", UTCDateTime(timezone=True), nullable=True),
    Column("revoked_by", String(36), ForeignKey("users.id"), nullable=True),
    Index("ix_join_links_lesson_id", "lesson_id"),
    # At most one live (unrevoked) link per student and lesson; revoked ones stay as history.
    Index(
        "uq_join_links_live",
        "lesson_id",
        "roster_entry_id",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

attendance_events = Table(
    "attendance_events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("lesson_id", String(36), ForeignKey("lessons.id"), nullable=False),
    Column("participant_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("roster_entry_id", String(36), ForeignKey("roster_entries.id"), nullable=True),
    Column("guest", Boolean, nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("at", UTCDateTime(timezone=True), nullable=False),
    Column("recorded_at", UTCDateTime(timezone=True), nullable=False),
    Column("recovered", Boolean, nullable=False),
    CheckConstraint(_in("kind", ATTENDANCE_KINDS), name="kind"),
    CheckConstraint(_in("role", PARTICIPANT_ROLES), name="role"),
    CheckConstraint("NOT (guest AND roster_entry_id IS NOT NULL)", name="guest_or_roster"),
    Index("ix_attendance_events_lesson_at", "lesson_id", "at"),
    Index("ix_attendance_events_participant", "lesson_id", "participant_id", "id"),
    Index("ix_attendance_events_node", "node_id", "kind"),
    # One ``joined`` per participant: a retried join is recorded once
    # (tests/test_crash_recovery.py).
    Index(
        "uq_attendance_events_one_join",
        "lesson_id",
        "participant_id",
        unique=True,
        sqlite_where=text("kind = 'joined'"),
        postgresql_where=text("kind = 'joined'"),
    ),
)

node_heartbeats = Table(
    "node_heartbeats",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("last_heartbeat_at", UTCDateTime(timezone=True), nullable=False),
)

lesson_reports = Table(
    "lesson_reports",
    metadata,
    Column("lesson_id", String(36), ForeignKey("lessons.id"), primary_key=True),
    Column("closed_at", UTCDateTime(timezone=True), nullable=False),
    Column("closed_by", String(36), ForeignKey("users.id"), nullable=True),
    Column("last_event_id", EventId, nullable=True),
    Column("body", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
)

MODERATION_ACTIONS: Final = tuple(str(action) for action in Action)
INCIDENT_CATEGORIES: Final = tuple(str(category) for category in IncidentCategory)
LESSON_ROLES: Final = ("teacher", "moderator", "student", "guest")

moderation_actions = Table(
    "moderation_actions",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("lesson_id", String(36), ForeignKey("lessons.id"), nullable=False),
    Column("at", UTCDateTime(timezone=True), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("actor_participant_id", String(64), nullable=False),
    Column("actor_name", String(64), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_participant_id", String(64), nullable=True),
    Column("target_name", String(64), nullable=True),
    Column("target_role", String(16), nullable=True),
    Column("target_roster_entry_id", String(36), ForeignKey("roster_entries.id"), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    CheckConstraint(_in("action", MODERATION_ACTIONS), name="action"),
    CheckConstraint(_in("actor_role", LESSON_ROLES), name="actor_role"),
    Index("ix_moderation_actions_lesson_id", "lesson_id", "id"),
)

lesson_bans = Table(
    "lesson_bans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("lesson_id", String(36), ForeignKey("lessons.id"), nullable=False),
    Column("participant_id", String(64), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("roster_entry_id", String(36), ForeignKey("roster_entries.id"), nullable=True),
    Column("device_digest", String(64), nullable=True),
    Column("banned_at", UTCDateTime(timezone=True), nullable=False),
    Column("banned_by", String(64), nullable=False),
    Column("lifted_at", UTCDateTime(timezone=True), nullable=True),
    Column("lifted_by", String(64), nullable=True),
    Index("ix_lesson_bans_lesson_id", "lesson_id", "banned_at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("lesson_id", String(36), ForeignKey("lessons.id"), nullable=False),
    Column("at", UTCDateTime(timezone=True), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("reporter_participant_id", String(64), nullable=False),
    Column("reporter_name", String(64), nullable=False),
    Column("reporter_role", String(16), nullable=False),
    Column("reporter_roster_entry_id", String(36), ForeignKey("roster_entries.id"), nullable=True),
    Column("category", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("context", Text, nullable=False),
    CheckConstraint(_in("category", INCIDENT_CATEGORIES), name="category"),
    Index("ix_incidents_lesson_id", "lesson_id", "at"),
    Index("ix_incidents_at", "at"),
)

APPEND_ONLY_TABLES: Final = (
    "attendance_events",
    "lesson_reports",
    "moderation_actions",
    "incidents",
)
"""Tables whose rows, once written, the database itself refuses to change or delete."""
