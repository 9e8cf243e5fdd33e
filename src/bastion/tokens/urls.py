from django.urls import path

from . import views

urlpatterns = [
    path("secrets/disclose-token", views.disclose_token, name="disclose-token"),
    # PyPI's older path for the same GitHub integration.
    path("github/disclose-token", views.disclose_token),
    path("tokens/revoke-self", views.revoke_self, name="token-revoke-self"),
]
