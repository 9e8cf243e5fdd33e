"""/manage/: projects, invitations and project security logs (API tokens: bastion.tokens)."""

from django.urls import path


from . import views

app_name = "manage"

urlpatterns = [
    path("projects/", views.project_list, name="projects"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:invitation_id>/accept/", views.accept_invitation,
         name="invitation-accept"),
    path("invitations/<int:invitation_id>/decline/", views.decline_invitation,
         name="invitation-decline"),

    path("project/<str:name>/", views.project_settings, name="project"),
    path("project/<str:name>/history/", views.project_history, name="project-history"),
    path("project/<str:name>/history/export.<str:fmt>", views.project_history_export,
         name="project-history-export"),
    path("project/<str:name>/invite/", views.invite, name="invite"),
    path("project/<str:name>/invitations/<int:invitation_id>/revoke/", views.revoke_invitation,
         name="invitation-revoke"),
    path("project/<str:name>/email-invitations/<int:invitation_id>/withdraw/",
         views.withdraw_email_invitation, name="email-invitation-withdraw"),
    path("project/<str:name>/members/role/", views.change_role, name="change-role"),
    path("project/<str:name>/members/remove/", views.remove_member, name="remove-member"),
    path("project/<str:name>/leave/", views.leave, name="leave"),
    path("project/<str:name>/archive/", views.archive, name="archive"),
    path("project/<str:name>/unarchive/", views.unarchive, name="unarchive"),
    path("project/<str:name>/delete/", views.delete_project, name="delete-project"),
    path("project/<str:name>/release/<str:version>/", views.release_settings, name="release"),
    path("project/<str:name>/release/<str:version>/yank/", views.yank, name="yank"),
    path("project/<str:name>/release/<str:version>/unyank/", views.unyank, name="unyank"),
    path("project/<str:name>/release/<str:version>/delete/", views.delete_release,
         name="delete-release"),
    path("project/<str:name>/release/<str:version>/files/<int:file_id>/delete/",
         views.delete_file, name="delete-file"),
]
