"""Account operations. Each change of state records a security event and, where the
owner should know, sends a notification. Views call these and render the outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.text import format_lazy
from django.utils.translation import gettext as _, gettext_lazy

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from . import languages, notifications, recovery, sessions, signals, signup, throttle
from .models import EmailAddress, SignupStatus, TOTPDevice, UserSession, WebAuthnCredential

USERNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$")
VERIFY_SALT = "bastion.accounts.verify-email"


def _info(request) -> RequestInfo:
    return RequestInfo.from_request(request)


def _django_messages(exc: DjangoValidationError) -> str:
    return " ".join(exc.messages)


# --- creating accounts --------------------------------------------------------------

def create_user(username: str, email: str, password: str | None = None, *, is_admin: bool = False,
                email_verified: bool = False, info: RequestInfo | None = None, actor=None):
    """Create an account. Without a password the account can only use tokens until one is set."""
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email, is_superuser=is_admin, is_staff=is_admin,
                    email_verified=email_verified)
        if password:
            validate_password(password, user)
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        record(tags.ACCOUNT_CREATE, info=info, actor=actor or user, user=user,
               additional={"admin": is_admin})
    return user


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise ValidationError(_("Usernames are 1 to 50 letters, digits, '.', '_' or '-', and start "
                              "and end with a letter or digit."))
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise ValidationError(_("That username is taken. Choose another."))
    return username


def check_new_email(email: str) -> str:
    email = BaseUserManager.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(_("Enter a valid email address.")) from None
    if (get_user_model().objects.filter(email__iexact=email).exists()
            or EmailAddress.objects.filter(email__iexact=email).exists()):
        raise ValidationError(_("That email address is already in use by an account."))
    return email


def register(request, *, username: str, email: str, password: str, invitation_token: str = ""):
    """Open an account as ``BASTION_SIGNUP`` allows (see ``signup``); refusals store nothing.

    Through an invitation the address is the invitation's (``email`` is ignored) and counts
    as verified: the link reached it.
    """
    invitation = None
    if invitation_token:
        invitation = signup.find_invitation(invitation_token)
        if invitation is None:
            raise ValidationError(str(signup.INVALID_LINK))
        email = invitation.email
    # First, so that a sign-up the mode refuses learns nothing about taken names or addresses.
    signup.check_may_register(email, invitation)
    username = check_username(username)
    email = check_new_email(email)
    probe = get_user_model()(username=username, email=email)
    try:
        validate_password(password, probe)
    except DjangoValidationError as exc:
        raise ValidationError(_django_messages(exc)) from None
    with transaction.atomic():
        if invitation is not None:
            # Read again under lock: two sign-ups racing on one link must not both pass.
            invitation = signup.claim(invitation_token)
        user = create_user(username, email, password, info=_info(request),
                           email_verified=invitation is not None)
        signup.start(user, invitation=invitation, info=_info(request))
        if invitation is None:
            send_verification(request, user, email)
    return user


# --- email addresses ------------------------------------------------------------------

def verification_token(user, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email.lower()}, salt=VERIFY_SALT, compress=True)


def send_verification(request, user, email: str) -> None:
    link = notifications.site_url() + reverse(
        "accounts:verify_email", args=[verification_token(user, email)])
    hours = settings.EMAIL_VERIFY_SECONDS // 3600
    notifications.send(email, gettext_lazy("Verify your email address"), format_lazy(
        gettext_lazy("Hello {username},\n\nPlease confirm that {email} is your address by "
                     "opening this link within {hours} hours:\n\n{link}\n\nIf you did not "
                     "create an account or add this address, ignore this message."),
        username=user.username, email=email, hours=hours, link=link),
        language=languages.of_user(user))


def verification_target(token: str):
    """(user, address) a verification link is for, or ValidationError; changes nothing.

    Opening the link only shows this (mail scanners open links); the address is verified
    by the confirmation the page posts (:func:`verify_email`).
    """
    try:
        payload = signing.loads(token, salt=VERIFY_SALT, max_age=settings.EMAIL_VERIFY_SECONDS)
    except signing.SignatureExpired:
        raise ValidationError(_("This verification link has expired. Ask for a new one on your "
                              "account's email page.")) from None
    except signing.BadSignature:
        raise ValidationError(_("This verification link is not valid.")) from None
    user = get_user_model().objects.filter(pk=payload.get("u")).first()
    email = str(payload.get("e", ""))
    if user is None:
        raise ValidationError(_("This verification link is not valid."))
    if user.email.lower() != email and not EmailAddress.objects.filter(
            user=user, email__iexact=email).exists():
        raise ValidationError(_("This address is no longer on the account."))
    return user, email


def is_verified(user, email: str) -> bool:
    if user.email.lower() == email.lower():
        return user.email_verified
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def verify_email(request, token: str):
    """Mark the address in ``token`` verified; return (user, email)."""
    user, email = verification_target(token)
    with transaction.atomic():
        if user.email.lower() == email:
            if user.email_verified:
                return user, user.email
            user.email_verified = True
            user.save(update_fields=["email_verified"])
            address = user.email
        else:
            extra = EmailAddress.objects.filter(user=user, email__iexact=email).first()
            if extra is None:
                raise ValidationError(_("This address is no longer on the account."))
            if extra.verified:
                return user, extra.email
            extra.verified = True
            extra.save(update_fields=["verified"])
            address = extra.email
        record(tags.ACCOUNT_EMAIL_VERIFIED, info=_info(request), actor=user, user=user,
               additional={"email": address})
        signup.on_address_verified(user, address, info=_info(request))
    return user, address


def add_email(request, user, email: str) -> EmailAddress:
    email = check_new_email(email)
    if EmailAddress.objects.filter(user=user).count() >= 5:
        raise ValidationError(_("An account can have at most 5 additional addresses."))
    with transaction.atomic():
        address = EmailAddress.objects.create(user=user, email=email)
        record(tags.ACCOUNT_EMAIL_ADD, info=_info(request), actor=user, user=user,
               additional={"email": email})
        send_verification(request, user, email)
        notifications.notify(user, gettext_lazy("Email address added"), format_lazy(
            gettext_lazy("The address {email} was added to your account."), email=email))
    return address


def remove_email(request, user, address: EmailAddress) -> None:
    with transaction.atomic():
        address.delete()
        record(tags.ACCOUNT_EMAIL_REMOVE, info=_info(request), actor=user, user=user,
               additional={"email": address.email})
        notifications.notify(user, gettext_lazy("Email address removed"), format_lazy(
            gettext_lazy("The address {email} was removed from your account."),
            email=address.email), also=[address.email])


def make_primary(request, user, address: EmailAddress) -> None:
    if not address.verified:
        raise ValidationError(_("Verify this address before making it your primary address."))
    with transaction.atomic():
        old_email, old_verified = user.email, user.email_verified
        new_email = address.email
        # The swap goes through a placeholder so both unique constraints hold at every step.
        address.email, address.verified = f"swap-{address.pk}@invalid.invalid", old_verified
        address.save(update_fields=["email", "verified"])
        user.email, user.email_verified = new_email, True
        user.save(update_fields=["email", "email_verified"])
        address.email = old_email
        address.save(update_fields=["email"])
        record(tags.ACCOUNT_EMAIL_PRIMARY_CHANGE, info=_info(request), actor=user, user=user,
               additional={"old": old_email, "new": user.email})
        notifications.notify(user, gettext_lazy("Primary email address changed"), format_lazy(
            gettext_lazy("Your primary address changed from {old} to {new}."),
            old=old_email, new=user.email), also=[old_email])


# --- second factors -------------------------------------------------------------------

def second_factor_count(user) -> int:
    return (TOTPDevice.objects.filter(user=user).count()
            + WebAuthnCredential.objects.filter(user=user).count())


def has_two_factor(user) -> bool:
    # Asked on every upload (twice): one query where an authenticator app answers it.
    return (TOTPDevice.objects.filter(user=user).exists()
            or WebAuthnCredential.objects.filter(user=user).exists())


# Lazy: each reader gets them in their language (the APIs, English). A refusal's text is made
# a str where it is raised or returned, so exceptions and reason phrases carry plain text.
NEEDS_SECOND_FACTOR = gettext_lazy(
    "Enable two-factor authentication (an authenticator app or a security key) before "
    "publishing or creating tokens.")
NEEDS_VERIFIED_EMAIL = gettext_lazy(
    "Verify your primary email address before publishing or creating tokens.")
NEEDS_VERIFIED_EMAIL_FOR_2FA = gettext_lazy(
    "Verify your primary email address before setting up two-factor authentication.")
NEEDS_TWO_FACTOR_FIRST = gettext_lazy(
    "Set up two-factor authentication first; recovery codes back it up.")
PENDING_APPROVAL = gettext_lazy(
    "An administrator has not approved your account yet: until then it can read nothing, "
    "create nothing and mint no token.")


def is_admin(user) -> bool:
    """An active site administrator; anonymous visitors and disabled accounts are not."""
    return bool(user is not None and getattr(user, "is_authenticated", False)
                and user.is_active and user.is_superuser)


def can_publish(user) -> tuple[bool, str]:
    """Whether ``user`` may create projects, tokens and roles, and if not, why."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False, _("Sign in first.")
    if user.signup_status == SignupStatus.PENDING:
        return False, str(PENDING_APPROVAL)
    if not user.email_verified:
        return False, str(NEEDS_VERIFIED_EMAIL)
    if settings.REQUIRE_2FA and not has_two_factor(user):
        return False, str(NEEDS_SECOND_FACTOR)
    from .account_recovery import must_enrol_second_factor

    # Under REQUIRE_2FA the check above already covers a recovered account.
    if not settings.REQUIRE_2FA and must_enrol_second_factor(user):
        return False, str(NEEDS_SECOND_FACTOR)
    return True, ""


def require_verified_email(user) -> None:
    if not user.email_verified:
        raise ValidationError(str(NEEDS_VERIFIED_EMAIL_FOR_2FA))


def _after_factor_added(request, user, method: str, name: str, *, by_admin: bool = False,
                        admin=None, info: RequestInfo | None = None) -> list[str] | None:
    """Events, mail and fresh recovery codes when the first factor arrives.

    ``by_admin``: enrolled by an administrator (``admin``; None on the command line), not by
    the user; ``request`` is then None.
    """
    info = info or _info(request)
    actor = admin if by_admin else user
    record(tags.ACCOUNT_TWO_FACTOR_METHOD_ADDED, info=info, actor=actor, user=user,
           additional={"method": method, "name": name, **({"by_admin": True} if by_admin else {})})
    if method == "webauthn":
        what = gettext_lazy("A security key named {name} was added to your account's two-factor "
                            "authentication.")
    else:
        what = gettext_lazy("An authenticator app named {name} was added to your account's "
                            "two-factor authentication.")
    if by_admin and method == "webauthn":
        what = gettext_lazy("A security key named {name} was added to your account's two-factor "
                            "authentication by an administrator of the index, who was shown its "
                            "secret so as to hand it to you. If you did not ask for it, tell the "
                            "administrators at once.")
    elif by_admin:
        what = gettext_lazy("An authenticator app named {name} was added to your account's "
                            "two-factor authentication by an administrator of the index, who "
                            "was shown its secret so as to hand it to you. If you did not ask "
                            "for it, tell the administrators at once.")
    notifications.notify(user, gettext_lazy("Two-factor method added"),
                         format_lazy(what, name=repr(name)))
    codes = None
    if recovery.remaining(user) == 0:
        codes = recovery.generate(user)
        record(tags.ACCOUNT_RECOVERY_CODES_GENERATED, info=info, actor=actor, user=user)
    return codes


def add_totp(request, user, *, name: str, secret: str, code: str) -> tuple[TOTPDevice, list | None]:
    from . import totp

    require_verified_email(user)
    name = (name or "").strip() or "Authenticator app"
    if len(name) > 64:
        raise ValidationError(_("Names are at most 64 characters."))
    step = totp.matching_step(secret, code)
    if step is None:
        raise ValidationError(_("That code is not valid. Check your device's clock and enter the "
                              "current six-digit code."))
    with transaction.atomic():
        device = TOTPDevice.objects.create(user=user, name=name, secret=secret, last_used_step=step)
        codes = _after_factor_added(request, user, "totp", name)
    sessions.rotate(request)
    return device, codes


@dataclass(frozen=True)
class TotpEnrolment:
    """What an administrator hands over once: the app's secret and maybe recovery codes."""

    device: TOTPDevice
    secret: str
    uri: str  # otpauth://, what the QR code holds
    recovery_codes: list[str] | None  # None: the account already had unused codes


def enrol_totp(user, *, name: str = "Authenticator app", actor=None,
               info: RequestInfo | None = None) -> TotpEnrolment:
    """An administrator enrols an authenticator app for ``user`` (``bastion admin add-totp``).

    For accounts that publish from the command line only (CI, first steps): without a second
    factor their tokens cannot upload under ``BASTION_REQUIRE_2FA``. The same rules, event and
    mail as the web enrolment; no code is asked for, since nobody holds the app yet.
    """
    from . import totp

    if not user.is_active:
        raise ValidationError(_("The account '{username}' is disabled.").format(
            username=user.username))
    require_verified_email(user)
    name = (name or "").strip() or "Authenticator app"
    if len(name) > 64:
        raise ValidationError(_("Names are at most 64 characters."))
    secret = totp.new_secret()
    with transaction.atomic():
        device = TOTPDevice.objects.create(user=user, name=name, secret=secret)
        codes = _after_factor_added(None, user, "totp", name, by_admin=True, admin=actor,
                                    info=info)
    return TotpEnrolment(device, secret, totp.provisioning_uri(secret, user.username), codes)


def add_security_key(request, user, *, name: str, credential_json: str,
                     passwordless: bool) -> tuple[WebAuthnCredential, list | None]:
    from . import security_keys

    require_verified_email(user)
    with transaction.atomic():
        credential = security_keys.register(request, user, name=name,
                                            credential_json=credential_json,
                                            passwordless=passwordless)
        codes = _after_factor_added(request, user, "webauthn", credential.name)
        if passwordless:
            record(tags.ACCOUNT_PASSKEY_CHANGE, info=_info(request), actor=user, user=user,
                   additional={"name": credential.name, "passwordless": True})
    sessions.rotate(request)
    return credential, codes


def remove_second_factor(request, user, device) -> None:
    method = "webauthn" if isinstance(device, WebAuthnCredential) else "totp"
    with transaction.atomic():
        device.delete()
        record(tags.ACCOUNT_TWO_FACTOR_METHOD_REMOVED, info=_info(request), actor=user, user=user,
               additional={"method": method, "name": device.name})
        if not has_two_factor(user):
            # Without a second factor, recovery codes would be a bypass of nothing.
            user.recovery_codes.all().delete()
        notifications.notify(user, gettext_lazy("Two-factor method removed"), format_lazy(
            gettext_lazy("The security key {name} was removed from your account's two-factor "
                         "authentication.") if method == "webauthn" else
            gettext_lazy("The authenticator app {name} was removed from your account's "
                         "two-factor authentication."), name=repr(device.name)))
    sessions.rotate(request)


def set_language(request, user, code: str) -> None:
    """The account's language for pages and mail; empty: the browser's (mail: English)."""
    code = (code or "").strip()
    if code and code not in languages.codes():
        raise ValidationError(_("Choose one of the offered languages."))
    if code == user.language:
        return
    with transaction.atomic():
        user.language = code
        user.save(update_fields=["language"])
        record(tags.ACCOUNT_LANGUAGE_CHANGE, info=_info(request), actor=user, user=user,
               additional={"language": code})


def set_dependency_digest(request, user, enabled: bool) -> None:
    """Whether the account receives the weekly digest of vulnerable dependencies."""
    enabled = bool(enabled)
    if enabled == user.dependency_digest:
        return
    with transaction.atomic():
        user.dependency_digest = enabled
        user.save(update_fields=["dependency_digest"])
        record(tags.ACCOUNT_DEPENDENCY_DIGEST_CHANGE, info=_info(request), actor=user, user=user,
               additional={"enabled": enabled})


def set_passwordless(request, user, credential: WebAuthnCredential, enabled: bool) -> None:
    if enabled and not credential.user_verified:
        raise ValidationError(_("This key did not verify you with a PIN or biometric when it was "
                              "registered, so it cannot sign in without a password."))
    with transaction.atomic():
        credential.passwordless = enabled
        credential.save(update_fields=["passwordless"])
        record(tags.ACCOUNT_PASSKEY_CHANGE, info=_info(request), actor=user, user=user,
               additional={"name": credential.name, "passwordless": enabled})
        notifications.notify(
            user, gettext_lazy("Passkey sign-in enabled") if enabled
            else gettext_lazy("Passkey sign-in disabled"), format_lazy(
                gettext_lazy("Signing in without a password using the key {name} is now "
                             "allowed.") if enabled else
                gettext_lazy("Signing in without a password using the key {name} is now "
                             "turned off."), name=repr(credential.name)))


def regenerate_recovery_codes(request, user) -> list[str]:
    if not has_two_factor(user):
        raise ValidationError(str(NEEDS_TWO_FACTOR_FIRST))
    with transaction.atomic():
        codes = recovery.generate(user)
        record(tags.ACCOUNT_RECOVERY_CODES_REGENERATED, info=_info(request), actor=user, user=user)
        notifications.notify(user, gettext_lazy("New recovery codes"), gettext_lazy(
            "New recovery codes were generated for your account; the old ones no longer work."))
    return codes


def use_recovery_code(request, user, code: str) -> bool:
    with transaction.atomic():
        if not recovery.use(user, code):
            return False
        left = recovery.remaining(user)
        record(tags.ACCOUNT_RECOVERY_CODES_USED, info=_info(request), actor=user, user=user,
               additional={"remaining": left})
        notifications.notify(user, gettext_lazy("A recovery code was used"), format_lazy(
            gettext_lazy("A recovery code was used to sign in to your account. {left} unused "
                         "codes remain. If you lost your second factor, set up a new one and "
                         "generate new codes."), left=left))
    return True


# --- passwords --------------------------------------------------------------------------

def check_new_password(user, password: str, confirm: str) -> None:
    if password != confirm:
        raise ValidationError(_("The two passwords do not match."))
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError(_django_messages(exc)) from None


class TooManyAttempts(ValidationError):
    """Refused by the throttle before anything was checked; retry after ``wait`` seconds."""

    def __init__(self, message: str, wait: int):
        super().__init__(message, status=429)
        self.wait = wait


def change_password(request, user, *, current: str, new: str, confirm: str) -> None:
    """Needs the current password, counted like a sign-in with the account's limit.

    A stolen session cookie must not turn into unlimited password guesses here (a right
    guess would also end every other session, the owner's included).
    """
    from django.contrib.auth import update_session_auth_hash

    # Outside any transaction: the count must be seen by other processes at once.
    attempt = throttle.reserve([throttle.user_limit(user),
                                throttle.ip_limit(_info(request).ip_address)])
    if attempt.refused:
        raise TooManyAttempts(
            _("Too many wrong passwords for this account or from your network. Try again in "
              "{wait}.").format(wait=throttle.describe_wait(attempt.wait)), attempt.wait)
    if not user.check_password(current):
        record_login_failure(request, user, reason="password change: current password")
        raise ValidationError(_("Your current password is not correct."))
    attempt.release()
    check_new_password(user, new, confirm)
    with transaction.atomic():
        user.set_password(new)
        user.save(update_fields=["password"])
        old_key = request.session.session_key
        update_session_auth_hash(request, user)  # keeps this session, under a new key
        UserSession.objects.filter(session_key=old_key).update(
            session_key=request.session.session_key)
        ended = sessions.end_sessions(user, keep_key=request.session.session_key)
        record(tags.ACCOUNT_PASSWORD_CHANGE, info=_info(request), actor=user, user=user,
               additional={"sessions_ended": ended})
        notifications.notify(user, gettext_lazy("Password changed"), gettext_lazy(
            "Your password was changed. Every other signed-in session was signed out."))


def find_account(identifier: str):
    identifier = (identifier or "").strip()
    if not identifier:
        return None
    User = get_user_model()
    if "@" in identifier:
        return User.objects.filter(email__iexact=identifier, is_active=True).first()
    return User.objects.filter(username__iexact=identifier, is_active=True).first()


def request_password_reset(request, identifier: str) -> None:
    """Mail a reset link if the account exists; the caller answers the same either way."""
    user = find_account(identifier)
    if user is None:
        return
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    link = notifications.site_url() + reverse(
        "accounts:password_reset_confirm", args=[uid, default_token_generator.make_token(user)])
    minutes = settings.PASSWORD_RESET_TIMEOUT // 60
    with transaction.atomic():
        record(tags.ACCOUNT_PASSWORD_RESET_REQUEST, info=_info(request), actor=None, user=user)
        notifications.send(user.email, gettext_lazy("Reset your password"), format_lazy(
            gettext_lazy("Hello {username},\n\nSomeone (hopefully you) asked to reset the "
                         "password of your account. Open this link within {minutes} minutes to "
                         "choose a new one; it works once:\n\n{link}\n\nIf this was not you, "
                         "ignore this message: your password has not changed."),
            username=user.username, minutes=minutes, link=link),
            language=languages.of_user(user))


def user_for_reset(uidb64: str, token: str):
    """The account a reset link is for, or None if the link is invalid, used or expired."""
    try:
        pk = force_str(urlsafe_base64_decode(uidb64))
        user = get_user_model().objects.filter(pk=int(pk), is_active=True).first()
    except (ValueError, TypeError, OverflowError):
        return None
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def reset_password(request, user, *, new: str, confirm: str) -> None:
    check_new_password(user, new, confirm)
    with transaction.atomic():
        user.set_password(new)
        user.save(update_fields=["password"])
        ended = sessions.end_sessions(user)
        record(tags.ACCOUNT_PASSWORD_RESET, info=_info(request), actor=user, user=user,
               additional={"sessions_ended": ended})
        notifications.notify(user, gettext_lazy("Password reset"), gettext_lazy(
            "Your password was reset with a link sent to this address. Every signed-in session "
            "was signed out."))


# --- sign-in bookkeeping -----------------------------------------------------------------

def record_login(request, user, *, method: str) -> None:
    with transaction.atomic():
        record(tags.ACCOUNT_LOGIN_SUCCESS, info=_info(request), actor=user, user=user,
               additional={"method": method})


def record_login_failure(request, user, *, reason: str) -> None:
    with transaction.atomic():
        record(tags.ACCOUNT_LOGIN_FAILURE, info=_info(request), actor=None, user=user,
               additional={"reason": reason})


def record_simple(request, user, tag: str, **additional) -> None:
    with transaction.atomic():
        record(tag, info=_info(request), actor=user, user=user, additional=additional)


# --- deleting -----------------------------------------------------------------------------

def deletion_blockers(user) -> list[str]:
    """What must be done before ``user``'s account can be deleted, a sentence each.

    The apps that hold something of the account's answer (``signals.deletion_blockers``):
    a project it alone owns, say.
    """
    reasons: list[str] = []
    for _receiver, found in signals.deletion_blockers.send(sender=type(user), user=user):
        reasons.extend(found or [])
    return reasons


def delete_account(request, user, *, confirmation: str) -> None:
    """Close the account for good.

    The row itself stays, emptied and disabled: security events reference it by id inside
    their hash chain (a deleted row would null those ids and break the chain), and keeping
    the username reserved stops someone else from taking it over to impersonate its owner.
    What other apps hold of the account (project roles, API tokens) goes with it, through
    ``signals.account_deleted``.
    """
    if confirmation.strip() != user.username:
        raise ValidationError(_("Type your username exactly to confirm the deletion."))
    blocking = deletion_blockers(user)
    if blocking:
        raise ValidationError(" ".join(blocking))
    with transaction.atomic():
        address = user.email
        notifications.send(address, gettext_lazy("Account deleted"), format_lazy(
            gettext_lazy("Hello {username},\n\nYour account was deleted. If this was not you, "
                         "contact the index's administrators at once."),
            username=user.username), language=languages.of_user(user))
        sessions.end_sessions(user)
        signals.account_deleted.send(sender=type(user), user=user, info=_info(request))
        for related in (EmailAddress, TOTPDevice, WebAuthnCredential):
            related.objects.filter(user=user).delete()
        user.recovery_codes.all().delete()
        user.email = f"deleted-{user.pk}@invalid.invalid"
        user.email_verified = False
        user.first_name = user.last_name = ""
        user.webauthn_handle = None
        user.is_active = user.is_staff = user.is_superuser = False
        user.set_unusable_password()
        user.save()
        record(tags.ACCOUNT_DELETE, info=_info(request), actor=user, user=user)
