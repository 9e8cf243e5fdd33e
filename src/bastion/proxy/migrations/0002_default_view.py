from django.db import migrations
from django.utils import timezone


def create_default_view(apps, schema_editor):
    View = apps.get_model("proxy", "View")
    now = timezone.now()
    # An empty policy: the cooldown comes from settings.PROXY_COOLDOWN_HOURS until an admin
    # sets one on the view.
    View.objects.get_or_create(name="default", defaults={
        "description": "What /simple/ serves.", "policy": {}, "created": now, "updated": now})


class Migration(migrations.Migration):
    dependencies = [("proxy", "0001_initial")]
    operations = [migrations.RunPython(create_default_view, migrations.RunPython.noop)]
