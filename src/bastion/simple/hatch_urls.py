"""hatch's ``<upload-url>+simple/<name>/`` (a devpi convention) mapped to the HTML page."""

from django.urls import path

from . import views

urlpatterns = [
    path("<str:name>/", views.hatch_detail, name="hatch-simple-detail"),
    path("<str:name>", views.hatch_detail),
]
