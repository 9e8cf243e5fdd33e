from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.shortcuts import redirect
from django.urls import reverse

from .models import EmailAddress, TOTPDevice, User, WebAuthnCredential

admin.site.register(User, UserAdmin)


@admin.register(EmailAddress)
class EmailAddressAdmin(admin.ModelAdmin):
    list_display = ("email", "user", "verified", "created")
    search_fields = ("email", "user__username")


@admin.register(TOTPDevice, WebAuthnCredential)
class SecondFactorAdmin(admin.ModelAdmin):
    """Admins may see and remove a user's factors (account recovery), never read secrets."""

    list_display = ("name", "user", "created", "last_used")
    search_fields = ("name", "user__username")
    fields = ("name", "user", "created", "last_used")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _login_with_second_factor(request, extra_context=None):
    """The admin has no password-only door: it signs in through the account pages (2FA)."""
    target = request.GET.get("next") or reverse("admin:index")
    return redirect(reverse("accounts:login") + "?" + urlencode({"next": target}))


admin.site.login = _login_with_second_factor
