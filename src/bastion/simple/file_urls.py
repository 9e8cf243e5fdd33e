from django.urls import path

from . import file_views

urlpatterns = [
    # Before the store's paths: "+" never starts one.
    path("+upstream/<slug:upstream>/<str:name>/<str:filename>", file_views.serve_upstream,
         name="upstream-file"),
    path("<path:path>", file_views.serve, name="package-file"),
]
