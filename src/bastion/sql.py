"""Hand-written SQL for the statements on the hottest paths (upload and index reads).

Django compiles every QuerySet anew, and on the 2-core machines Bastion is measured on that
costs 0.4–0.8 ms of Python per statement, ten to twenty times what SQLite or PostgreSQL need
for the indexed lookup itself (``bench/profile_upload.py`` shows it). An upload runs a few
dozen statements, so the upload path keeps its reads and its small writes here, in plain SQL
both databases accept; everything else uses the ORM. Model instances, where wanted, are
built by :class:`Loader` with the same field converters and ``Model.from_db`` a QuerySet uses.
"""

from __future__ import annotations

import functools
import re
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connection, connections

# Django's SQLite placeholder rule: %s becomes ?, %% becomes %.
_FORMAT_PLACEHOLDER = re.compile(r"(?<!%)%s")
_qmark_statements: dict[str, str] = {}


def _db():
    # The connection object itself: every attribute read through ``django.db.connection`` is
    # a lookup in asgiref's context-local storage, and a statement here reads a dozen.
    return connections[DEFAULT_DB_ALIAS]


def _sqlite_short_way(db) -> bool:
    # Query logging (DEBUG) and execute wrappers (profilers) keep the usual way.
    return db.vendor == "sqlite" and not db.execute_wrappers and not db.queries_logged


def _qmark(sql: str) -> str:
    statement = _qmark_statements.get(sql)
    if statement is None:
        statement = _FORMAT_PLACEHOLDER.sub("?", sql).replace("%%", "%")
        _qmark_statements[sql] = statement
    return statement


class _SQLiteCursor:
    """sqlite3 itself, taking Django's ``%s`` placeholders (the short way, see ``_cursor``)."""

    def __init__(self, sqlite_connection):
        self._connection = sqlite_connection
        self._cursor = None

    def execute(self, sql: str, params) -> None:
        self._cursor = self._connection.execute(_qmark(sql), tuple(params))

    def executemany(self, sql: str, param_list) -> None:
        self._cursor = self._connection.executemany(_qmark(sql), param_list)

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


@contextmanager
def _cursor():
    db = _db()
    if _sqlite_short_way(db):
        # Straight to sqlite3, past Django's cursor wrapper (which costs more than an indexed
        # lookup); errors are still Django's.
        db.ensure_connection()
        with db.wrap_database_errors:
            yield _SQLiteCursor(db.connection)
        return
    with db.cursor() as cursor:
        yield cursor


def rows(sql: str, params=()) -> list[tuple]:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        # All of them: fetchall() leaves no read snapshot open on SQLite.
        return cursor.fetchall()


def first(sql: str, params=()) -> tuple | None:
    found = rows(sql, params)
    return found[0] if found else None


def execute(sql: str, params=()) -> int:
    """Run a write statement; the number of rows it changed."""
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


class Loader:
    """Builds instances of one model from hand-selected rows.

    ``columns(alias)`` is the select list to put in the SQL; ``load(row, offset)`` turns that
    slice of a result row into an instance, converting values exactly as the ORM would (the
    converters are looked up once, not per query as ``Model.objects.raw()`` does).
    """

    def __init__(self, model):
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters = None

    def columns(self, alias: str) -> str:
        return ", ".join(f'{alias}."{field.column}"' for field in self.fields)

    @property
    def width(self) -> int:
        return len(self.fields)

    def _converters_for_connection(self):
        if self._converters is None:
            converters = []
            for field in self.fields:
                column = field.get_col(self.model._meta.db_table)
                found = (connection.ops.get_db_converters(column)
                         + column.get_db_converters(connection))
                converters.append((column, tuple(found)))
            self._converters = converters
        return self._converters

    def load(self, row, offset: int = 0):
        db = _db()
        values = list(row[offset:offset + len(self.fields)])
        for index, (column, converters) in enumerate(self._converters_for_connection()):
            for converter in converters:
                values[index] = converter(values[index], column, db)
        return self.model.from_db(db.alias, self.attnames, values)


class _NotPlain:
    """A type no value has: the value always goes through get_db_prep_save."""


_PLAIN_TYPES = {
    "CharField": str, "TextField": str, "EmailField": str, "SlugField": str, "URLField": str,
    "AutoField": int, "BigAutoField": int, "IntegerField": int, "BigIntegerField": int,
    "SmallIntegerField": int, "PositiveIntegerField": int, "PositiveBigIntegerField": int,
    "PositiveSmallIntegerField": int, "BooleanField": bool,
}


class Inserter:
    """Inserts new instances of one model, values prepared exactly as ``save()`` would.

    ``save()`` and ``bulk_create`` spend 0.3–1 ms of Python per row deciding between insert
    and update, sending signals and planning batches; an upload inserts a handful of rows
    whose shape never changes. No signal is sent: a caller inserting a model with receivers
    does their work itself (the mail queue sets what DBTaskResult's pre_save would).
    """

    def __init__(self, model):
        self.model = model
        # The database numbers auto-increment keys; a key with a Python default (a UUID) is
        # written like any other column, as save() does.
        self.fields = [f for f in model._meta.concrete_fields
                       if not (f.primary_key and f.db_returning)]
        columns = ", ".join(f'"{f.column}"' for f in self.fields)
        placeholders = ", ".join(["%s"] * len(self.fields))
        self.statement = f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES ({placeholders})'
        self.returning = f'{self.statement} RETURNING "{model._meta.pk.column}"'

    def _values(self, instance) -> list:
        db = _db()
        values = []
        for field, plain_type in self._fields_and_plain_types:
            value = field.pre_save(instance, True)
            if value is not None and type(value) is not plain_type:
                value = field.get_db_prep_save(value, db)
            values.append(value)
        return values

    @functools.cached_property
    def _fields_and_plain_types(self) -> list[tuple]:
        # For these fields a value of exactly this type (or None) is already what the
        # database takes, and get_db_prep_save would spend ~10 µs per field confirming it.
        plain = []
        for field in self.fields:
            kind = field.get_internal_type()
            if kind == "ForeignKey":
                kind = field.target_field.get_internal_type()
            plain.append((field, _PLAIN_TYPES.get(kind, _NotPlain)))
        return plain

    def insert(self, instances: list) -> None:
        """Insert rows nobody needs the primary keys of (e.g. security events)."""
        values = [self._values(instance) for instance in instances]
        with _cursor() as cursor:
            cursor.executemany(self.statement, values)

    def add(self, instance) -> None:
        """Insert one new row and give ``instance`` its primary key, as ``save()`` would."""
        ((pk,),) = rows(self.returning, self._values(instance))
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS


def for_update(of: str = "") -> str:
    """The row-locking suffix where the database has one.

    SQLite has none and needs none: Bastion's write transactions there begin IMMEDIATE, so
    they already run one at a time.
    """
    if not connection.features.has_select_for_update:
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def db_value(model, field_name: str, value):
    """``value`` as the database stores ``model.field_name`` (UUIDs are text on SQLite)."""
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)


def greatest(*expressions: str) -> str:
    return ("MAX(" if connection.vendor == "sqlite" else "GREATEST(") + ", ".join(expressions) + ")"
