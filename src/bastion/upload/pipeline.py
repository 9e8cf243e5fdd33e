"""One upload, from the request to the stored file, cheapest refusals first.

Order matters: credentials, and whether their owner may publish at all, are looked at
before the body is read, and the token is verified before any project is looked up, so an
unauthenticated client learns nothing about projects; the checks the rows decide
(``packaging.services.check_upload``: permission, the identical-file short cut, size, name
and release rules) come before the archive is opened, because archive inspection is the
expensive part, and run again under the lock in add_file.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Max
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.accounts.services import can_publish
from bastion.core.archives import ArchiveLimits
from bastion.core.distributions import validate_distribution
from bastion.core.errors import ValidationError
from bastion.core.filenames import parse_filename
from bastion.events.services import RequestInfo
from bastion.packaging import services
from bastion.packaging.models import Project
from bastion.provenance import services as provenance
from bastion.provenance.verification import ExpectedPublisher, Verified, expected_from_run
from bastion.publishing.models import Issuer
from bastion.publishing.services import check_publisher_token, check_token_may_upload
from bastion.tokens import http as token_http
from bastion.tokens.services import (
    INVALID_CREDENTIALS,
    GenuineToken,
    Identity,
    genuine_token,
    parse_token,
    verify_again,
)

from .form import UploadForm, parse_form
from .receiving import ReceivedFile, check_declared_length, receive

@dataclass(frozen=True)
class Accepted:
    filename: str
    created: bool  # False: the identical file was already there


def handle_upload(request) -> Accepted:
    """Run the upload in ``request``; raise ValidationError or TokenError to refuse it."""
    found = _check_credentials_present(request)
    if found.row.user is not None:  # a trusted publisher's token has no account to ask
        check_may_publish(found.row.user)
    ceiling = _body_ceiling(request)
    check_declared_length(request, ceiling)
    body = receive(request, ceiling)
    try:
        form = parse_form(body.fields.lists())
        content = _the_file(body.files.getlist("content"))
        identity = token_http.authenticate(request, permission="upload", project=form.name,
                                           version=form.version, found=found)
        return _store(request, form, content, identity, found)
    finally:
        body.close()


def _check_credentials_present(request):
    """Refuse requests that carry no token before their body is read.

    Only the token's row is looked up here; its signature and caveats are verified once the
    form says which project and version the upload is for.
    """
    row, macaroon = parse_token(token_http.presented_token(request, missing=INVALID_CREDENTIALS))
    # A known token id with a forged signature must not get a body streamed to disk.
    return genuine_token(row, macaroon)


def check_may_publish(user) -> None:
    """Refuse the upload unless the token's owner may publish now (``can_publish``).

    A token carries no more than its owner may do at the time of use: an account that lost
    its last second factor, its verified address or its approval stops uploading at once,
    whoever minted the token (the administrator included).
    """
    allowed, why = can_publish(user)
    if not allowed:
        raise services.PermissionDenied(f"You cannot upload yet: {why}")


def _body_ceiling(request) -> int:
    """The most a file in this request may be, before the form says which project it is for.

    Until then the body may be as large as the most generous per-project limit; the exact
    limit is applied once the project is known. A body whose declared length is within the
    default limit cannot hold a larger file, so the usual upload skips the query.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        declared = None
    if declared is not None and declared <= settings.MAX_FILE_SIZE:
        return settings.MAX_FILE_SIZE
    largest_override = Project.objects.aggregate(largest=Max("upload_limit"))["largest"] or 0
    return max(settings.MAX_FILE_SIZE, largest_override)


def _the_file(parts: list[ReceivedFile]) -> ReceivedFile:
    if not parts:
        raise ValidationError("Upload payload does not have a file.")
    if len(parts) > 1:
        raise ValidationError("The field 'content' was sent more than once; send one file.")
    return parts[0]


def _store(request, form: UploadForm, content: ReceivedFile, identity: Identity,
           found: GenuineToken) -> Accepted:
    user = identity.user
    form.digests.check(sha256=content.sha256, blake2_256=content.blake2_256, md5=content.md5)
    digests = services.Digests(sha256=content.sha256, blake2_256=content.blake2_256,
                               md5=content.md5.hex(), size=content.size)

    # The filename is checked before it is used in any query.
    dist = parse_filename(content.filename, allow_zip_sdist=settings.ALLOW_ZIP_SDISTS)
    if dist.kind != form.filetype:
        raise ValidationError(
            f"The filetype '{form.filetype}' does not match the file '{content.filename}', "
            f"which is a{'n sdist' if dist.kind == 'sdist' else ' wheel'}."
        )

    by_publisher = identity.token.is_trusted_publisher
    checked = services.check_upload(user, name=form.name, version=form.version,
                                    filename=content.filename, kind=dist.kind, digests=digests,
                                    by_publisher=by_publisher)
    if by_publisher:
        check_publisher_token(identity.token, checked.project)
    else:
        check_token_may_upload(checked.project)
    # Retries and re-runs send the same file again: answer 200 without opening the archive.
    if checked.existing is not None:
        return Accepted(content.filename, created=False)
    attested = _verify_attestations(form, content, identity.token, by_publisher)
    if not by_publisher:
        provenance.check_attested(checked.project, attested is not None)

    verified = validate_distribution(
        content.path, content.filename, form=form.cross_check,
        project_name=checked.project.name if checked.project is not None else None,
        limits=ArchiveLimits(max_members=settings.ARCHIVE_MAX_MEMBERS,
                             max_uncompressed=settings.ARCHIVE_MAX_UNCOMPRESSED,
                             max_ratio=settings.ARCHIVE_MAX_RATIO),
        allow_zip_sdist=settings.ALLOW_ZIP_SDISTS,
        rendered=services.rendered_description(checked.release),
    )
    _check_token_scope_holds(form, verified)
    info = RequestInfo.from_request(request)

    def token_still_valid() -> None:
        # The token was read before the body streamed in, which can take minutes.
        again = verify_again(found, permission="upload", project=form.name,
                             version=form.version, info=info)
        # The mode, or the publishers, may have changed while the file streamed in.
        if again.user is not None:
            check_may_publish(again.user)
            project = services.find_project(form.name)
            check_token_may_upload(project)
            provenance.check_attested(project, attested is not None)
        else:
            check_publisher_token(again.token, services.find_project(form.name))

    result = services.add_file(
        user=user, verified=verified, content_path_on_disk=content.path, digests=digests,
        python_version=form.pyversion, info=info, token=identity.token, comment=form.comment,
        still_allowed=token_still_valid, by_publisher=by_publisher,
        with_file=None if attested is None else (
            lambda file: provenance.store(file, attested, by_trusted_publisher=by_publisher,
                                          info=info, actor=user)),
    )
    return Accepted(content.filename, created=result.created)


def _verify_attestations(form: UploadForm, content: ReceivedFile, token,
                         by_publisher: bool) -> Verified | None:
    """The form's PEP 740 attestations verified against the file (None: none sent).

    A trusted publisher's upload must be attested by that publisher's own repository and
    workflow; an API token's by anyone the trust root vouches for (who is recorded).
    """
    raw = form.fields.get("attestations", "").strip()
    if not raw:
        return None
    return provenance.verify_upload(
        raw, filename=content.filename, sha256=content.sha256,
        expected=_expected_publisher(token) if by_publisher else None,
        issuer_kinds=dict(Issuer.objects.values_list("url", "kind")))


def _expected_publisher(token) -> ExpectedPublisher:
    """Who a trusted publisher's token was issued to, as its attestations must name it."""
    expected = expected_from_run(getattr(token, "publisher_claims", None) or {})
    if expected is None:
        raise ValidationError(
            "The attestations cannot be checked against this upload's trusted publisher (its "
            "issuer names no repository): upload without them.")
    return expected


def _check_token_scope_holds(form: UploadForm, verified) -> None:
    """The token was checked against the form's name and version; the file must agree.

    validate_distribution already compares the form with the metadata; this keeps a
    project- or version-scoped token safe even if that comparison ever changes.
    """
    meta = verified.metadata
    if canonicalize_name(meta.name) != canonicalize_name(form.name):
        raise ValidationError(
            f"The form name '{form.name}' does not match the name '{meta.name}' in the "
            "file's metadata."
        )
    if canonicalize_version(str(meta.version)) != canonicalize_version(form.version):
        raise ValidationError(
            f"The form version '{form.version}' does not match the version '{meta.version}' "
            "in the file's metadata."
        )
