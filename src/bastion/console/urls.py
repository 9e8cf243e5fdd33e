"""``/admin/``: the admin console. One module per area; every view is wrapped by
``access.console_view``."""

from django.urls import include, path

app_name = "console"

urlpatterns = [
    path("", include("bastion.console.overview")),
    path("users/", include("bastion.console.users")),
    path("projects/", include("bastion.console.projects")),
    path("tokens/", include("bastion.console.tokens")),
    path("events/", include("bastion.console.events")),
    path("cache/", include("bastion.console.cache")),
    path("pages/", include("bastion.console.pages")),
    path("tuf/", include("bastion.console.tuf")),
    path("views/", include("bastion.console.views")),
    path("held/", include("bastion.console.held")),
    path("reports/", include("bastion.console.reports")),
    path("upstreams/", include("bastion.console.upstreams")),
    path("advisories/", include("bastion.console.advisories")),
    path("bundled-libs/", include("bastion.console.bundled_libs")),
    path("scans/", include("bastion.console.scanning")),
    path("issuers/", include("bastion.console.issuers")),
    path("operations/", include("bastion.console.operations")),
    path("", include("bastion.console.names")),  # names/ and namespaces/
]
