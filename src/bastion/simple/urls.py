from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="simple-index"),
    path("<str:name>/", views.detail, name="simple-detail"),
    # PEP 503: redirect the slash-less form (and unnormalized names) to the canonical URL.
    path("<str:name>", views.detail),
]
