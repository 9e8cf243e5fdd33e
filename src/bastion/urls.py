from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from bastion.console import views as console_views
from bastion.events import views as event_views
from bastion.ops import views as ops_views
from bastion.packaging import report_views
from bastion.simple import read_auth
from bastion.upload import observations, views as upload_views
from bastion.web.admin_site import admin_only_json

# Pages in the site's style, plain lines on the API routes (bastion.web.errors says why).
handler400 = "bastion.web.errors.bad_request"
handler403 = "bastion.web.errors.permission_denied"
handler404 = "bastion.web.errors.page_not_found"
handler500 = "bastion.web.errors.server_error"

urlpatterns = [
    path("simple/", include("bastion.simple.urls")),
    path("pypi/", include("bastion.simple.json_urls")),
    path("pypi/", include("bastion.inventory.urls")),
    path("packages/", include("bastion.simple.file_urls")),
    # The index's TUF metadata and targets (PEP 458; docs/tuf.md).
    path("tuf/", include("bastion.simple.tuf_urls")),
    path("legacy/+simple/", include("bastion.simple.hatch_urls")),
    path("views/<slug:view>/", include("bastion.simple.view_urls")),
    path("osv/", include("bastion.simple.osv_urls")),
    path("integrity/", include("bastion.simple.integrity_urls")),
    path("legacy/", include("bastion.upload.urls")),
    # Served directly: twine and poetry treat any redirect of a POST as fatal.
    path("legacy", upload_views.upload),
    path("danger-api/projects/<str:name>/observations", observations.observations,
         name="observations"),
    path("_/oidc/", include("bastion.publishing.urls")),
    path("_/", include("bastion.ops.urls")),
    # The OpenAPI description of the JSON endpoints (schemathesis and API clients read it).
    path("openapi.json", ops_views.openapi_view, name="openapi"),
    # nginx's auth_request before it serves a rendered page of a private index.
    path("_/auth/read", read_auth.check, name="read-auth"),
    path("_/", include("bastion.tokens.urls")),
    path("account/", include("bastion.accounts.urls")),
    path("manage/account/tokens/", include("bastion.tokens.manage_urls")),
    path("manage/", include("bastion.packaging.urls")),
    path("manage/", include("bastion.publishing.manage_urls")),
    path("manage/", include("bastion.provenance.manage_urls")),
    # Before the console and Django's admin, whose catch-all would answer for it.
    path("admin/events.json", admin_only_json(event_views.admin_events), name="admin-events"),
    path("admin/blocks.json", admin_only_json(console_views.blocks_json), name="admin-blocks"),
    # Django's read-only model admin, for debugging only (BASTION_DEBUG_ADMIN).
    *([path("admin/models/", admin.site.urls)] if settings.DEBUG_ADMIN else []),
    path("admin/", include("bastion.console.urls")),
    # Before the web pages, whose project/<name>/<version>/ would take it ("report" is no
    # PEP 440 version, so no release page is hidden by it).
    path("project/<str:name>/report/", report_views.report, name="project-report"),
    path("", include("bastion.web.urls")),
]
