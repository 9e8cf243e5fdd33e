from django.db import migrations, models

SERIAL_SEQUENCE = "events_serial_seq"


def create_serial_sequence(apps, schema_editor):
    # PostgreSQL hands out serials from a sequence, so that no change waits on another for
    # one; SQLite serialises writers anyway and keeps counting in the index state row.
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SERIAL_SEQUENCE}")
        cursor.execute(
            "SELECT setval(%s, "
            "COALESCE((SELECT last_serial FROM events_index_state WHERE id = 1), 0) + 1, false)",
            [SERIAL_SEQUENCE])


def drop_serial_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP SEQUENCE IF EXISTS {SERIAL_SEQUENCE}")


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="securityevent",
            name="sequence",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="securityevent",
            name="previous_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="securityevent",
            name="hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="securityevent",
            name="serial",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(create_serial_sequence, drop_serial_sequence),
    ]
