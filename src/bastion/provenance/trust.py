"""Which Sigstore trust root attestations are verified against, and refreshing it.

In order: the private instance's ``trusted_root.json`` that BASTION_SIGSTORE_TRUST_ROOT
names (an air-gapped site's; then nothing else is used), else the newest root ``bastion
admin sigstore refresh`` installed, else the public-good root sigstore-python ships (from
its local TUF cache, never fetched during an upload).
"""

from __future__ import annotations

import hashlib
import threading
from importlib.resources import files
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bastion.core.errors import ValidationError
from bastion.core.sigstore_root import RootValidity, validity
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from .models import TrustRoot
from .verification import AttestationRefused, load_trust_root

# A trusted_root.json is some tens of kilobytes; this bounds what a refresh reads.
MAX_TRUST_ROOT_BYTES = 1024 * 1024

# sigstore-python's folder for the public-good instance's TUF repository, in its package data.
SHIPPED_INSTANCE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"

_cache: dict[str, object] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class RootStatus:
    source: str  # "setting", "installed" or "shipped"
    where: str  # the file, "tuf", or sigstore-python's version
    installed: datetime | None  # when it was installed (None: shipped, or a file's mtime)
    sha256: str
    # What the document itself says: its keys' windows and certificates' expiry (the age of
    # a shipped root is not when Bastion was installed but how current its keys are).
    validity: RootValidity | None = None
    bastion: str = ""  # Bastion's version, for the shipped root


def _shipped_document() -> bytes:
    """sigstore-python's production trust root, offline: from its local TUF cache (which
    ``sigstore`` itself may have updated), else the copy inside the package (a server whose
    home directory is read-only cannot bootstrap that cache)."""
    from sigstore.models import ClientTrustConfig

    try:
        root = ClientTrustConfig.production(offline=True).trusted_root
        # The root's JSON is only reachable through its protobuf model; sigstore has no
        # public serialiser for it.
        return root._inner.to_json().encode("utf-8")
    except Exception:  # noqa: BLE001 (the cache's file system, its metadata: many kinds)
        return (files("sigstore") / "_store" / SHIPPED_INSTANCE / "trusted_root.json").read_bytes()


def status() -> RootStatus:
    """Where the root in use comes from, since when, and what it says of its own validity
    (what the console and ``bastion admin sigstore status`` show)."""
    now = timezone.now()
    if settings.SIGSTORE_TRUST_ROOT:
        path = Path(settings.SIGSTORE_TRUST_ROOT)
        try:
            stat = path.stat()
            document = path.read_bytes()
        except OSError:
            return RootStatus("setting", str(path), None, "")
        return RootStatus("setting", str(path),
                          datetime.fromtimestamp(stat.st_mtime, tz=timezone.get_current_timezone()),
                          hashlib.sha256(document).hexdigest(), validity(document, now))
    row = TrustRoot.objects.order_by("-installed", "-pk").only(
        "source", "installed", "sha256", "document").first()
    if row is not None:
        return RootStatus("installed", row.source, row.installed, row.sha256,
                          validity(row.document, now))
    from importlib.metadata import version

    from bastion import __version__ as bastion_version

    # No digest: the document is sigstore's re-serialisation of its copy, whose hash no file
    # an administrator could compare it with has.
    return RootStatus("shipped", f"sigstore {version('sigstore')}", None, "",
                      validity(_shipped_document(), now), bastion=bastion_version)


def current_root():
    """The trust root to verify with now (a sigstore ``TrustedRoot``), parsed once per
    process for each document."""
    if settings.SIGSTORE_TRUST_ROOT:
        try:
            document = Path(settings.SIGSTORE_TRUST_ROOT).read_bytes()
        except OSError as exc:
            raise ValidationError("The index cannot verify attestations: its Sigstore trust "
                                  f"root file cannot be read ({exc.strerror}).", status=503)
    else:
        row = TrustRoot.objects.order_by("-installed", "-pk").only("document").first()
        document = row.document.encode("utf-8") if row is not None else None
    key = hashlib.sha256(document).hexdigest() if document is not None else "shipped"
    with _lock:
        if key not in _cache:
            try:
                _cache[key] = load_trust_root(document if document is not None
                                              else _shipped_document())
            except AttestationRefused as exc:
                raise ValidationError("The index cannot verify attestations: its Sigstore "
                                      f"trust root is unusable. {exc.message}",
                                      status=503) from None
        return _cache[key]


def refresh(from_file: str | None = None, *, actor=None,
            info: RequestInfo | None = None) -> TrustRoot:
    """Install a new trust root: ``from_file`` (an air-gapped site's copy), or the one
    the Sigstore TUF repository (BASTION_SIGSTORE_TUF_URL) serves now, after a TUF update."""
    if from_file is not None:
        try:
            with open(from_file, "rb") as handle:
                document = handle.read(MAX_TRUST_ROOT_BYTES + 1)
        except OSError as exc:
            raise ValidationError(f"Cannot read {from_file}: {exc.strerror}.") from None
        if len(document) > MAX_TRUST_ROOT_BYTES:
            raise ValidationError(f"{from_file} is larger than a trust root can be "
                                  f"({MAX_TRUST_ROOT_BYTES} bytes).")
        source = str(Path(from_file).resolve())[:300]
    else:
        if settings.SIGSTORE_TRUST_ROOT:
            raise ValidationError("BASTION_SIGSTORE_TRUST_ROOT names a private trust root: "
                                  "update that file, or give --from FILE.")
        document = _fetch_with_tuf()
        source = "tuf"
    return install(document, source=source, actor=actor, info=info)


def install(document: bytes, *, source: str, actor=None,
            info: RequestInfo | None = None) -> TrustRoot:
    """Store ``document`` as the trust root in use, once it parses as one."""
    try:
        load_trust_root(document)
    except AttestationRefused as exc:
        raise ValidationError(exc.message) from None
    digest = hashlib.sha256(document).hexdigest()
    with transaction.atomic():
        row = TrustRoot.objects.create(document=document.decode("utf-8"), sha256=digest,
                                       source=source, installed=timezone.now(), by=actor)
        record(tags.ADMIN_SIGSTORE_TRUST_ROOT_REFRESH, info=info, actor=actor, user=actor,
               additional={"source": source, "sha256": digest})
    return row


def _initial_tuf_root() -> bytes:
    """The TUF root.json first trusted for BASTION_SIGSTORE_TUF_URL (by default the one
    sigstore-python ships for the public-good repository)."""
    try:
        if not settings.SIGSTORE_TUF_ROOT:
            return (files("sigstore") / "_store" / SHIPPED_INSTANCE / "root.json").read_bytes()
        with open(settings.SIGSTORE_TUF_ROOT, "rb") as handle:
            return handle.read(MAX_TRUST_ROOT_BYTES + 1)
    except OSError as exc:
        raise ValidationError(_("BASTION_SIGSTORE_TUF_ROOT cannot be read ({reason}).").format(
            reason=exc.strerror or type(exc).__name__)) from None


def tuf_cache_dir(url: str, initial_root: bytes) -> Path:
    """The TUF metadata cache for one repository and the root first trusted for it: another
    initial root (say, after a compromise) starts from that root, not from what the old one
    led to."""
    key = hashlib.sha256(url.encode("utf-8") + b"\0" + initial_root).hexdigest()[:32]
    return Path(settings.DATA_DIR) / "sigstore-tuf" / key


def _fetch_with_tuf() -> bytes:
    """The ``trusted_root.json`` target of the Sigstore TUF repository, after a TUF update.

    python-tuf's ngclient does the update (sigstore-python's ``ClientTrustConfig.from_tuf``
    wraps the same client, but keeps its cache in the home directory, which a server's may
    not have or share, prefers the root it embeds over the one configured, and also requires
    a signing configuration, which verifying does not need); what is written here is only
    where the cache lives and which root starts it.
    """
    import urllib3
    from tuf.api import exceptions as tuf_errors
    from tuf.ngclient import Updater, UpdaterConfig

    url = settings.SIGSTORE_TUF_URL
    initial = _initial_tuf_root()
    cache = tuf_cache_dir(url, initial)
    try:
        (cache / "targets").mkdir(parents=True, exist_ok=True)
        # The root already verified and cached goes on from where the last update left
        # off (a repository cannot roll it back); the configured one only starts the cache.
        cached = (cache / "root.json").exists()
        try:
            updater = Updater(metadata_dir=str(cache), metadata_base_url=url,
                              target_dir=str(cache / "targets"),
                              target_base_url=url + "/targets/",
                              config=UpdaterConfig(app_user_agent="bastion"),
                              bootstrap=None if cached else initial)
        except (tuf_errors.RepositoryError, ValueError) as exc:
            start = cache / "root.json" if cached else "BASTION_SIGSTORE_TUF_ROOT"
            raise ValidationError(_(
                "Cannot update from Sigstore's TUF repository at {url}: the TUF root to "
                "start from ({start}) is unusable ({detail})."
            ).format(url=url, start=start, detail=_first_line(exc))) from None
        updater.refresh()
        info = updater.get_targetinfo("trusted_root.json")
        if info is None:
            reason = _("its signed targets have no trusted_root.json")
        elif info.length > MAX_TRUST_ROOT_BYTES:
            reason = _("its trusted_root.json is larger than a trust root can be "
                       "({limit} bytes)").format(limit=MAX_TRUST_ROOT_BYTES)
        else:
            path = updater.find_cached_target(info) or updater.download_target(info)
            with open(path, "rb") as handle:
                return handle.read(MAX_TRUST_ROOT_BYTES + 1)
    except ValidationError:
        raise
    except tuf_errors.ExpiredMetadataError as exc:
        reason = _("its metadata has expired ({detail})").format(detail=_first_line(exc))
    except (tuf_errors.LengthOrHashMismatchError, tuf_errors.DownloadLengthMismatchError):
        reason = _("a file it served does not match its signed metadata")
    except (tuf_errors.DownloadError, urllib3.exceptions.HTTPError) as exc:
        reason = _("it could not be reached ({detail})").format(detail=_unreachable(exc))
    except tuf_errors.RepositoryError as exc:
        reason = _("its metadata does not verify ({detail})").format(detail=_first_line(exc))
    except OSError as exc:
        reason = _("the metadata cache {path} cannot be written ({detail})").format(
            path=cache, detail=exc.strerror)
    except Exception as exc:  # noqa: BLE001 (what a hostile repository serves is input: no 500)
        reason = _("its answer cannot be used ({detail})").format(detail=type(exc).__name__)
    raise ValidationError(_("Cannot update from Sigstore's TUF repository at {url}: {reason}. "
                            "The trust root stays as it was (or give --from FILE).").format(
        url=url, reason=reason))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _unreachable(exc: Exception) -> str:
    """Why a download failed, in a few words: a connection error's own text is a paragraph
    of urllib3 internals (and python-tuf calls a refused connection a slow retrieval), so the
    socket's error is named where there is one."""
    from tuf.api import exceptions as tuf_errors

    if isinstance(exc, tuf_errors.DownloadHTTPError):
        return _first_line(exc)
    seen = exc
    for _ in range(10):  # a cause chain is short; this bounds a cyclic one
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
        if seen is None:
            break
    if isinstance(exc, tuf_errors.SlowRetrievalError):
        return _("no answer in time")
    return type(exc).__name__
