from django.urls import path

from . import views

# Under /pypi/, beside the JSON API (whose routes end in /json with fewer segments).
urlpatterns = [
    path("<str:name>/<str:version>/inventory/json", views.release_inventory,
         name="inventory-release"),
    path("<str:name>/<str:version>/<str:filename>/sbom.cdx.json", views.sbom,
         name="inventory-sbom"),
    path("<str:name>/<str:version>/<str:filename>/sboms/<str:sbom_name>", views.embedded_sbom,
         name="inventory-embedded-sbom"),
]
