from django.urls import path

from . import integrity_views

urlpatterns = [
    path("<str:name>/<str:version>/<str:filename>/provenance", integrity_views.provenance,
         name="integrity-provenance"),
]
