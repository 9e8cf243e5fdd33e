"""Trigram indexes for search on PostgreSQL (``queries._matching``).

Search matches a substring of project names and release summaries and keywords; without
these, PostgreSQL reads every project and release for each query, so search slows down in
proportion to the index. The expressions are exactly those Django writes for ``icontains``
(``UPPER(col::text) LIKE UPPER(%s)``), which a ``gin_trgm_ops`` index serves. SQLite has no
such index: nothing is done there.

pg_trgm is a trusted extension (PostgreSQL 13 and later): the database's owner may create
it. A role that may not is told so, and search stays correct, only unindexed.
"""

from django.db import migrations

INDEXES = {
    "packaging_project_name_trgm": ("packaging_project", "name"),
    "packaging_project_normalized_name_trgm": ("packaging_project", "normalized_name"),
    "packaging_release_summary_trgm": ("packaging_release", "summary"),
    "packaging_release_keywords_trgm": ("packaging_release", "keywords"),
}


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                cursor.execute("SAVEPOINT bastion_trgm")
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cursor.execute("RELEASE SAVEPOINT bastion_trgm")
            except Exception as exc:  # the role may not create extensions
                cursor.execute("ROLLBACK TO SAVEPOINT bastion_trgm")
                print(f"\n  pg_trgm could not be created ({str(exc).strip()}): search works "
                      "unindexed until a superuser creates it and this migration runs again "
                      "(docs/deploy.md, PostgreSQL).")
                return
        for name, (table, column) in INDEXES.items():
            cursor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                           f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("packaging", "0009_file_holds")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
