"""The console's overview (``/admin/``): the settings that matter, at a glance.

Read-only: policies, where data lives (never a password), the mail and task queues, counts,
and whether the security event chain verifies.
"""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from bastion.accounts import notifications, signup
from bastion.accounts.models import User
from bastion.events.services import chain_state
from bastion.packaging import reports
from bastion.packaging.models import File, Project
from bastion.proxy import holds

from .access import console_view


def _storage() -> str:
    if settings.STORAGE_BACKEND == "s3":
        if settings.S3_ENDPOINT_URL:
            return _("S3 bucket {bucket} at {endpoint} ({region})").format(
                bucket=settings.S3_BUCKET, endpoint=settings.S3_ENDPOINT_URL,
                region=settings.S3_REGION)
        return _("S3 bucket {bucket} ({region})").format(bucket=settings.S3_BUCKET,
                                                         region=settings.S3_REGION)
    return _("local directory {path}").format(path=settings.STORAGE_DIR)


def _database() -> str:
    db = settings.DATABASES["default"]
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"SQLite {db['NAME']}"
    # Host, port and name only: never the user's password.
    host = db.get("HOST") or _("local socket")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return _("PostgreSQL {name} on {host}").format(name=db["NAME"], host=f"{host}{port}")


def _base_url() -> str:
    parsed = urlparse(settings.BASE_URL)  # validated without user or password (settings)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"


@console_view
@require_safe
def index(request):
    chain = chain_state().report
    context = {
        "area": "overview",
        "policies": [
            (_("Read policy"), settings.READ_POLICY, "BASTION_READ_POLICY"),
            (_("Sign-up"), settings.SIGNUP + (f" ({signup.domains_text()})"
                                           if settings.SIGNUP == signup.DOMAIN else ""),
             "BASTION_SIGNUP"),
            (_("Two-factor authentication"),
             _("required to publish and administer") if settings.REQUIRE_2FA else _("optional"),
             "BASTION_REQUIRE_2FA"),
            (_("Project creation"),
             _("any account that may publish") if settings.PROJECT_CREATORS == "everyone"
             else _("listed accounts only"), "BASTION_PROJECT_CREATORS"),
            (_("Base URL"), _base_url(), "BASTION_BASE_URL"),
            (_("Storage"), _storage(), "BASTION_STORAGE"),
            (_("Database"), _database(), "BASTION_DATABASE_URL"),
        ],
        "mail": notifications.delivery_status(),
        "counts": {
            "users": User.objects.filter(is_active=True).count(),
            "pending": len(signup.pending_accounts()),
            "held": holds.pending_count(),
            "reports": reports.open_reports().count(),
            "projects": Project.objects.count(),
            "files": File.objects.count(),
        },
        "chain": chain,
    }
    return render(request, "console/overview.html", context)


urlpatterns = [
    path("", index, name="overview"),
]
