from django.urls import path

from . import file_views

urlpatterns = [
    path("<path:path>", file_views.serve, name="package-file"),
]
