"""django.contrib.admin with Bastion's read-only site as ``admin.site`` (see admin_site).

Its own module: INSTALLED_APPS imports it before any model can be, which admin_site needs.
Installed whether or not the pages are served (BASTION_DEBUG_ADMIN), so that the schema does
not change with the setting.
"""

from django.contrib.admin.apps import AdminConfig


class ReadOnlyAdminConfig(AdminConfig):
    default_site = "bastion.web.admin_site.ReadOnlyAdminSite"
