"""Trusted publishers in the web UI, under /manage/ (wired in bastion.urls)."""

from django.urls import path

from . import manage_views

app_name = "publishing"

urlpatterns = [
    path("project/<str:name>/publishing/", manage_views.project_page, name="project"),
    path("project/<str:name>/publishing/add/", manage_views.add, name="add"),
    path("project/<str:name>/publishing/<int:publisher_id>/remove/", manage_views.remove,
         name="remove"),
    path("project/<str:name>/publishing/mode/", manage_views.mode, name="mode"),
    path("account/publishing/", manage_views.pending, name="pending"),
    path("account/publishing/<int:publisher_id>/withdraw/", manage_views.withdraw,
         name="withdraw"),
]
