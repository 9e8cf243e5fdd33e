from django.urls import path

from . import views

urlpatterns = [
    path("audience", views.audience, name="oidc-audience"),
    path("mint-token", views.mint_token, name="oidc-mint-token"),
    # PyPI's older path for the same exchange, which older clients still call.
    path("github/mint-token", views.mint_token),
    path("burn-token", views.burn_token, name="oidc-burn-token"),
]
