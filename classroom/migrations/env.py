"""Alembic environment for lophoc's classroom tables.

Migrations run programmatically: ``classroom.storage.open_database`` opens a transaction and
hands its connection over in ``config.attributes["connection"]``, so migrating and the checks
around it (the PostgreSQL advisory lock, SQLite's ``BEGIN IMMEDIATE``) are one transaction.
There is no alembic.ini; to write a new revision, call ``alembic.command.revision`` with
``classroom.storage.alembic_config()`` (and a connection for ``autogenerate``). Offline mode
(``--sql``) renders the SQL for a DBA from the ``sqlalchemy.url`` option.
"""

from alembic import context

from classroom.storage import metadata

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "lophoc migrations run on a connection given by classroom.storage.open_database "
            "(or alembic_config(connection)); there is no URL-based online mode"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
