"""Alembic, driven from code so `seamline db upgrade` works from an installed package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection, make_url

from seamline.core.db import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def head_revision() -> str | None:
    found = heads()
    return found[0] if len(found) == 1 else None


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database).expanduser()


def describe(database_url: str) -> str:
    """Where a database is, for messages: a SQLite file's absolute path, else the URL without its password."""
    path = sqlite_path(database_url)
    return str(path.resolve()) if path else make_url(normalize_url(database_url)).render_as_string(hide_password=True)


def schema_problem(database_url: str) -> str | None:
    """Why a command cannot use this database yet, as one line that names the command to run
    (missing, empty, an older or a newer schema, unreachable); None when it is at the head.
    Creates nothing: a missing SQLite file stays missing."""
    where = describe(database_url)
    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        return (f"no database at {where}: run `seamline db upgrade` to create it, or `seamline demo` for one with "
                "demo data (or point SEAMLINE_DATABASE_URL or --database-url at another)")
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
            tables = [] if current else inspect(connection).get_table_names()
    except Exception as exc:  # noqa: BLE001 - any failure: say it in one line
        return f"cannot open the database at {where}: {str(exc).splitlines()[0][:300]}"
    finally:
        engine.dispose()
    if current is None:
        if tables:
            return (f"the database at {where} has tables but no Seamline migration recorded: it is not Seamline's, "
                    "or was not made by `seamline db upgrade`")
        return f"the database at {where} has no tables: run `seamline db upgrade`, or `seamline demo` for demo data"
    head = head_revision()
    if current == head or head is None:
        return None
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    if current not in {r.revision for r in script.walk_revisions()}:
        return (f"the database at {where} is at migration {current}, which this Seamline does not know "
                "(a newer version migrated it): use that version")
    return f"the database at {where} is at migration {current}, this Seamline needs {head}: run `seamline db upgrade`"
