"""Reading JSON values inside SQL the same way on SQLite and PostgreSQL.

A JSON column (a trait's value) or a JSON text column (an event's payload) is read at a path
of object keys; `json_kind` says what is there (string, number, boolean, null, object, array,
or NULL when nothing is), `json_text` its text (a string without quotes, `true`, `12.5`) and
`json_number` its value when it is a number (NULL otherwise, never an error), so a rule such
as "spent more than 100" can never fail on a row whose value is a word.

    json_text(CustomerTrait.value) == "gold"
    json_number(EventRecord.payload, ("properties", "price"), text_column=True) > 100
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

#: Keys a path may hold: they are written into SQLite's path text, so nothing that could end it.
_SAFE_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-$ ")


def check_key(key: str) -> str:
    if not key or len(key) > 128 or not set(key) <= _SAFE_KEY:
        raise ValueError(f"a JSON key must be 1-128 letters, digits, spaces or _-$: {key!r}")
    return key


class _JsonAt(FunctionElement):
    #: Not cached: the path is not one of the element's clauses, so a cached statement could
    #: carry another path (a statement holding one is compiled each time, ~1 ms).
    inherit_cache = False

    def __init__(self, column: Any, path: Sequence[str] = (), *, text_column: bool = False):
        self.path = tuple(check_key(k) for k in path)
        self.text_column = text_column
        super().__init__(column)

    @property
    def column(self) -> Any:
        return list(self.clauses)[0]


class json_kind(_JsonAt):  # noqa: N801 - reads like a SQL function
    inherit_cache = False
    type = String()
    name = "json_kind"


class json_text(_JsonAt):  # noqa: N801
    inherit_cache = False
    type = String()
    name = "json_text"


class json_number(_JsonAt):  # noqa: N801
    inherit_cache = False
    type = Float()
    name = "json_number"


def _pg_value(element: _JsonAt, compiler: Any, **kw: Any) -> str:
    """The JSON value at the path (PostgreSQL `json`)."""
    sql = compiler.process(element.column, **kw)
    if element.text_column:
        sql = f"CAST({sql} AS JSON)"
    for key in element.path:
        sql = f"({sql} -> {compiler.process(bindparam(None, key, type_=String()), **kw)})"
    return sql


def _pg_kind(value: str) -> str:
    return f"json_typeof({value})"


@compiles(json_kind, "postgresql")
def _kind_pg(element: json_kind, compiler: Any, **kw: Any) -> str:
    return _pg_kind(_pg_value(element, compiler, **kw))


@compiles(json_text, "postgresql")
def _text_pg(element: json_text, compiler: Any, **kw: Any) -> str:
    return f"({_pg_value(element, compiler, **kw)} #>> '{{}}')"


@compiles(json_number, "postgresql")
def _number_pg(element: json_number, compiler: Any, **kw: Any) -> str:
    value = _pg_value(element, compiler, **kw)
    return f"(CASE WHEN json_typeof({value}) = 'number' THEN CAST({value} #>> '{{}}' AS DOUBLE PRECISION) END)"


def _sqlite_args(element: _JsonAt, compiler: Any, **kw: Any) -> str:
    path = "$" + "".join(f'."{key}"' for key in element.path)
    return f"{compiler.process(element.column, **kw)}, '{path}'"


#: SQLite's json_type names, as PostgreSQL's json_typeof says them.
_SQLITE_KINDS = ("CASE json_type({args}) WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
                 "WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' ELSE json_type({args}) END")


@compiles(json_kind, "sqlite")
def _kind_sqlite(element: json_kind, compiler: Any, **kw: Any) -> str:
    return "(" + _SQLITE_KINDS.format(args=_sqlite_args(element, compiler, **kw)) + ")"


@compiles(json_text, "sqlite")
def _text_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    args = _sqlite_args(element, compiler, **kw)
    return (f"(CASE json_type({args}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL "
            f"ELSE CAST(json_extract({args}) AS TEXT) END)")


@compiles(json_number, "sqlite")
def _number_sqlite(element: json_number, compiler: Any, **kw: Any) -> str:
    args = _sqlite_args(element, compiler, **kw)
    return f"(CASE WHEN json_type({args}) IN ('integer', 'real') THEN CAST(json_extract({args}) AS REAL) END)"
