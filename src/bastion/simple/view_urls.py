"""``/views/<view>/...``: a named view of the whole index, on the same views as the root.

The root URLs are the default view's; each route here is the one route for its URL.
"""

from django.urls import path

from . import file_views, json_views, views

urlpatterns = [
    path("simple/", views.index, name="view-simple-index"),
    path("simple/<str:name>/", views.detail, name="view-simple-detail"),
    path("simple/<str:name>", views.detail),
    path("pypi/<str:name>/json", json_views.project_json, name="view-json-project"),
    path("pypi/<str:name>/json/", json_views.project_json),
    path("pypi/<str:name>/<str:version>/json", json_views.project_json, name="view-json-release"),
    path("pypi/<str:name>/<str:version>/json/", json_views.project_json),
    path("packages/+upstream/<slug:upstream>/<str:name>/<str:filename>",
         file_views.serve_upstream, name="view-upstream-file"),
    path("packages/<path:path>", file_views.serve, name="view-package-file"),
]
