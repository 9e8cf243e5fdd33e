"""bastion.sql builds the same instances and rows the ORM would, on either database."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from bastion import sql
from bastion.events.models import SecurityEvent
from bastion.packaging.models import Project, Release
from bastion.tokens.models import ApiToken
from bastion.tokens.services import create_token

from .packaging.support import new_project, new_user


def test_loaded_instances_equal_what_the_orm_returns(unique):
    owner = new_user("sql")
    project = new_project(owner, f"sql-{unique}", "1.0")
    loader = sql.Loader(Release)
    row = sql.first(f"SELECT {loader.columns('r')} FROM {Release._meta.db_table} r "
                    "WHERE r.project_id = %s", [project.pk])
    loaded = loader.load(row)
    expected = Release.objects.get(project=project)
    for field in Release._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert isinstance(loaded.classifiers, list) and timezone.is_aware(loaded.created)
    assert loaded.is_prerelease is False
    assert not loaded._state.adding


def test_uuid_keys_and_booleans_round_trip(unique):
    user = new_user("sqltok")
    _raw, token = create_token(user, description="sql")
    loader = sql.Loader(ApiToken)
    row = sql.first(f"SELECT {loader.columns('t')} FROM {ApiToken._meta.db_table} t "
                    "WHERE t.id = %s", [sql.db_value(ApiToken, "id", token.id)])
    loaded = loader.load(row)
    assert isinstance(loaded.id, uuid.UUID) and loaded.id == token.id
    assert loaded.caveats == ApiToken.objects.get(pk=token.id).caveats


def test_a_row_after_another_models_columns_is_loaded_from_its_offset(unique):
    owner = new_user("sqloff")
    project = new_project(owner, f"sqloff-{unique}")
    projects, releases = sql.Loader(Project), sql.Loader(Release)
    row = sql.first(f"SELECT {projects.columns('p')}, {releases.columns('r')} "
                    f"FROM {Project._meta.db_table} p JOIN {Release._meta.db_table} r "
                    "ON r.project_id = p.id WHERE p.id = %s", [project.pk])
    assert projects.load(row).name == project.name
    assert releases.load(row, projects.width).version == "1.0"


def test_inserted_rows_read_back_as_saved_by_the_orm():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)
    tag = f"test:sql:{uuid.uuid4().hex}"
    first = 10 ** 12 + uuid.uuid4().int % 10 ** 9 * 10
    events = [SecurityEvent(sequence=first + n, tag=tag,
                            time=when, additional={"n": n, "text": "zoë"}, previous_hash="0" * 64,
                            hash=f"{n:064d}") for n in range(3)]
    with transaction.atomic():
        sql.Inserter(SecurityEvent).insert(events)
        stored = list(SecurityEvent.objects.filter(tag=tag).order_by("sequence"))
        transaction.set_rollback(True)
    assert [(e.sequence, e.time, e.additional, e.hash) for e in stored] == \
        [(e.sequence, e.time, e.additional, e.hash) for e in events]


def test_greatest_and_row_locks_match_the_database():
    assert sql.first(f"SELECT {sql.greatest('%s', '%s')}", [3, 7])[0] == 7
    with transaction.atomic():
        # The locking suffix must be valid SQL here, whatever the database.
        sql.rows(f"SELECT id FROM {Project._meta.db_table} p WHERE p.id = %s"
                 + sql.for_update(of="p"), [0])


def test_reads_answer_the_same_with_and_without_the_sqlite_short_way(unique):
    owner = new_user("sqlway")
    project = new_project(owner, f"sqlway-{unique}")
    statement = (f"SELECT name, last_serial FROM {Project._meta.db_table} "
                 "WHERE normalized_name = %s AND name LIKE '%%'")
    short = sql.first(statement, [project.normalized_name])
    seen = []

    def record(execute, sql_text, params, many, context):
        seen.append(sql_text)
        return execute(sql_text, params, many, context)

    with connection.execute_wrapper(record):
        usual = sql.first(statement, [project.normalized_name])
    assert short == usual == (project.name, project.last_serial)
    assert seen == [statement]  # with a wrapper installed, statements go through Django


def test_added_rows_get_their_key_and_read_back_as_saved_by_the_orm(unique):
    owner = new_user("sqladd")
    project = new_project(owner, f"sqladd-{unique}", "1.0")
    template = Release.objects.get(project=project)
    values = {f.attname: getattr(template, f.attname) for f in Release._meta.concrete_fields
              if not f.primary_key}
    with transaction.atomic():
        added = Release(**{**values, "version": "2.0", "canonical_version": "2"})
        sql.Inserter(Release).add(added)
        saved = Release(**{**values, "version": "3.0", "canonical_version": "3"})
        saved.save()
        assert isinstance(added.pk, int) and not added._state.adding
        reread = {r.version: r for r in Release.objects.filter(pk__in=[added.pk, saved.pk])}
        transaction.set_rollback(True)
    for field in Release._meta.concrete_fields:
        if field.name in ("id", "version", "canonical_version"):
            continue
        assert getattr(reread["2.0"], field.attname) == getattr(reread["3.0"], field.attname), field.name


def test_writes_count_rows_the_same_with_and_without_the_sqlite_short_way(unique):
    owner = new_user("sqlexec")
    project = new_project(owner, f"sqlexec-{unique}")
    statement = f"UPDATE {Project._meta.db_table} SET last_serial = last_serial WHERE id IN (%s, %s)"
    short = sql.execute(statement, [project.pk, 0])
    with connection.execute_wrapper(lambda execute, *args: execute(*args)):
        usual = sql.execute(statement, [project.pk, 0])
    assert short == usual == 1


def test_on_sqlite_statements_go_past_djangos_cursor_wrapper(unique, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("the short way is SQLite's only")
    owner = new_user("sqlpast")
    project = new_project(owner, f"sqlpast-{unique}")

    def no_django_cursor(*args, **kwargs):
        raise AssertionError("went through Django's cursor wrapper")

    monkeypatch.setattr(connections[DEFAULT_DB_ALIAS], "cursor", no_django_cursor)
    assert sql.first(f"SELECT name FROM {Project._meta.db_table} WHERE id = %s",
                     [project.pk]) == (project.name,)
    assert sql.execute(f"UPDATE {Project._meta.db_table} SET last_serial = last_serial "
                       "WHERE id = %s", [project.pk]) == 1
