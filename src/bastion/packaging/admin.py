from django.contrib import admin

from .models import File, FilenameRegistry, ProhibitedProjectName, Project, Release, Role


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "created", "total_size")
    search_fields = ("name", "normalized_name")
    list_filter = ("status",)


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("project", "version", "created", "yanked")
    search_fields = ("project__name", "version")


@admin.register(File)
class FileAdmin(admin.ModelAdmin):
    list_display = ("filename", "size", "upload_time", "uploaded_by")
    search_fields = ("filename",)


admin.site.register(Role)
admin.site.register(FilenameRegistry)
admin.site.register(ProhibitedProjectName)
