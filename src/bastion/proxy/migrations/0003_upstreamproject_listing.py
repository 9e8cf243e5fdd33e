from django.db import migrations, models
from packaging.version import InvalidVersion, Version


def _version_key(text):
    try:
        return (0, Version(text), "")
    except InvalidVersion:
        return (1, Version("0"), text)


def _stamp(value):
    return value.isoformat() if value is not None else None


def fill_listings(apps, schema_editor):
    """Pages cached before the listing document: their listed rows become it (the same keys
    as ``bastion.proxy.pages.listing_entry``; a migration cannot import the app's code)."""
    UpstreamProject = apps.get_model("proxy", "UpstreamProject")
    UpstreamFile = apps.get_model("proxy", "UpstreamFile")
    for page in UpstreamProject.objects.filter(found=True).iterator():
        rows = sorted(UpstreamFile.objects.filter(project=page, listed=True),
                      key=lambda f: (_version_key(f.version), f.filename))
        page.listing = [
            {"filename": f.filename, "version": f.version, "url": f.url, "sha256": f.sha256,
             "size": f.size, "upload_time": _stamp(f.upload_time),
             "first_seen": _stamp(f.first_seen), "requires_python": f.requires_python,
             "yanked": f.yanked, "yanked_reason": f.yanked_reason,
             "has_metadata": f.has_metadata, "metadata_sha256": f.metadata_sha256}
            for f in rows]
        page.save(update_fields=["listing"])


class Migration(migrations.Migration):
    dependencies = [("proxy", "0002_default_view")]
    operations = [
        migrations.AddField(model_name="upstreamproject", name="listing",
                            field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(fill_listings, migrations.RunPython.noop),
    ]
