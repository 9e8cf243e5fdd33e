"""Account pages. Each view parses the form, calls a service and renders the outcome."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login as auth_login, logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _, gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bastion.core.errors import ValidationError
from bastion.core.text import one_line
from bastion.events import tags
from bastion.events.export import export_response
from bastion.events.models import SecurityEvent
from bastion.events.services import RequestInfo, filtered

from . import account_recovery, grants, languages, recovery, reauth, security_keys, services, sessions, signup, throttle, totp
from .models import EmailAddress, SignupStatus, TOTPDevice, WebAuthnCredential
from .passwords import MAX_PASSWORD_LENGTH
from .reauth import require_recent_auth

PENDING = "bastion_pending_auth"
PENDING_SECONDS = 300
PENDING_TOTP = "bastion_pending_totp"
FRESH_CODES = "bastion_fresh_recovery_codes"
BACKEND = "django.contrib.auth.backends.ModelBackend"


# --- helpers ----------------------------------------------------------------------------

def _ip(request) -> str:
    return RequestInfo.from_request(request).ip_address


def _next_url(request, default: str = "") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return default or reverse("accounts:account")


# Whole sentences per kind of attempt, so that each language can word them its own way.
_TOO_MANY = {
    "failed sign-in attempts": gettext_lazy(
        "Too many failed sign-in attempts for this account or from your network. Try again in "
        "{wait}."),
    "sign-ups": gettext_lazy(
        "Too many sign-ups for this account or from your network. Try again in {wait}."),
    "failed second-factor attempts": gettext_lazy(
        "Too many failed second-factor attempts for this account or from your network. Try "
        "again in {wait}."),
    "wrong passwords": gettext_lazy(
        "Too many wrong passwords for this account or from your network. Try again in {wait}."),
    "password-reset requests": gettext_lazy(
        "Too many password-reset requests for this account or from your network. Try again in "
        "{wait}."),
}


def _too_many(request, wait: int, what: str = "failed sign-in attempts"):
    response = render(request, "accounts/throttled.html", {
        "message": str(_TOO_MANY[what]).format(wait=throttle.describe_wait(wait)),
    }, status=429)
    response["Retry-After"] = str(wait)
    return response


def _field(request, name: str, limit: int = 1000) -> str:
    return (request.POST.get(name) or "")[:limit]


def _start_pending(request, user, purpose: str, next_url: str) -> None:
    request.session[PENDING] = {"user": user.pk, "purpose": purpose, "at": int(time.time()),
                                "next": next_url}


def _pending(request):
    from django.contrib.auth import get_user_model

    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        return None, None
    if pending.get("purpose") == "reauth" and request.user.pk != user.pk:
        return None, None
    return pending, user


def _finish_login(request, user, *, method: str, next_url: str):
    request.session.pop(PENDING, None)
    auth_login(request, user, backend=BACKEND)  # rotates the session key
    sessions.bind(request, user)
    reauth.mark(request)
    throttle.clear([throttle.user_limit(user), throttle.second_factor_limit(user)])
    services.record_login(request, user, method=method)
    if account_recovery.must_enrol_second_factor(user):
        messages.warning(request, _("Your account was recovered: set up a new second factor (an "
                                  "authenticator app or a security key) before anything else."))
        return redirect("accounts:two_factor")
    return redirect(next_url)


def _show_fresh_codes(request, codes):
    if codes:
        request.session[FRESH_CODES] = codes
        return redirect("accounts:recovery_codes")
    return redirect("accounts:two_factor")


# --- sign-up, sign-in, sign-out ------------------------------------------------------------

def _register(request, *, invitation=None, token: str = ""):
    """The sign-up form, open or through an invitation link (``token``)."""
    if request.user.is_authenticated:
        return redirect("accounts:account")
    values, error, status = {}, "", 200
    if request.method == "POST":
        # Each sign-up sends mail: a few per address and window are plenty for people.
        signups = [throttle.Limit("register-ip:" + throttle.address_key(_ip(request)),
                                  settings.LOGIN_MAX_ATTEMPTS)]
        attempt = throttle.reserve(signups)
        if attempt.refused:
            return _too_many(request, attempt.wait, "sign-ups")
        values = {"username": _field(request, "username", 200),
                  "email": _field(request, "email", 320)}
        password, confirm = (_field(request, "password", MAX_PASSWORD_LENGTH + 1),
                             _field(request, "password_confirm", MAX_PASSWORD_LENGTH + 1))
        try:
            if password != confirm:
                raise ValidationError(_("The two passwords do not match."))
            user = services.register(request, username=values["username"], email=values["email"],
                                     password=password, invitation_token=token)
        except ValidationError as exc:
            attempt.release()  # only sign-ups that happened count
            if exc.message == str(signup.INVITATION_ONLY):
                return render(request, "accounts/register.html", {"closed": exc.message},
                              status=exc.status)
            error, status = exc.message, exc.status
        else:
            if token:
                messages.success(request, _("Welcome, {username}! Your address {email} is "
                                            "verified.").format(username=user.username,
                                                                email=user.email))
            else:
                messages.success(request, _("Welcome, {username}! We sent a link to {email}: open "
                                            "it to verify your address.").format(
                    username=user.username, email=user.email))
            return _finish_login(request, user, method="registration",
                                 next_url=reverse("accounts:account"))
    return render(request, "accounts/register.html", {
        "values": values, "error": error, "invitation": invitation, "mode": signup.mode(),
        "domains": signup.domains_text(),
    }, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def register(request):
    if signup.mode() == signup.INVITE and request.method == "GET":
        # Nothing to fill in without an invitation: say so rather than show a form that fails.
        return render(request, "accounts/register.html", {"closed": signup.INVITATION_ONLY})
    return _register(request)


@never_cache
@require_http_methods(["GET", "POST"])
def register_invited(request, token):
    invitation = signup.find_invitation(token)
    if invitation is None and not request.user.is_authenticated:
        return render(request, "accounts/register.html", {"closed": signup.INVALID_LINK},
                      status=400)
    return _register(request, invitation=invitation, token=token)


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    next_url = _next_url(request)
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url)
    error, identifier = "", ""
    if request.method == "POST":
        identifier = _field(request, "username", 320).strip()
        password = _field(request, "password", MAX_PASSWORD_LENGTH + 1)
        account = services.find_account(identifier)
        # Counted before the password is checked, un-counted if it is right (throttle says why).
        attempt = throttle.reserve([throttle.account_limit(identifier, account),
                                    throttle.ip_limit(_ip(request))])
        if attempt.refused:
            return _too_many(request, attempt.wait)
        username = account.username if account else identifier
        user = authenticate(request, username=username, password=password) if password else None
        if user is None:
            if account is not None:
                services.record_login_failure(request, account, reason="password")
            error = "The username or password is not correct."
        else:
            attempt.release()
            if services.has_two_factor(user):
                _start_pending(request, user, "login", next_url)
                return redirect("accounts:two_factor_login")
            return _finish_login(request, user, method="password", next_url=next_url)
    return render(request, "accounts/login.html",
                  {"error": error, "identifier": identifier, "next": next_url},
                  status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor(request):
    pending, user = _pending(request)
    if user is None:
        messages.error(request, _("Your sign-in took too long or was not started. Sign in again."))
        return redirect("accounts:login")
    error = ""
    if request.method == "POST":
        attempt = throttle.reserve([throttle.second_factor_limit(user),
                                    throttle.ip_limit(_ip(request))])
        if attempt.refused:
            return _too_many(request, attempt.wait, "failed second-factor attempts")
        method = request.POST.get("method", "")
        accepted = False
        try:
            if method == "totp":
                accepted = totp.verify(user, _field(request, "code", 64)) is not None
                error = "" if accepted else ("That code is not valid or was already used. Wait "
                                             "for the next code and try again.")
            elif method == "webauthn":
                security_keys.authenticate(request, _field(request, "credential", 20000), user=user)
                accepted = True
            elif method == "recovery":
                accepted = services.use_recovery_code(request, user, _field(request, "code", 64))
                error = "" if accepted else "That recovery code is not valid or was already used."
            else:
                error = "Choose a second factor."
        except ValidationError as exc:
            error = exc.message
        if accepted:
            attempt.release()
            if pending["purpose"] == "reauth":
                request.session.pop(PENDING, None)
                reauth.mark(request)
                throttle.clear([throttle.second_factor_limit(user)])
                services.record_simple(request, user, tags.ACCOUNT_REAUTHENTICATE,
                                       method=f"password+{method}")
                return redirect(pending.get("next") or "accounts:account")
            return _finish_login(request, user, method=f"password+{method}",
                                 next_url=pending.get("next") or reverse("accounts:account"))
        services.record_login_failure(request, user, reason=method or "second factor")
    has_keys = WebAuthnCredential.objects.filter(user=user).exists()
    context = {
        "error": error,
        "purpose": pending["purpose"],
        "has_totp": TOTPDevice.objects.filter(user=user).exists(),
        "has_keys": has_keys,
        "webauthn_options": security_keys.authentication_options(request, user) if has_keys else "",
        "recovery_left": recovery.remaining(user),
    }
    return render(request, "accounts/two_factor.html", context, status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def passkey_login(request):
    error = ""
    if request.method == "POST":
        attempt = throttle.reserve([throttle.ip_limit(_ip(request))])
        if attempt.refused:
            return _too_many(request, attempt.wait)
        try:
            credential = security_keys.authenticate(request, _field(request, "credential", 20000))
        except ValidationError as exc:
            error = exc.message
        else:
            attempt.release()
            if credential.user.is_active:
                return _finish_login(request, credential.user, method="passkey",
                                     next_url=_next_url(request))
            error = "This account is disabled."
    return render(request, "accounts/passkey_login.html", {
        "error": error, "next": _next_url(request),
        "webauthn_options": security_keys.authentication_options(request),
    }, status=400 if error else 200)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    user = request.user
    next_url = _next_url(request)
    error = ""
    if request.method == "POST":
        attempt = throttle.reserve([throttle.user_limit(user), throttle.ip_limit(_ip(request))])
        if attempt.refused:
            return _too_many(request, attempt.wait)
        if user.check_password(_field(request, "password", MAX_PASSWORD_LENGTH + 1)):
            attempt.release()
            if services.has_two_factor(user):
                _start_pending(request, user, "reauth", next_url)
                return redirect("accounts:two_factor_login")
            reauth.mark(request)
            services.record_simple(request, user, tags.ACCOUNT_REAUTHENTICATE, method="password")
            return redirect(next_url)
        services.record_login_failure(request, user, reason="reauthentication password")
        error = "That password is not correct."
    return render(request, "accounts/reauthenticate.html", {"error": error, "next": next_url},
                  status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def logout(request):
    if request.method == "POST":
        if request.user.is_authenticated:
            services.record_simple(request, request.user, tags.ACCOUNT_LOGOUT)
            sessions.forget(request)
        auth_logout(request)
        messages.info(request, _("You are signed out."))
        return redirect("home")
    return render(request, "accounts/logout.html")


# --- the account -----------------------------------------------------------------------------

@never_cache
@login_required
def account(request):
    user = request.user
    allowed, reason = services.can_publish(user)
    return render(request, "accounts/account.html", {
        "can_publish": allowed, "publish_reason": reason,
        "pending": user.signup_status == SignupStatus.PENDING,
        "private_index": settings.READ_POLICY == "authenticated",
        "reads_everything": user.is_superuser or grants.has_grant(user, grants.READ),
        "totp_devices": TOTPDevice.objects.filter(user=user),
        "keys": WebAuthnCredential.objects.filter(user=user),
        "recovery_left": recovery.remaining(user),
        "extra_emails": EmailAddress.objects.filter(user=user),
        "languages": languages.choices(),
    })


@require_POST
@login_required
def language(request):
    try:
        services.set_language(request, request.user, request.POST.get("language", "")[:16])
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        # Activated at once, so that the confirmation is already in the new language.
        translation.activate(languages.for_request(request))
        messages.success(request, _("Your language was saved."))
    return redirect("accounts:account")


@require_POST
@login_required
def dependency_digest(request):
    choice = request.POST.get("digest", "")
    if choice not in ("on", "off"):
        messages.error(request, _("Choose whether to receive the weekly digest."))
        return redirect("accounts:account")
    services.set_dependency_digest(request, request.user, choice == "on")
    messages.success(request, _("You will receive the weekly digest of vulnerable "
                                "dependencies.") if choice == "on" else
                     _("You will no longer receive the weekly digest of vulnerable "
                       "dependencies."))
    return redirect("accounts:account")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify_email(request, token):
    """GET shows the address and a button; only its POST (CSRF-checked) verifies.

    Mail scanners and link previews open links: a GET that verified would let them confirm an
    address nobody read the mail of.
    """
    try:
        if request.method == "POST":
            _user, email = services.verify_email(request, token)
            return render(request, "accounts/verify_email.html", {"email": email, "done": True})
        user, email = services.verification_target(token)
    except ValidationError as exc:
        return render(request, "accounts/verify_email.html", {"error": exc.message}, status=400)
    return render(request, "accounts/verify_email.html", {
        "email": email, "done": services.is_verified(user, email)})


@never_cache
@login_required
def emails(request):
    return render(request, "accounts/emails.html",
                  {"extra_emails": EmailAddress.objects.filter(user=request.user)})


@require_POST
@require_recent_auth
def email_add(request):
    try:
        address = services.add_email(request, request.user, _field(request, "email", 320))
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Added {email}. Open the link we sent there to verify "
                                    "it.").format(email=address.email))
    return redirect("accounts:emails")


@require_POST
@require_recent_auth
def email_remove(request, pk):
    address = get_object_or_404(EmailAddress, pk=pk, user=request.user)
    services.remove_email(request, request.user, address)
    messages.success(request, _("Removed {email}.").format(email=address.email))
    return redirect("accounts:emails")


@require_POST
@require_recent_auth
def email_primary(request, pk):
    address = get_object_or_404(EmailAddress, pk=pk, user=request.user)
    try:
        services.make_primary(request, request.user, address)
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("{email} is now your primary address.").format(
            email=request.user.email))
    return redirect("accounts:emails")


@require_POST
@login_required
def email_resend(request):
    user = request.user
    target = request.POST.get("address", "primary")
    if target == "primary":
        email, verified = user.email, user.email_verified
    else:
        extra = EmailAddress.objects.filter(user=user, pk=target if target.isdigit() else 0).first()
        if extra is None:
            raise Http404("No such address.")
        email, verified = extra.email, extra.verified
    if verified:
        messages.info(request, _("{email} is already verified.").format(email=email))
    elif throttle.reserve([throttle.Limit(f"verify-mail:{user.pk}", 3)]).refused:
        messages.error(request, _("Verification mail was sent several times recently. Check your "
                                "inbox and spam folder, or try again later."))
    else:
        services.send_verification(request, user, email)
        messages.success(request, _("We sent a new verification link to {email}.").format(
            email=email))
    return redirect("accounts:emails")


# --- passwords ----------------------------------------------------------------------------------

@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    error = ""
    if request.method == "POST":
        try:
            services.change_password(request, request.user,
                                     current=_field(request, "current", MAX_PASSWORD_LENGTH + 1),
                                     new=_field(request, "password", MAX_PASSWORD_LENGTH + 1),
                                     confirm=_field(request, "password_confirm",
                                                    MAX_PASSWORD_LENGTH + 1))
        except services.TooManyAttempts as exc:
            return _too_many(request, exc.wait, "wrong passwords")
        except ValidationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Password changed. Your other sessions were signed out."))
            return redirect("accounts:account")
    return render(request, "accounts/password_change.html", {"error": error},
                  status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset(request):
    sent = False
    if request.method == "POST":
        identifier = _field(request, "username", 320).strip()
        limits = [throttle.Limit("reset-ip:" + throttle.address_key(_ip(request)),
                                 settings.LOGIN_MAX_ATTEMPTS),
                  throttle.Limit("reset:" + throttle.account_limit(identifier).key, 3)]
        attempt = throttle.reserve(limits)
        if attempt.refused:
            return _too_many(request, attempt.wait, "password-reset requests")
        services.request_password_reset(request, identifier)
        sent = True
    return render(request, "accounts/password_reset.html", {"sent": sent})


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_confirm(request, uidb64, token):
    user = services.user_for_reset(uidb64, token)
    if user is None:
        return render(request, "accounts/password_reset_confirm.html", {"invalid": True},
                      status=400)
    error = ""
    if request.method == "POST":
        try:
            services.reset_password(request, user,
                                    new=_field(request, "password", MAX_PASSWORD_LENGTH + 1),
                                    confirm=_field(request, "password_confirm",
                                                   MAX_PASSWORD_LENGTH + 1))
        except ValidationError as exc:
            error = exc.message
        else:
            if request.user.is_authenticated:
                auth_logout(request)
            messages.success(request, _("Your password was reset. Sign in with the new password."))
            return redirect("accounts:login")
    return render(request, "accounts/password_reset_confirm.html", {"error": error, "reset_user": user},
                  status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def recover(request, token):
    """The link an account recovery mails: opening it changes nothing, posting sets a password."""
    recovery = account_recovery.find_link(token)
    if recovery is None:
        return render(request, "accounts/recover.html",
                      {"invalid": account_recovery.INVALID_LINK}, status=400)
    error = ""
    if request.method == "POST":
        try:
            account_recovery.use_link(
                token, new=_field(request, "password", MAX_PASSWORD_LENGTH + 1),
                confirm=_field(request, "password_confirm", MAX_PASSWORD_LENGTH + 1),
                info=RequestInfo.from_request(request))
        except ValidationError as exc:
            error = exc.message
        else:
            if request.user.is_authenticated:
                auth_logout(request)
            messages.success(request, _("Your new password is set. Sign in with it, then set up a "
                                      "new second factor."))
            return redirect("accounts:login")
    return render(request, "accounts/recover.html",
                  {"error": error, "recovered_user": recovery.user}, status=400 if error else 200)


# --- two-factor authentication ---------------------------------------------------------------

@never_cache
@login_required
def two_factor_settings(request):
    user = request.user
    return render(request, "accounts/two_factor_settings.html", {
        "totp_devices": TOTPDevice.objects.filter(user=user),
        "keys": WebAuthnCredential.objects.filter(user=user),
        "recovery_left": recovery.remaining(user),
        "require_2fa": settings.REQUIRE_2FA,
    })


def _needs_verified_email(request):
    if not request.user.email_verified:
        messages.error(request, _("Verify your primary email address before setting up two-factor "
                                "authentication."))
        return redirect("accounts:emails")
    return None


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def totp_add(request):
    blocked = _needs_verified_email(request)
    if blocked:
        return blocked
    secret = request.session.get(PENDING_TOTP)
    if not isinstance(secret, str):
        secret = request.session[PENDING_TOTP] = totp.new_secret()
    error, name = "", "Authenticator app"
    if request.method == "POST":
        name = _field(request, "name", 200)
        try:
            _device, codes = services.add_totp(request, request.user, name=name, secret=secret,
                                               code=_field(request, "code", 64))
        except ValidationError as exc:
            error = exc.message
        else:
            request.session.pop(PENDING_TOTP, None)
            messages.success(request, _("Authenticator app added."))
            return _show_fresh_codes(request, codes)
    uri = totp.provisioning_uri(secret, request.user.username)
    return render(request, "accounts/totp_add.html", {
        "secret": secret, "secret_grouped": " ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
        "qr": totp.qr_data_uri(uri), "error": error, "name": name,
    }, status=400 if error else 200)


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def webauthn_add(request):
    blocked = _needs_verified_email(request)
    if blocked:
        return blocked
    error = ""
    if request.method == "POST":
        try:
            credential, codes = services.add_security_key(
                request, request.user, name=_field(request, "name", 200),
                credential_json=_field(request, "credential", 20000),
                passwordless=request.POST.get("passwordless") == "on")
        except ValidationError as exc:
            error = exc.message
        else:
            messages.success(request, _("Security key {name} added.").format(
                name=repr(credential.name)))
            return _show_fresh_codes(request, codes)
    return render(request, "accounts/webauthn_add.html", {
        "error": error, "webauthn_options": security_keys.registration_options(request, request.user),
    }, status=400 if error else 200)


def _remove_factor(request, device, kind: str):
    user = request.user
    last = services.second_factor_count(user) == 1
    if request.method == "POST":
        services.remove_second_factor(request, user, device)
        messages.success(request, _("Removed {name}.").format(name=repr(device.name)))
        return redirect("accounts:two_factor")
    return render(request, "accounts/two_factor_remove.html", {
        "device": device, "kind": kind, "last": last, "require_2fa": settings.REQUIRE_2FA,
    })


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def totp_remove(request, pk):
    return _remove_factor(request, get_object_or_404(TOTPDevice, pk=pk, user=request.user),
                          "authenticator app")


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def webauthn_remove(request, pk):
    return _remove_factor(request, get_object_or_404(WebAuthnCredential, pk=pk, user=request.user),
                          "security key")


@require_POST
@require_recent_auth
def webauthn_passkey(request, pk):
    credential = get_object_or_404(WebAuthnCredential, pk=pk, user=request.user)
    try:
        services.set_passwordless(request, request.user, credential,
                                  request.POST.get("enabled") == "1")
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, (
            _("Passkey sign-in enabled for {name}.") if credential.passwordless
            else _("Passkey sign-in disabled for {name}.")).format(name=repr(credential.name)))
    return redirect("accounts:two_factor")


@never_cache
@login_required
@require_http_methods(["GET"])
def recovery_codes(request):
    codes = request.session.pop(FRESH_CODES, None)
    return render(request, "accounts/recovery_codes.html", {
        "codes": codes,
        "codes_text": recovery.as_text(request.user.username, settings.BASE_URL, codes) if codes else "",
        "remaining": recovery.remaining(request.user),
        "has_two_factor": services.has_two_factor(request.user),
    })


@require_POST
@require_recent_auth
def recovery_codes_regenerate(request):
    try:
        codes = services.regenerate_recovery_codes(request, request.user)
    except ValidationError as exc:
        messages.error(request, exc.message)
        return redirect("accounts:two_factor")
    request.session[FRESH_CODES] = codes
    return redirect("accounts:recovery_codes")


# --- sessions, log, deletion -------------------------------------------------------------------

@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def session_list(request):
    if request.method == "POST":
        ended = sessions.end_sessions(request.user, keep_key=request.session.session_key)
        services.record_simple(request, request.user, tags.ACCOUNT_SESSIONS_REVOKED, ended=ended)
        messages.success(request, ngettext("Signed out {count} other session.",
                                            "Signed out {count} other sessions.",
                                            ended).format(count=ended))
        return redirect("accounts:sessions")
    return render(request, "accounts/sessions.html", {
        "sessions": sessions.live_sessions(request.user),
        "current": request.session.session_key,
    })


def _own_events(request):
    """The signed-in user's events, filtered by the log page's tag and days."""
    return filtered(SecurityEvent.objects.filter(user=request.user),
                    tag=one_line(request.GET.get("tag"), 100),
                    since=one_line(request.GET.get("since"), 10),
                    until=one_line(request.GET.get("until"), 10))


@never_cache
@login_required
def security_log(request):
    events = _own_events(request).order_by("-sequence")
    tag_choices = sorted(set(SecurityEvent.objects.filter(user=request.user)
                             .order_by().values_list("tag", flat=True).distinct()))
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/security_log.html", {
        "page": page, "tags": tag_choices, "chosen": one_line(request.GET.get("tag"), 100),
        "since": one_line(request.GET.get("since"), 10),
        "until": one_line(request.GET.get("until"), 10),
        "export_query": _export_query(request),
    })


@never_cache
@login_required
@require_GET
def security_log_export(request, fmt: str):
    """The same events as the log page shows with these filters, as JSON Lines or CSV."""
    return export_response(_own_events(request), fmt, "security-log")


def _export_query(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def delete_account(request):
    user = request.user
    blocking = services.deletion_blockers(user)
    error = ""
    if request.method == "POST":
        try:
            services.delete_account(request, user, confirmation=_field(request, "confirm", 200))
        except ValidationError as exc:
            error = exc.message
        else:
            auth_logout(request)
            messages.info(request, _("Your account was deleted."))
            return redirect("home")
    return render(request, "accounts/delete.html", {"blocking": blocking, "error": error},
                  status=400 if error else 200)
