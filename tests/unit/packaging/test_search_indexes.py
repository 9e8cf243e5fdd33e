"""Search reads only the matching rows on PostgreSQL: its conditions are those the trigram
indexes of packaging 0010 serve (bench/scale.py measures it at 100k projects)."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction

from bastion.packaging import queries

INDEXES = importlib.import_module(
    "bastion.packaging.migrations.0010_search_trigram_indexes").INDEXES


def test_every_condition_of_a_search_is_served_by_an_index_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes exist on PostgreSQL only")
    matches = queries._matching(queries.visible_projects(AnonymousUser()), "needle")
    sql, params = matches.order_by("rank", "normalized_name").query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # However small the test's tables, a plan that must read a whole table says so.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    for index in INDEXES:
        assert index in plan, plan
