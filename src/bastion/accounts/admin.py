from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import EmailAddress, TOTPDevice, User, WebAuthnCredential

admin.site.register(User, UserAdmin)


@admin.register(EmailAddress)
class EmailAddressAdmin(admin.ModelAdmin):
    list_display = ("email", "user", "verified", "created")
    search_fields = ("email", "user__username")


@admin.register(TOTPDevice, WebAuthnCredential)
class SecondFactorAdmin(admin.ModelAdmin):
    """Names and dates of a user's factors, never their secrets."""

    list_display = ("name", "user", "created", "last_used")
    search_fields = ("name", "user__username")
    fields = ("name", "user", "created", "last_used")
    readonly_fields = fields

