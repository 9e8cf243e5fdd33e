"""The account's API token pages, under /manage/account/tokens/ (wired in bastion.urls)."""

from django.urls import path

from . import manage_views

app_name = "tokens"

urlpatterns = [
    path("", manage_views.token_list, name="list"),
    path("new/", manage_views.create, name="create"),
    path("<uuid:token_id>/revoke/", manage_views.revoke, name="revoke"),
]
