from django.contrib import admin

from .models import SecurityEvent


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """Read-only: the record is append-only."""

    list_display = ("sequence", "tag", "time", "actor_name", "user_name", "project_name", "ip_address")
    list_filter = ("tag",)
    search_fields = ("actor_name", "user_name", "project_name")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
