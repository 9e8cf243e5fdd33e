"""Trusted publishers: adding and removing them, pending ones, and the token exchange.

Every change here is a security event. Removing a publisher revokes the tokens minted for
it; the exchange (:func:`exchange`) verifies a CI run's OIDC token, finds the publishers it
matches, pins the ids they were given only names for, creates a pending publisher's
project, and mints a short-lived upload token limited to the matched projects.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from packaging.utils import canonicalize_name

from bastion.accounts.services import can_publish, has_two_factor
from bastion.core import oidc
from bastion.core.text import one_line
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.services import RequestInfo, record
from bastion.packaging import services as packaging
from bastion.packaging.access import check_may_create
from bastion.packaging.notifications import notify_owners
from bastion.packaging.models import Project, RoleName
from bastion.tokens import services as tokens

from . import keys
from .models import Issuer, IssuerKind, Publisher, SeenJti, TrustedOnly

# Longer than any CI's ID token; bounds the work an anonymous request can cause.
MAX_JWT_LENGTH = 16 * 1024
# Clock skew allowed between the issuer and us, on exp, nbf and iat.
LEEWAY_SECONDS = 30
# CI tokens live minutes; one valid for longer than this is refused, since its jti would
# have to be remembered that long to refuse it a second time.
MAX_TOKEN_LIFETIME = timedelta(hours=24)
MAX_CUSTOM_CLAIMS = 20
MAX_FIELD = 255

_GITHUB_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_WORKFLOW = re.compile(r"^[A-Za-z0-9._-]{1,200}\.ya?ml$")
_GITLAB_NAMESPACE = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
_GITLAB_PROJECT = re.compile(r"^[A-Za-z0-9_.-]+$")
_CI_PATH = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\.ya?ml$")
_ID = re.compile(r"^[0-9]{1,20}$")
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")


class ExchangeError(Exception):
    """The token exchange refused; ``code`` and ``description`` as standards.md §3 lists."""

    def __init__(self, code: str, description: str):
        # Descriptions quote the caller's claims: always one printable line.
        description = one_line(str(description), 500)
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class Minted:
    token: str
    expires: int  # unix seconds
    projects: tuple[str, ...]


# --- publishers -----------------------------------------------------------------------------

def _text_field(fields: dict, name: str, label: str, pattern=None, *, required=True) -> str:
    value = fields.get(name, "")
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        if required:
            raise ValidationError(_("{field} is required.").format(field=label))
        return ""
    if len(value) > MAX_FIELD or any(ord(c) < 32 for c in value) or (
            pattern is not None and not pattern.match(value)):
        raise ValidationError(_("{value} is not a valid {field}.").format(
            value=repr(value[:80]), field=label))
    return value


def clean_fields(issuer: Issuer, fields: dict) -> dict:
    """The publisher fields for ``issuer``'s kind, checked; ValidationError says what is wrong.

    GitHub: owner, repository, workflow, environment, owner_id, repository_id (the ids
    optional: learned on first use). GitLab: namespace, project, ci_config_path, environment,
    namespace_id, project_id. Google: email, subject. Custom: claims (name → value), which
    must name every claim the issuer identifies publishers by.
    """
    if not isinstance(fields, dict):
        raise ValidationError(_("The publisher's fields are missing."))
    kind = issuer.kind
    if kind == IssuerKind.GITHUB:
        cleaned = {
            "owner": _text_field(fields, "owner", _("owner"), _GITHUB_OWNER),
            "repository": _text_field(fields, "repository", _("repository"), _GITHUB_REPO),
            "workflow": _text_field(fields, "workflow", _("workflow file name"), _WORKFLOW),
            "environment": _text_field(fields, "environment", _("environment"), required=False),
            "owner_id": _text_field(fields, "owner_id", _("owner id"), _ID, required=False),
            "repository_id": _text_field(fields, "repository_id", _("repository id"), _ID,
                                         required=False),
        }
    elif kind == IssuerKind.GITLAB:
        cleaned = {
            "namespace": _text_field(fields, "namespace", _("namespace"), _GITLAB_NAMESPACE),
            "project": _text_field(fields, "project", _("project"), _GITLAB_PROJECT),
            "ci_config_path": _text_field(fields, "ci_config_path", _("CI file path"), _CI_PATH),
            "environment": _text_field(fields, "environment", _("environment"), required=False),
            "namespace_id": _text_field(fields, "namespace_id", _("namespace id"), _ID,
                                        required=False),
            "project_id": _text_field(fields, "project_id", _("project id"), _ID,
                                      required=False),
        }
    elif kind == IssuerKind.GOOGLE:
        cleaned = {
            "email": _text_field(fields, "email", _("service account email"), _EMAIL),
            "subject": _text_field(fields, "subject", _("subject"), required=False),
        }
    else:
        claims = fields.get("claims")
        if not isinstance(claims, dict) or not claims or len(claims) > MAX_CUSTOM_CLAIMS:
            raise ValidationError(_("Give between 1 and {count} claims the token must "
                                    "carry.").format(count=MAX_CUSTOM_CLAIMS))
        cleaned_claims = {}
        for name, value in claims.items():
            if not isinstance(name, str) or not _CLAIM_NAME.match(name):
                raise ValidationError(_("{name} is not a valid claim name.").format(
                    name=repr(str(name)[:80])))
            cleaned_claims[name] = _text_field({"v": value if not isinstance(value, int)
                                                else str(value)}, "v", name)
        missing = [name for name in issuer.identifying_claims if name not in cleaned_claims]
        if missing:
            raise ValidationError(_("The issuer {issuer} identifies publishers by {claims}: "
                                    "give a value for each.").format(
                issuer=issuer.name, claims=", ".join(missing)))
        cleaned = {"claims": cleaned_claims}
    if kind != IssuerKind.CUSTOM:
        cleaned = {key: value for key, value in cleaned.items() if value}
    return cleaned


def _spec(publisher: Publisher) -> oidc.Spec:
    issuer = publisher.issuer
    return oidc.spec_of(issuer.kind, publisher.fields, host=urlsplit(issuer.url).netloc)


def describe(publisher: Publisher) -> str:
    return f"{publisher.issuer.name}: {oidc.describe(_spec(publisher))}"


def _new_publisher(issuer: Issuer, fields: dict, **values) -> Publisher:
    cleaned = clean_fields(issuer, fields)
    publisher = Publisher(issuer=issuer, fields=cleaned, created=timezone.now(), **values)
    publisher.lookup = oidc.lookup_key(_spec(publisher), issuer.identifying_claims)[:600]
    return publisher


def _check_second_factor(user) -> None:
    # Whatever the site's policy: a publisher is a standing credential for the project.
    if not has_two_factor(user):
        raise packaging.PermissionDenied(_("Trusted publishers can only be changed from an "
                                           "account with two-factor authentication."))


def _check_owner(user, project: Project) -> None:
    allowed, why = can_publish(user)
    if not allowed:
        raise packaging.PermissionDenied(why)
    _check_second_factor(user)
    if packaging.role_of(user, project) != RoleName.OWNER:
        raise packaging.PermissionDenied(
            _("Only Owners of {project} can change its trusted publishers.").format(
                project=project.name))


def add_publisher(project: Project, issuer: Issuer, fields: dict, *, actor,
                  info: RequestInfo | None = None) -> Publisher:
    """An Owner lets a CI workflow publish ``project``."""
    _check_owner(actor, project)
    with transaction.atomic():
        publisher = _new_publisher(issuer, fields, project=project, created_by=actor)
        duplicate = Publisher.objects.filter(project=project, issuer=issuer,
                                             lookup=publisher.lookup)
        if any(p.fields == publisher.fields for p in duplicate):
            raise ValidationError(_("This publisher is already added to {project}.").format(
                project=project.name))
        publisher.save()
        record(tags.PROJECT_PUBLISHER_ADD, info=info, actor=actor, user=actor, project=project,
               additional={"publisher_id": publisher.pk, "publisher": describe(publisher),
                           "kind": issuer.kind})
        notify_owners(project, gettext_lazy("trusted publisher added"), format_lazy(
            gettext_lazy("{who} added a trusted publisher to {project}: {publisher}. Runs of "
                         "that workflow can now publish {project} without an API token."),
            who=actor.username, project=project.name, publisher=describe(publisher)))
    return publisher


def remove_publisher(publisher: Publisher, *, actor, info: RequestInfo | None = None) -> list[str]:
    """An Owner (or an administrator: ``actor`` None at the command line) removes a publisher;
    the tokens minted for it are revoked. Returns their ids."""
    project = publisher.project
    if project is None:
        raise ValidationError(_("This is a pending publisher; withdraw it instead."))
    if actor is not None and not getattr(actor, "is_superuser", False):
        _check_owner(actor, project)
    with transaction.atomic():
        revoked = tokens.revoke_publisher_tokens(publisher.token_key,
                                                 reason="trusted publisher removed",
                                                 info=info, actor=actor)
        record(tags.PROJECT_PUBLISHER_REMOVE, info=info, actor=actor, user=actor,
               project=project,
               additional={"publisher_id": publisher.pk, "publisher": describe(publisher),
                           "kind": publisher.issuer.kind, "revoked_tokens": revoked})
        notify_owners(project, gettext_lazy("trusted publisher removed"), format_lazy(
            gettext_lazy("{who} removed the trusted publisher {publisher} from {project}; "
                         "the upload tokens its runs held were revoked."),
            who=getattr(actor, "username", "") or gettext_lazy("an administrator"),
            project=project.name, publisher=describe(publisher)))
        publisher.delete()
    return revoked


def add_pending_publisher(name: str, issuer: Issuer, fields: dict, *, actor,
                          info: RequestInfo | None = None) -> Publisher:
    """A user reserves a project name for a publisher: its first run creates the project,
    with ``actor`` as Owner. The checks of creating a project apply now and again then."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(_("Give the name of the project to create."))
    name = name.strip()
    check_may_create(actor, name)
    _check_second_factor(actor)
    if packaging.find_project(name) is not None:
        raise ValidationError(_("The project {name} exists already: add the publisher on its "
                                "page instead.").format(name=name))
    packaging.check_new_project_name(name, actor)
    now = timezone.now()
    normalized = canonicalize_name(name)
    with transaction.atomic():
        if Publisher.objects.filter(pending_normalized_name=normalized, pending_expires__gt=now
                                    ).exclude(pending_owner=actor).exists():
            raise ValidationError(_("Someone else has a pending publisher for {name}.").format(
                name=name))
        publisher = _new_publisher(
            issuer, fields, pending_name=name, pending_normalized_name=normalized,
            pending_owner=actor, created_by=actor,
            pending_expires=now + timedelta(hours=settings.PENDING_PUBLISHER_HOURS))
        publisher.save()
        record(tags.ACCOUNT_PENDING_PUBLISHER_ADD, info=info, actor=actor, user=actor,
               additional={"publisher_id": publisher.pk, "name": name,
                           "publisher": describe(publisher),
                           "expires": publisher.pending_expires.isoformat()})
    return publisher


def remove_pending_publisher(publisher: Publisher, *, actor,
                             info: RequestInfo | None = None, reason: str = "withdrawn") -> None:
    if not publisher.is_pending:
        raise ValidationError(_("This publisher is no longer pending."))
    if actor is not None and actor != publisher.pending_owner and not actor.is_superuser:
        raise packaging.PermissionDenied(_("This pending publisher is not yours."))
    with transaction.atomic():
        record(tags.ACCOUNT_PENDING_PUBLISHER_REMOVE, info=info, actor=actor,
               user=publisher.pending_owner,
               additional={"publisher_id": publisher.pk, "name": publisher.pending_name,
                           "publisher": describe(publisher), "reason": reason})
        publisher.delete()


def expire_pending_publishers(*, now: datetime | None = None) -> int:
    """Remove pending publishers whose reservation ran out; how many."""
    now = now or timezone.now()
    expired = list(Publisher.objects.select_related("issuer", "pending_owner")
                   .filter(project__isnull=True, pending_expires__lte=now))
    for publisher in expired:
        remove_pending_publisher(publisher, actor=None, reason="expired")
    return len(expired)


# --- trusted-publishing-only mode -----------------------------------------------------------

def is_trusted_only(project: Project) -> bool:
    return TrustedOnly.objects.filter(project=project).exists()


TRUSTED_ONLY_REFUSAL = (
    "Project '{name}' is in trusted-publishing-only mode: only its trusted publishers can "
    "upload to it, not API tokens."
)


def check_token_may_upload(project: Project | None) -> None:
    """Refuse an upload with an account's API token to a trusted-publishing-only project."""
    if project is not None and is_trusted_only(project):
        raise packaging.PermissionDenied(TRUSTED_ONLY_REFUSAL.format(name=project.name))


def check_publisher_token(token, project: Project | None) -> None:
    """Refuse an upload with a minted token unless one of the publishers it was minted for
    still publishes ``project``: a project deleted and registered again under the same name
    within the token's minutes is not the project the publisher was trusted for."""
    ids = [int(part) for part in token.publisher_id.split(",") if part.isdigit()]
    if project is None or not Publisher.objects.filter(pk__in=ids, project=project).exists():
        raise packaging.PermissionDenied(
            "The trusted publisher this token was issued for no longer publishes "
            f"'{getattr(project, 'name', '')}'.")


def set_trusted_only(project: Project, enabled: bool, *, actor,
                     info: RequestInfo | None = None) -> list[str]:
    """An Owner switches trusted-publishing-only mode on (the account tokens scoped to the
    project are revoked, the Owners told) or off. Returns the revoked tokens' ids."""
    _check_owner(actor, project)
    with transaction.atomic():
        current = TrustedOnly.objects.select_for_update().filter(project=project).first()
        if enabled == (current is not None):
            return []
        revoked: list[str] = []
        if enabled:
            if not Publisher.objects.filter(project=project).exists():
                raise ValidationError(_("Add a trusted publisher first: in this mode nothing "
                                        "else can upload to {project}.").format(
                    project=project.name))
            TrustedOnly.objects.create(project=project, since=timezone.now(), by=actor)
            revoked = [str(row.id) for row in tokens.revoke_scoped_to(
                project, reason="trusted-publishing-only mode", info=info, actor=actor)]
        else:
            current.delete()
        record(tags.PROJECT_TRUSTED_ONLY_CHANGE, info=info, actor=actor, user=actor,
               project=project, additional={"enabled": enabled, "revoked_tokens": revoked})
        if enabled:
            body = gettext_lazy(
                "{who} switched {project} to trusted-publishing-only mode: API tokens can no "
                "longer upload to it, and the API tokens scoped to it were revoked ({count}). "
                "Only its trusted publishers' runs can publish it now.")
        else:
            body = gettext_lazy(
                "{who} switched trusted-publishing-only mode off for {project}: API tokens "
                "of its Owners and Maintainers can upload to it again.")
        notify_owners(project, gettext_lazy("trusted-publishing-only mode changed"),
                      format_lazy(body, who=actor.username, project=project.name,
                                  count=len(revoked)))
    return revoked


# --- the exchange ---------------------------------------------------------------------------

def _refuse_token(exc) -> ExchangeError:
    import jwt

    if isinstance(exc, jwt.ExpiredSignatureError):
        why = "the token has expired"
    elif isinstance(exc, jwt.ImmatureSignatureError):
        why = "the token is not yet valid (nbf or iat in the future)"
    elif isinstance(exc, jwt.InvalidAudienceError):
        why = f"the token's audience is not {settings.OIDC_AUDIENCE}"
    elif isinstance(exc, jwt.InvalidIssuerError):
        why = "the token's issuer does not match"
    elif isinstance(exc, jwt.InvalidSignatureError):
        why = "the token's signature does not verify"
    elif isinstance(exc, jwt.MissingRequiredClaimError):
        why = f"the token has no {exc.claim} claim"
    else:
        why = f"the token is invalid ({type(exc).__name__})"
    return ExchangeError("invalid-token", why)


def _holds_nul(value, depth: int = 0) -> bool:
    """Whether any string in the claims (keys included) holds a NUL; the depth is bounded by
    the token's length limit."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 32:
        return True
    if isinstance(value, dict):
        return any(_holds_nul(k, depth + 1) or _holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v, depth + 1) for v in value)
    return False


def verify_token(raw) -> tuple[Issuer, dict]:
    """The issuer and verified claims of a CI run's OIDC token, or ExchangeError."""
    # Imported on first use: PyJWT loads cryptography, which only exchanges need.
    import jwt

    if not isinstance(raw, str) or not raw or len(raw) > MAX_JWT_LENGTH:
        raise ExchangeError("invalid-payload", "the token is missing or too long")
    try:
        header = jwt.get_unverified_header(raw)
        unverified = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ExchangeError("invalid-payload", "the token is not a JWT") from None
    if _holds_nul(unverified):
        # No issuer signs one, and no database may store or compare it (PostgreSQL refuses).
        raise ExchangeError("invalid-payload", "the token's claims contain a NUL character")
    iss = unverified.get("iss")
    issuer = Issuer.objects.filter(url=iss).first() if isinstance(iss, str) else None
    if issuer is None:
        raise ExchangeError("invalid-payload",
                            f"unknown issuer {str(iss)[:200]!r}: not trusted by this index")
    kid = header.get("kid")
    try:
        key = keys.signing_key(issuer, kid if isinstance(kid, str) else None)
    except keys.NoKey as exc:
        raise ExchangeError("invalid-token", exc.message) from None
    try:
        claims = jwt.decode(raw, key, algorithms=keys.ALGORITHMS,
                            audience=settings.OIDC_AUDIENCE, issuer=issuer.url,
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["iss", "aud", "exp", "iat"], "strict_aud": True})
    except jwt.PyJWTError as exc:
        raise _refuse_token(exc) from None
    return issuer, claims


def _jti(issuer: Issuer, claims: dict, raw: str) -> str:
    jti = oidc.text(claims, "jti")
    if jti:
        return jti[:255]
    if issuer.kind == IssuerKind.GOOGLE:
        # Google's ID tokens carry no jti: the token itself is used once.
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    raise ExchangeError("invalid-token", "the token has no jti claim")


def exchange(raw, *, info: RequestInfo | None = None) -> Minted:
    """Mint an upload token for the run whose OIDC token ``raw`` is; ExchangeError otherwise."""
    if not settings.OIDC_ENABLED:
        raise ExchangeError("not-enabled", "Trusted publishing functionality not enabled")
    issuer, claims = verify_token(raw)
    jti = _jti(issuer, claims, raw)
    kind = issuer.kind
    lookup = oidc.lookup_key_of_claims(kind, claims, issuer.identifying_claims)
    now = timezone.now()
    if int(claims["exp"]) > (now + MAX_TOKEN_LIFETIME).timestamp():
        raise ExchangeError("invalid-token", "the token is valid for too long (over 24 hours)")
    exp = datetime.fromtimestamp(int(claims["exp"]), tz=dt_timezone.utc)
    with transaction.atomic():
        SeenJti.objects.filter(expires_at__lt=now - timedelta(seconds=LEEWAY_SECONDS)).delete()
        try:
            with transaction.atomic():
                SeenJti.objects.create(issuer=issuer, jti=jti,
                                       expires_at=exp + timedelta(seconds=LEEWAY_SECONDS))
        except IntegrityError:
            raise ExchangeError("invalid-reuse-token",
                                "this token was already exchanged (jti seen before)") from None
        candidates = list(Publisher.objects.select_related("issuer", "project", "pending_owner")
                          .filter(issuer=issuer, lookup=lookup).order_by("pk")) if lookup else []
        matched, reasons = [], []
        for publisher in candidates:
            if publisher.is_pending and publisher.pending_expires <= now:
                continue
            reason = oidc.check(_spec(publisher), claims)
            (reasons.append(reason) if reason else matched.append(publisher))
        if not matched:
            why = reasons[0] if reasons else f"none for {lookup[:200] or 'these claims'}"
            raise ExchangeError("invalid-publisher",
                                f"valid token, but no corresponding publisher ({why})")
        projects = [_use(publisher, claims, info=info, now=now) for publisher in matched]
        run = oidc.run_identity(kind, claims)
        repository = oidc.repository_url(_spec(matched[0]), issuer.url)
        if repository:
            # Project URLs into it are marked verified on the releases this run uploads.
            run["repository_url"] = repository
        token, row = tokens.create_publisher_token(
            projects=projects, publisher_id="".join(p.token_key for p in matched),
            description=describe(matched[0]), run=run, seconds=settings.OIDC_TOKEN_SECONDS,
            info=info)
    return Minted(token, int(row.expires.timestamp()),
                  tuple(sorted(p.normalized_name for p in projects)))


def _use(publisher: Publisher, claims: dict, *, info, now) -> Project:
    """A matched publisher's project (created now when it was pending); ids it lacked are
    pinned from the claims."""
    if publisher.is_pending:
        if packaging.find_project(publisher.pending_name) is not None:
            raise ExchangeError("invalid-pending-publisher",
                                "valid token, but project already exists")
        try:
            project = packaging.create_project(publisher.pending_name, publisher.pending_owner,
                                               info=info)
        except ValidationError as exc:
            raise ExchangeError("invalid-pending-publisher", exc.message) from None
        publisher.project = project
        publisher.pending_name = publisher.pending_normalized_name = ""
        publisher.pending_expires = None
        record(tags.PROJECT_PUBLISHER_ADD, info=info, actor=publisher.pending_owner,
               user=publisher.pending_owner, project=project,
               additional={"publisher_id": publisher.pk, "publisher": describe(publisher),
                           "kind": publisher.issuer.kind, "from_pending": True})
        publisher.pending_owner = None
    if publisher.last_used is None and not is_trusted_only(publisher.project):
        _offer_trusted_only(publisher, claims)
    learned = oidc.ids_to_learn(_spec(publisher), claims)
    if learned:
        publisher.fields = {**publisher.fields, **learned}
        record(tags.PROJECT_PUBLISHER_IDS_LEARNED, info=info, project=publisher.project,
               additional={"publisher_id": publisher.pk, "publisher": describe(publisher),
                           "ids": learned})
    publisher.last_used = now
    publisher.save()
    return publisher.project


def _offer_trusted_only(publisher: Publisher, claims: dict) -> None:
    """A publisher's first run: the Owners are offered trusted-publishing-only mode."""
    from django.urls import reverse

    from bastion.accounts.notifications import site_url

    project = publisher.project
    run = oidc.run_identity(publisher.issuer.kind, claims)
    notify_owners(project, gettext_lazy("first run of a trusted publisher"), format_lazy(
        gettext_lazy("The trusted publisher {publisher} obtained its first upload token for "
                     "{project} (repository {repository}, ref {ref}). If every release of "
                     "{project} now comes from trusted publishers, switch it to "
                     "trusted-publishing-only mode so that API tokens can no longer upload "
                     "to it:\n  {url}"),
        publisher=describe(publisher), project=project.name,
        repository=run.get("repository", "?"), ref=run.get("ref", "?"),
        url=site_url() + reverse("publishing:project", args=[project.normalized_name])))


# --- issuers (administrators) ---------------------------------------------------------------

_ISSUER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


def add_issuer(*, name: str, kind: str, url: str, jwks: str = "",
               identifying_claims: list[str] | None = None, actor=None,
               info: RequestInfo | None = None) -> Issuer:
    """An administrator trusts an OIDC issuer (GitHub Enterprise, self-managed GitLab, a
    custom one): its ``url`` exactly as the tokens' ``iss`` says."""
    if not isinstance(name, str) or not _ISSUER_NAME.match(name):
        raise ValidationError(_("The issuer name must be 1 to 50 lower-case letters, digits "
                                "and dashes."))
    if kind not in IssuerKind.values:
        raise ValidationError(_("The kind must be one of {kinds}.").format(
            kinds=", ".join(IssuerKind.values)))
    problem = keys.check_issuer_url(url or "")
    if problem:
        raise ValidationError(_("The issuer URL must be an https:// URL without user, query "
                                "or fragment."))
    if jwks:
        try:
            keys.parse_jwks(jwks)
        except keys.NoKey:
            raise ValidationError(_('The static keys must be a JSON key set: {"keys": '
                                    '[...]}.')) from None
    claims = [c.strip() for c in identifying_claims or [] if c.strip()]
    if kind == IssuerKind.CUSTOM and not claims:
        raise ValidationError(_("A custom issuer needs the claims that identify a publisher "
                                "(for example repository)."))
    if any(not _CLAIM_NAME.match(c) for c in claims) or len(claims) > MAX_CUSTOM_CLAIMS:
        raise ValidationError(_("Claim names are letters, digits and _.:- only."))
    with transaction.atomic():
        if Issuer.objects.filter(name=name).exists() or Issuer.objects.filter(url=url).exists():
            raise ValidationError(_("An issuer with this name or URL exists already."))
        issuer = Issuer.objects.create(name=name, kind=kind, url=url, jwks=jwks or "",
                                       identifying_claims=claims, created=timezone.now())
        record(tags.ADMIN_OIDC_ISSUER_ADD, info=info, actor=actor, user=actor,
               additional={"name": name, "kind": kind, "url": url, "static_keys": bool(jwks),
                           "identifying_claims": claims})
    return issuer


def remove_issuer(issuer: Issuer, *, actor=None, info: RequestInfo | None = None) -> None:
    """Stop trusting an issuer; refused while publishers use it (remove those first)."""
    with transaction.atomic():
        if Publisher.objects.filter(issuer=issuer).exists():
            raise ValidationError(_("The issuer {name} still has publishers; remove them "
                                    "first.").format(name=issuer.name))
        record(tags.ADMIN_OIDC_ISSUER_REMOVE, info=info, actor=actor, user=actor,
               additional={"name": issuer.name, "kind": issuer.kind, "url": issuer.url})
        issuer.delete()
