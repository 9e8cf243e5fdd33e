from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("simple/", include("bastion.simple.urls")),
    path("pypi/", include("bastion.simple.json_urls")),
    path("packages/", include("bastion.simple.file_urls")),
    path("legacy/", include("bastion.upload.urls")),
    path("admin/", admin.site.urls),
    path("", include("bastion.web.urls")),
]
