from django.urls import path

from . import tuf_views

urlpatterns = [
    path("metadata/<str:filename>", tuf_views.metadata, name="tuf-metadata"),
    path("targets/<path:path>", tuf_views.target, name="tuf-target"),
]
