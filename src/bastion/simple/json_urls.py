from django.urls import path

from . import json_views

urlpatterns = [
    path("<str:name>/json", json_views.project_json, name="json-project"),
    path("<str:name>/json/", json_views.project_json),
    path("<str:name>/<str:version>/json", json_views.project_json, name="json-release"),
    path("<str:name>/<str:version>/json/", json_views.project_json),
]
