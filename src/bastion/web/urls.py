from django.templatetags.static import static
from django.urls import path
from django.views.generic.base import RedirectView

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("project/<str:name>/", views.project_detail, name="project"),
    path("project/<str:name>/<str:version>/", views.project_detail, name="project-release"),
    path("projects/", views.project_list, name="project-list"),
    path("search/", views.search, name="search"),
    path("user/<str:username>/", views.user_profile, name="user-profile"),
    # Browsers ask for it on their own, before reading the page's <link rel="icon">.
    path("favicon.ico", RedirectView.as_view(url=static("bastion/favicon.svg"), permanent=True)),
]
