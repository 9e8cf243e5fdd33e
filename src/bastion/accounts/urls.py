from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("language/", views.language, name="language"),
    path("dependency-digest/", views.dependency_digest, name="dependency_digest"),
    path("register/", views.register, name="register"),
    path("register/invitation/<str:token>/", views.register_invited, name="register_invited"),
    path("login/", views.login, name="login"),
    path("login/two-factor/", views.two_factor, name="two_factor_login"),
    path("login/passkey/", views.passkey_login, name="passkey_login"),
    path("logout/", views.logout, name="logout"),
    path("reauthenticate/", views.reauthenticate, name="reauthenticate"),
    path("verify-email/<str:token>/", views.verify_email, name="verify_email"),
    path("email/", views.emails, name="emails"),
    path("email/add/", views.email_add, name="email_add"),
    path("email/resend/", views.email_resend, name="email_resend"),
    path("email/<int:pk>/remove/", views.email_remove, name="email_remove"),
    path("email/<int:pk>/primary/", views.email_primary, name="email_primary"),
    path("password/", views.password_change, name="password_change"),
    path("password/reset/", views.password_reset, name="password_reset"),
    path("password/reset/<str:uidb64>/<str:token>/", views.password_reset_confirm,
         name="password_reset_confirm"),
    path("recover/<str:token>/", views.recover, name="recover"),
    path("two-factor/", views.two_factor_settings, name="two_factor"),
    path("two-factor/totp/add/", views.totp_add, name="totp_add"),
    path("two-factor/totp/<int:pk>/remove/", views.totp_remove, name="totp_remove"),
    path("two-factor/webauthn/add/", views.webauthn_add, name="webauthn_add"),
    path("two-factor/webauthn/<int:pk>/remove/", views.webauthn_remove, name="webauthn_remove"),
    path("two-factor/webauthn/<int:pk>/passkey/", views.webauthn_passkey, name="webauthn_passkey"),
    path("recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("recovery-codes/regenerate/", views.recovery_codes_regenerate,
         name="recovery_codes_regenerate"),
    path("sessions/", views.session_list, name="sessions"),
    path("security-log/", views.security_log, name="security_log"),
    path("security-log/export.<str:fmt>", views.security_log_export, name="security_log_export"),
    path("delete/", views.delete_account, name="delete"),
]
