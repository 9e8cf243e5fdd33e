from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("project/<str:name>/", views.project_detail, name="project"),
    path("project/<str:name>/<str:version>/", views.project_detail, name="project-release"),
    path("projects/", views.project_list, name="project-list"),
    path("search/", views.search, name="search"),
    path("user/<str:username>/", views.user_profile, name="user-profile"),
]
