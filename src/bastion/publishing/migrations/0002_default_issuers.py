from django.db import migrations
from django.utils import timezone

# The public CI issuers PyPI trusts too: usable without configuration.
DEFAULTS = [
    ("github", "github", "https://token.actions.githubusercontent.com"),
    ("gitlab", "gitlab", "https://gitlab.com"),
    ("google", "google", "https://accounts.google.com"),
]


def add_defaults(apps, schema_editor):
    Issuer = apps.get_model("publishing", "Issuer")
    for name, kind, url in DEFAULTS:
        if not Issuer.objects.filter(url=url).exists():
            Issuer.objects.create(name=name, kind=kind, url=url, created=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("publishing", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
