"""The attestation policy in the web UI, under /manage/ (wired in bastion.urls)."""

from django.urls import path

from . import manage_views

app_name = "provenance"

urlpatterns = [
    path("project/<str:name>/attestations/", manage_views.project_page, name="project"),
    path("project/<str:name>/attestations/policy/", manage_views.policy, name="policy"),
]
