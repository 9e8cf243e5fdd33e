"""WebAuthn security keys and passkeys (py_webauthn).

The relying party comes from settings (BASTION_WEBAUTHN_RP_ID / _ORIGIN, by default the base
URL's host and origin), never from the request's Host header. Challenges live in the
server-side session and are single-use.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from bastion.core.errors import ValidationError

from .models import WebAuthnCredential

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

logger = logging.getLogger(__name__)

CHALLENGE_SECONDS = 300
REGISTER = "webauthn_register"
AUTHENTICATE = "webauthn_authenticate"
PASSKEY = "webauthn_passkey"

KEY_REFUSED = "The security key's answer could not be verified. Try again, or use another method."


def _webauthn():
    """py_webauthn, imported by the first request that needs it.

    It brings cryptography and pyOpenSSL along, a large share of a server process's memory,
    and only the security-key and passkey pages use it.
    """
    import webauthn
    import webauthn.helpers.structs

    return webauthn, webauthn.helpers.structs


# webauthn.helpers has these two, but importing it loads the whole library (see _webauthn);
# challenges and credential ids are stored with them on every security-key page.
def bytes_to_base64url(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode("ascii").rstrip("=")


def base64url_to_bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def relying_party() -> tuple[str, str]:
    """(RP ID, expected origin)."""
    return settings.WEBAUTHN_RP_ID, settings.WEBAUTHN_ORIGIN


def user_handle(user) -> bytes:
    if not user.webauthn_handle:
        user.webauthn_handle = secrets.token_hex(32)
        user.save(update_fields=["webauthn_handle"])
    return bytes.fromhex(user.webauthn_handle)


def _descriptors(user) -> list[PublicKeyCredentialDescriptor]:
    _, structs = _webauthn()
    descriptors = []
    for cred in WebAuthnCredential.objects.filter(user=user):
        transports = []
        for name in cred.transports or []:
            try:
                transports.append(structs.AuthenticatorTransport(name))
            except ValueError:
                pass
        descriptors.append(structs.PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(cred.credential_id), transports=transports or None))
    return descriptors


def _remember(request, purpose: str, challenge: bytes) -> None:
    request.session[purpose] = {"challenge": bytes_to_base64url(challenge), "at": int(time.time())}


def _take_challenge(request, purpose: str) -> bytes:
    stored = request.session.pop(purpose, None)
    if not isinstance(stored, dict) or time.time() - stored.get("at", 0) > CHALLENGE_SECONDS:
        raise ValidationError("The security key request expired. Reload the page and try again.")
    return base64url_to_bytes(stored["challenge"])


def _parse(credential_json: str) -> dict:
    try:
        data = json.loads(credential_json)
    except (TypeError, ValueError):
        raise ValidationError("No answer from a security key was received.") from None
    if not isinstance(data, dict) or not isinstance(data.get("rawId"), str):
        raise ValidationError("No answer from a security key was received.")
    return data


def registration_options(request, user) -> str:
    webauthn, structs = _webauthn()
    rp_id, _origin = relying_party()
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=user_handle(user),
        user_name=user.username,
        user_display_name=user.username,
        attestation=structs.AttestationConveyancePreference.NONE,
        authenticator_selection=structs.AuthenticatorSelectionCriteria(
            # Discoverable when the authenticator can, so the key may later be a passkey.
            resident_key=structs.ResidentKeyRequirement.PREFERRED,
            user_verification=structs.UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user),
    )
    _remember(request, REGISTER, options.challenge)
    return webauthn.options_to_json(options)


def register(request, user, *, name: str, credential_json: str,
             passwordless: bool = False) -> WebAuthnCredential:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValidationError("Give the security key a name of 1 to 64 characters.")
    if WebAuthnCredential.objects.filter(user=user, name=name).exists():
        raise ValidationError("You already have a security key with that name.")
    challenge = _take_challenge(request, REGISTER)
    data = _parse(credential_json)
    rp_id, origin = relying_party()
    webauthn, _ = _webauthn()
    try:
        verified = webauthn.verify_registration_response(
            credential=data, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin)
    except Exception as exc:  # the library raises many types for malformed input
        logger.info("webauthn registration refused: %s", exc)
        raise ValidationError(KEY_REFUSED) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if WebAuthnCredential.objects.filter(credential_id=credential_id).exists():
        raise ValidationError("This security key is already registered.")
    if passwordless and not verified.user_verified:
        raise ValidationError("This key did not verify you (no PIN or biometric), so it cannot "
                              "sign in without a password. Register it without the passkey option.")
    transports = data.get("response", {}).get("transports") or []
    return WebAuthnCredential.objects.create(
        user=user, name=name, credential_id=credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str)][:8],
        user_verified=verified.user_verified, passwordless=passwordless)


def authentication_options(request, user=None) -> str:
    """Options for a second-factor check (``user``) or a passkey sign-in (no user)."""
    webauthn, structs = _webauthn()
    rp_id, _origin = relying_party()
    if user is None:
        options = webauthn.generate_authentication_options(
            rp_id=rp_id, allow_credentials=[],
            user_verification=structs.UserVerificationRequirement.REQUIRED)
        _remember(request, PASSKEY, options.challenge)
    else:
        options = webauthn.generate_authentication_options(
            rp_id=rp_id, allow_credentials=_descriptors(user),
            user_verification=structs.UserVerificationRequirement.PREFERRED)
        _remember(request, AUTHENTICATE, options.challenge)
    return webauthn.options_to_json(options)


def authenticate(request, credential_json: str, *, user=None) -> WebAuthnCredential:
    """Verify an assertion: for ``user`` as a second factor, or as a passkey when None."""
    passkey = user is None
    challenge = _take_challenge(request, PASSKEY if passkey else AUTHENTICATE)
    data = _parse(credential_json)
    try:
        credential_id = bytes_to_base64url(base64url_to_bytes(data["rawId"]))
    except Exception:
        raise ValidationError(KEY_REFUSED) from None
    found = WebAuthnCredential.objects.select_related("user").filter(credential_id=credential_id)
    found = found.filter(passwordless=True) if passkey else found.filter(user=user)
    credential = found.first()
    if credential is None:
        raise ValidationError("This security key is not registered for this account."
                              if not passkey else
                              "This passkey is not set up for password-free sign-in here.")
    if passkey:
        handle = (data.get("response") or {}).get("userHandle")
        expected = bytes_to_base64url(bytes.fromhex(credential.user.webauthn_handle or "00"))
        if not isinstance(handle, str) or not secrets.compare_digest(
                handle.rstrip("="), expected.rstrip("=")):
            raise ValidationError(KEY_REFUSED)
    rp_id, origin = relying_party()
    webauthn, _ = _webauthn()
    try:
        verified = webauthn.verify_authentication_response(
            credential=data, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=bytes(credential.public_key),
            credential_current_sign_count=credential.sign_count,
            require_user_verification=passkey)
    except Exception as exc:
        logger.info("webauthn assertion refused: %s", exc)
        raise ValidationError(KEY_REFUSED) from None
    # The library already refused a counter that did not grow; store the new one.
    WebAuthnCredential.objects.filter(pk=credential.pk).update(
        sign_count=verified.new_sign_count, last_used=timezone.now())
    return credential
