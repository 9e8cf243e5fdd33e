"""Django settings: the one place that reads Bastion's configuration.

Every option is an environment variable ``BASTION_<NAME>``; a TOML file named by
``BASTION_CONFIG`` may provide the same options in lower case (``read_policy = "public"``).
The environment wins over the file. Every option is listed in the README's table.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tomllib
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse


class ConfigError(Exception):
    pass


# Set to "1" in the environment by `bastion init` and `bastion serve` only (cli.py).
CREATE_DATA_DIR = "_BASTION_CREATE_DATA_DIR"


def _load_toml() -> dict:
    path = os.environ.get("BASTION_CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read BASTION_CONFIG={path}: {exc}") from exc


_FILE = _load_toml()


def option(name: str, default=None, *, cast=str):
    raw = os.environ.get(f"BASTION_{name.upper()}")
    if raw is None:
        value = _FILE.get(name.lower(), default)
        if value is None or not isinstance(value, str):
            return value
        raw = value
    if cast is bool:
        if isinstance(raw, bool):
            return raw
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"BASTION_{name.upper()} must be true or false, not {raw!r}")
    try:
        return cast(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"BASTION_{name.upper()}={raw!r} is not valid: {exc}") from exc


def _list(raw) -> list[str]:
    if isinstance(raw, list):
        return [str(item).strip() for item in raw if str(item).strip()]
    return [item.strip() for item in str(raw).split(",") if item.strip()]


MiB = 1024 * 1024
GiB = 1024 * MiB

DATA_DIR = Path(option("data_dir", "./var")).resolve()
# Only `bastion init` and `bastion serve` make the data directory (the CLI marks them): any
# other process that made it would quietly start a second, empty index with its own secret
# key, wherever it happened to run.
if not DATA_DIR.is_dir() and os.environ.get(CREATE_DATA_DIR) != "1":
    raise ConfigError(
        f"there is no data directory at {DATA_DIR}"
        + ("" if option("data_dir", None) else " (BASTION_DATA_DIR is not set, so ./var)")
        + ": set BASTION_DATA_DIR to the server's, run where `bastion init` made it, or run "
        "`bastion init` to create a new index")
DEBUG = option("debug", False, cast=bool)

HOST = option("host", "127.0.0.1")
PORT = option("port", 8000, cast=int)
WORKERS = option("workers", 0, cast=int)  # 0 = one per core, two at least (server.py says why)
# Two, not more: a worker's threads share one GIL, and each added thread showed in the
# latency tail of index pages (bench/README.md).
THREADS = option("threads", 2, cast=int)
ACCESS_LOG = option("access_log", False, cast=bool)
# What a worker holds for clients still sending their requests (bastion.http_buffering).
MAX_CONNECTIONS = option("max_connections", 1000, cast=int)
REQUEST_TIMEOUT = option("request_timeout", 20.0, cast=float)
BUFFERED_BODY_SIZE = option("buffered_body_size", 64 * 1024, cast=int)
BUFFER_MEMORY = option("buffer_memory", 16 * 1024 * 1024, cast=int)
UPLOAD_THREADS = option("upload_threads", 4, cast=int)
UPLOAD_MIN_RATE = option("upload_min_rate", 8192, cast=int)
if MAX_CONNECTIONS < 1:
    raise ConfigError("BASTION_MAX_CONNECTIONS must be at least 1")
if not 0 < REQUEST_TIMEOUT < float("inf"):
    raise ConfigError("BASTION_REQUEST_TIMEOUT must be a number of seconds above 0")
if BUFFERED_BODY_SIZE < 0:
    raise ConfigError("BASTION_BUFFERED_BODY_SIZE must be 0 or more")
# Room for one request's largest head (64 KiB) and buffered body at least.
if BUFFER_MEMORY < BUFFERED_BODY_SIZE + 64 * 1024:
    raise ConfigError("BASTION_BUFFER_MEMORY must be at least BASTION_BUFFERED_BODY_SIZE "
                      "+ 65536 (one request's headers and body)")
if UPLOAD_THREADS < 1:
    raise ConfigError("BASTION_UPLOAD_THREADS must be at least 1")
if UPLOAD_MIN_RATE < 0:
    raise ConfigError("BASTION_UPLOAD_MIN_RATE must be 0 (no minimum) or more")

# Loopback binds name the index http://localhost:PORT: browsers treat localhost, and not
# 127.0.0.1, as a secure context, which WebAuthn needs. A wildcard bind says nothing about the
# name clients use, so without BASTION_BASE_URL it is treated as loopback too (cli warns).
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def is_wildcard_bind(host: str) -> bool:
    """Whether binding ``host`` listens on every interface ("", 0.0.0.0, ::, [::] and the
    other spellings of the unspecified address)."""
    host = host.strip()
    if not host:
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_unspecified
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as it appears in a URL and in ALLOWED_HOSTS (IPv6 literals bracketed)."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _base_url() -> str:
    configured = option("base_url", "")
    if not configured:
        host = _url_host(HOST)
        if host in _LOOPBACK_HOSTS or is_wildcard_bind(HOST):
            host = "localhost"
        return f"http://{host}:{PORT}"
    parsed = urlparse(configured)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ConfigError(f"BASTION_BASE_URL must be an http:// or https:// URL, not {configured!r}")
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise ConfigError("BASTION_BASE_URL must be the index's plain URL: no user, query or "
                          "fragment")
    return configured.rstrip("/")


# Public URL of the index (no trailing slash). Every link that leaves the request (mail, CLI
# output, file URLs of the JSON API, the WebAuthn relying party) is built from it, never from
# the request's Host header, which the client chooses.
BASE_URL = _base_url()
# A wildcard bind without a base URL: the server cannot know the name clients use.
BASE_URL_GUESSED = not option("base_url", "") and is_wildcard_bind(HOST)


def _secret_key() -> str:
    configured = option("secret_key", "")
    if configured:
        return configured
    # The embedded default keeps a generated key in the data dir so that sessions and
    # tokens survive restarts; production sets BASTION_SECRET_KEY explicitly.
    key_file = DATA_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
    except FileExistsError:  # pragma: no cover - raced with another process
        return key_file.read_text().strip()


SECRET_KEY = _secret_key()


def _allowed_hosts() -> list[str]:
    configured = option("allowed_hosts", "")
    if configured:
        return _list(configured)
    if not option("base_url", "") and (_url_host(HOST) in _LOOPBACK_HOSTS
                                       or is_wildcard_bind(HOST)):
        return list(_LOOPBACK_HOSTS)
    return [_url_host(urlparse(BASE_URL).hostname)]


# The host names the server answers to; by default only the base URL's (every loopback name
# for the embedded default), so that a forged Host header is refused with 400.
ALLOWED_HOSTS = _allowed_hosts()
CSRF_TRUSTED_ORIGINS = _list(option("csrf_trusted_origins", ""))

# Who may read the index: "public" or "authenticated" (every read needs a token).
READ_POLICY = option("read_policy", "public")
if READ_POLICY not in {"public", "authenticated"}:
    raise ConfigError("BASTION_READ_POLICY must be 'public' or 'authenticated'")

# Who may open an account: "open" (anyone), "invite" (only through an emailed invitation from
# an administrator or a project Owner), "domain" (only addresses at SIGNUP_DOMAINS) or
# "approval" (anyone, but an administrator approves each account before it can do anything).
# A private index invites by default: an account must never be a way in by itself.
SIGNUP = option("signup", "invite" if READ_POLICY == "authenticated" else "open")
if SIGNUP not in {"open", "invite", "domain", "approval"}:
    raise ConfigError("BASTION_SIGNUP must be 'open', 'invite', 'domain' or 'approval'")
SIGNUP_DOMAINS = [d.lower().lstrip("@") for d in _list(option("signup_domains", ""))]
if SIGNUP == "domain" and not SIGNUP_DOMAINS:
    raise ConfigError("BASTION_SIGNUP=domain needs BASTION_SIGNUP_DOMAINS (comma-separated)")

# Who may register new project names: "everyone" (any account allowed to publish: verified
# email and, under REQUIRE_2FA, a second factor) or "listed" (only users an administrator
# allowed with `bastion admin allow-create`).
PROJECT_CREATORS = option("project_creators", "everyone")
if PROJECT_CREATORS not in {"everyone", "listed"}:
    raise ConfigError("BASTION_PROJECT_CREATORS must be 'everyone' or 'listed'")

# Upload policy.
MAX_FILE_SIZE = option("max_file_size", 100 * MiB, cast=int)
MAX_PROJECT_SIZE = option("max_project_size", 10 * GiB, cast=int)
MAX_RELEASE_AGE_DAYS = option("max_release_age_days", 14, cast=int)
ALLOW_ZIP_SDISTS = option("allow_zip_sdists", False, cast=bool)
PROHIBITED_NAMES = _list(option("prohibited_names", ""))
# A new project name that imitates a popular or local one (packaging.lookalikes): "refuse" it,
# or "hold" it (the project is created quarantined and waits in the console's review queue).
LOOKALIKE_ACTION = option("lookalike_action", "refuse")
if LOOKALIKE_ACTION not in {"refuse", "hold"}:
    raise ConfigError("BASTION_LOOKALIKE_ACTION must be 'refuse' or 'hold'")
# Archive inspection limits (zip and tar bombs).
ARCHIVE_MAX_MEMBERS = option("archive_max_members", 100_000, cast=int)
ARCHIVE_MAX_UNCOMPRESSED = option("archive_max_uncompressed", 1 * GiB, cast=int)
ARCHIVE_MAX_RATIO = option("archive_max_ratio", 100, cast=int)

# File storage: "local" (under DATA_DIR/files) or "s3".
STORAGE_BACKEND = option("storage", "local")
STORAGE_DIR = Path(option("storage_dir", str(DATA_DIR / "files"))).resolve()
S3_BUCKET = option("s3_bucket", "")
S3_ENDPOINT_URL = option("s3_endpoint_url", "")
S3_REGION = option("s3_region", "us-east-1")
S3_ACCESS_KEY_ID = option("s3_access_key_id", "")
S3_SECRET_ACCESS_KEY = option("s3_secret_access_key", "")
# Work on the task queue that the store's outage stopped (a scan, an inventory) is queued again
# STORE_RETRY_SECONDS later, at most STORE_RETRY_ATTEMPTS times (then it is left for an
# administrator to queue again: the file stays held, or without an inventory).
STORE_RETRY_SECONDS = option("store_retry_seconds", 60, cast=int)
STORE_RETRY_ATTEMPTS = option("store_retry_attempts", 60, cast=int)
if STORE_RETRY_SECONDS < 1 or STORE_RETRY_ATTEMPTS < 0:
    raise ConfigError("BASTION_STORE_RETRY_SECONDS must be at least 1 and "
                      "BASTION_STORE_RETRY_ATTEMPTS at least 0")

# Seconds index pages may be cached by clients; short so yanks reach users quickly.
SIMPLE_CACHE_SECONDS = option("simple_cache_seconds", 60, cast=int)

# Public pages rendered to files on every committed change, for nginx or a CDN to serve
# (docs/deploy.md): "off" (the embedded default: no front serves them, the page cache does),
# "task" (on the task queue, run by `bastion worker`) or "sync" (right after the commit, in the
# process that made the change). Files go under RENDER_DIR, or under RENDER_S3_PREFIX in the
# bucket when the storage is S3.
RENDER_PAGES = option("render_pages", "off")
if RENDER_PAGES not in {"off", "task", "sync"}:
    raise ConfigError("BASTION_RENDER_PAGES must be 'off', 'task' or 'sync'")
RENDER_DIR = Path(option("render_dir", str(DATA_DIR / "rendered"))).resolve()
RENDER_S3_PREFIX = option("render_s3_prefix", "rendered")
# The file store's staging objects are under "staging/" (storage.s3.STAGING), and the
# leftover sweep deletes old ones there: rendered pages must never be taken for them.
if RENDER_S3_PREFIX.strip("/").split("/")[0] == "staging":
    raise ConfigError("BASTION_RENDER_S3_PREFIX must not be 'staging' (the file store's "
                      "staging prefix in the bucket)")
# TUF metadata for the index (PEP 458; docs/tuf.md): on, every rendered simple page and every
# file it lists is a signed target, re-signed on every change. The targets are the rendered
# files, so pages must be rendered. The online key (timestamp, snapshot and the hashed bins)
# is a PEM file like the other secrets; `bastion tuf init` creates it, the offline root and
# targets keys stay elsewhere.
TUF = option("tuf", False, cast=bool)
TUF_KEY_FILE = Path(option("tuf_key_file", str(DATA_DIR / "tuf" / "online-key.pem"))).resolve()
if TUF and RENDER_PAGES == "off":
    raise ConfigError("BASTION_TUF signs the rendered pages: set BASTION_RENDER_PAGES to "
                      "'task' or 'sync' as well")
# One HTTP request per changed URL after a render ("{url}" and "{path}" are replaced), for a
# CDN or a caching front; failures are logged and never fatal.
PURGE_URL_TEMPLATE = option("purge_url_template", "")
PURGE_METHOD = option("purge_method", "PURGE")
PURGE_TIMEOUT_SECONDS = option("purge_timeout_seconds", 2.0, cast=float)
if not 0 < PURGE_TIMEOUT_SECONDS <= 30:
    raise ConfigError("BASTION_PURGE_TIMEOUT_SECONDS must be between 0 and 30")
# How long /_/auth/read (nginx's auth_request on a private index) trusts a credential it has
# verified; a revoked token or a withdrawn read permission takes effect after at most this.
READ_AUTH_CACHE_SECONDS = option("read_auth_cache_seconds", 10.0, cast=float)
if not 0 <= READ_AUTH_CACHE_SECONDS <= 60:
    raise ConfigError("BASTION_READ_AUTH_CACHE_SECONDS must be between 0 and 60")

TOKEN_PREFIX = "bastion-"  # nosec B105 # public: lets secret scanners know our tokens

# Invitations (to a project role, or to sign up by email) die after this long; the project
# page lists members idle (no login and no upload) for longer than INACTIVE_MEMBER_DAYS.
INVITATION_EXPIRY_HOURS = option("invitation_expiry_hours", 72, cast=int)
INACTIVE_MEMBER_DAYS = option("inactive_member_days", 365, cast=int)
# Malware reports (packaging.reports): how many one account may file an hour; the rules that
# quarantine a reported project at once (0 turns a rule off): a trusted observer's report on
# a project younger than AUTOQUARANTINE_OBSERVER_HOURS, or reports by at least
# AUTOQUARANTINE_REPORTERS distinct accounts of which one is a trusted observer.
REPORTS_PER_HOUR = option("reports_per_hour", 10, cast=int)
AUTOQUARANTINE_OBSERVER_HOURS = option("autoquarantine_observer_hours", 24, cast=int)
AUTOQUARANTINE_REPORTERS = option("autoquarantine_reporters", 2, cast=int)
# Keys that sign token leak reports (GitHub secret scanning format): a path to a JSON
# file, or the JSON itself (GitHub's listing or {"key id": "PEM"}). Empty = reports refused.
DISCLOSURE_PUBLIC_KEYS = option("disclosure_public_keys", "")

# The proxy of upstream indexes (bastion.proxy): seconds a fetched upstream page is used
# before it is revalidated; seconds an upstream request may take; seconds between retries of an
# upstream that failed (its stale page is served meanwhile); the default view's cooldown for
# brand-new upstream releases (0: off); bounds on what one upstream page may hold; and which
# new local names an administrator must approve because an upstream already serves them (0 and
# 0: every such name; otherwise only names whose upstream history is at least this old and long).
PROXY_PAGE_TTL = option("proxy_page_ttl", 600, cast=int)
PROXY_TIMEOUT = option("proxy_timeout", 10, cast=float)
PROXY_RETRY_SECONDS = option("proxy_retry_seconds", 30, cast=int)
PROXY_COOLDOWN_HOURS = option("proxy_cooldown_hours", 72, cast=int)
PROXY_MAX_PAGE_BYTES = option("proxy_max_page_bytes", 64 * 1024 * 1024, cast=int)
PROXY_MAX_FILES_PER_PAGE = option("proxy_max_files_per_page", 100_000, cast=int)
PROXY_HOLD_MIN_AGE_DAYS = option("proxy_hold_min_age_days", 0, cast=int)
PROXY_HOLD_MIN_RELEASES = option("proxy_hold_min_releases", 0, cast=int)
# Bytes of rendered upstream pages kept in DATA_DIR/page-cache for all the server's processes
# (least recently used go first; 0: none kept, each process renders its own).
PAGE_CACHE_MAX_BYTES = option("page_cache_max_bytes", 256 * MiB, cast=int)
if PAGE_CACHE_MAX_BYTES < 0:
    raise ConfigError("BASTION_PAGE_CACHE_MAX_BYTES must be 0 or more")
# PEP 740 provenance of upstream files, for views that need it to decide what to list: how
# many unchecked files one page render checks (newest first), and how many at a time.
PROXY_PROVENANCE_PER_PAGE = option("proxy_provenance_per_page", 50, cast=int)
PROXY_PROVENANCE_CONCURRENCY = option("proxy_provenance_concurrency", 4, cast=int)
# Licenses of upstream releases, for views whose policy judges licenses: how many releases
# (newest first) with no license known yet one page render reads from PEP 658 metadata.
PROXY_LICENSES_PER_PAGE = option("proxy_licenses_per_page", 10, cast=int)
if PROXY_LICENSES_PER_PAGE < 0:
    raise ConfigError("BASTION_PROXY_LICENSES_PER_PAGE must be 0 or more")

# Known vulnerabilities (bastion.advisories): the OSV zip (or directory) `bastion admin
# advisories refresh` imports; bounds on downloading it (bytes, seconds per network operation,
# seconds in all).
ADVISORIES_URL = option("advisories_url", "")
ADVISORIES_MAX_DOWNLOAD_BYTES = option("advisories_max_download_bytes", 512 * 1024 * 1024,
                                       cast=int)
ADVISORIES_TIMEOUT = option("advisories_timeout", 30, cast=float)
ADVISORIES_DOWNLOAD_SECONDS = option("advisories_download_seconds", 1800, cast=int)
# Hours between scheduled refreshes from ADVISORIES_URL, run by `bastion worker` (0: none).
ADVISORIES_REFRESH_HOURS = option("advisories_refresh_hours", 24, cast=int)
# Malware scanning of uploads (bastion.scanning): files up to SCAN_INLINE_MAX_BYTES are scanned
# in the upload request, larger ones on the task queue (held until their scan ends); what a
# "suspicious" verdict does: "hold" it for review or "publish" it (and list it for review).
SCAN_INLINE_MAX_BYTES = option("scan_inline_max_bytes", 2 * MiB, cast=int)
SCAN_SUSPICIOUS = option("scan_suspicious", "hold")
if SCAN_SUSPICIOUS not in {"hold", "publish"}:
    raise ConfigError("BASTION_SCAN_SUSPICIOUS must be 'hold' or 'publish'")
# Trusted publishing (bastion.publishing): CI runs exchange their OIDC token for an upload
# token. The audience OIDC tokens must be minted for: this index's own, never PyPI's, so a
# token minted for PyPI or another index cannot be replayed here (GitLab jobs set
# <AUDIENCE>_ID_TOKEN, upper-cased with non-alphanumerics as "_"). Minted tokens live
# OIDC_TOKEN_SECONDS; a pending publisher (for a project not created yet) PENDING_PUBLISHER_HOURS;
# issuers' discovered keys are used OIDC_JWKS_TTL seconds, and fetched again on an unknown key
# id at most every OIDC_JWKS_MIN_REFETCH seconds. Plain-http issuers only for tests.
OIDC_ENABLED = option("oidc_enabled", True, cast=bool)
OIDC_AUDIENCE = option("oidc_audience", "") or (urlparse(BASE_URL).hostname or "bastion")
if OIDC_AUDIENCE.strip().lower() in {"pypi", "testpypi"}:
    OIDC_AUDIENCE = "bastion-" + OIDC_AUDIENCE.strip().lower()
    if option("oidc_audience", ""):
        raise ConfigError("BASTION_OIDC_AUDIENCE must be this index's own, not PyPI's")
OIDC_TOKEN_SECONDS = option("oidc_token_seconds", 900, cast=int)
PENDING_PUBLISHER_HOURS = option("pending_publisher_hours", 168, cast=int)
OIDC_JWKS_TTL = option("oidc_jwks_ttl", 3600, cast=int)
OIDC_JWKS_MIN_REFETCH = option("oidc_jwks_min_refetch", 10, cast=int)
# PEP 740 attestations (bastion.provenance) are verified offline against a Sigstore trust
# root: the public-good instance's that sigstore-python ships (or the one `bastion admin
# sigstore refresh` installed last), or, for a private Sigstore instance, the
# trusted_root.json file named here (then the only root used).
SIGSTORE_TRUST_ROOT = option("sigstore_trust_root", "")
# Where `bastion admin sigstore refresh` updates the public-good root from: a Sigstore TUF
# repository (sigstore's own, a mirror of it, or a private instance's) and the TUF root.json
# first trusted for it (empty: the one sigstore-python ships for the public-good repository).
SIGSTORE_TUF_URL = option("sigstore_tuf_url", "https://tuf-repo-cdn.sigstore.dev").strip()
SIGSTORE_TUF_URL = SIGSTORE_TUF_URL.rstrip("/")
SIGSTORE_TUF_ROOT = option("sigstore_tuf_root", "")
_tuf_url = urlparse(SIGSTORE_TUF_URL)
if _tuf_url.scheme not in {"http", "https"} or not _tuf_url.hostname or len(SIGSTORE_TUF_URL) > 500:
    raise ConfigError("BASTION_SIGSTORE_TUF_URL must be an http(s) URL of at most 500 "
                      f"characters, not {SIGSTORE_TUF_URL[:100]!r}")
OIDC_TIMEOUT = option("oidc_timeout", 10, cast=float)
OIDC_ALLOW_HTTP_ISSUERS = option("oidc_allow_http_issuers", False, cast=bool)
if not 60 <= OIDC_TOKEN_SECONDS <= 3600:
    raise ConfigError("BASTION_OIDC_TOKEN_SECONDS must be between 60 and 3600")
# Served over TLS directly (gunicorn) when both are set: uv reaches /_/oidc/ only over https.
TLS_CERT = option("tls_cert", "")
TLS_KEY = option("tls_key", "")
if bool(TLS_CERT) != bool(TLS_KEY):
    raise ConfigError("BASTION_TLS_CERT and BASTION_TLS_KEY must be set together")

# Operations (bastion.ops): logs as "text" or one JSON object per line, each with the request
# id; /_/metrics for a bearer of METRICS_TOKEN or a client at METRICS_ALLOWED_ADDRESSES (IP
# addresses or networks; with neither, there are no metrics); the seconds each part of
# /_/ready (database, storage, queue) may take to answer.
LOG_FORMAT = option("log_format", "text")
if LOG_FORMAT not in {"text", "json"}:
    raise ConfigError("BASTION_LOG_FORMAT must be 'text' or 'json'")
METRICS_TOKEN = option("metrics_token", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ConfigError("BASTION_METRICS_TOKEN must be at least 16 characters (a random secret)")


def _networks(raw) -> list:
    import ipaddress

    networks = []
    for item in _list(raw):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"BASTION_METRICS_ALLOWED_ADDRESSES: {item!r} is not an IP "
                              "address or network") from None
    return networks


METRICS_ALLOWED_NETWORKS = _networks(option("metrics_allowed_addresses", ""))
READY_TIMEOUT = option("ready_timeout", 2.0, cast=float)
if not 0 < READY_TIMEOUT <= 60:
    raise ConfigError("BASTION_READY_TIMEOUT must be more than 0 and at most 60 seconds")

# --- Django wiring -------------------------------------------------------------------

def _database() -> dict:
    url = option("database_url", "")
    if not url or url.startswith("sqlite"):
        path = DATA_DIR / "bastion.sqlite3"
        if url.startswith("sqlite:///"):
            path = Path(unquote(url[len("sqlite:///"):]))
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            # One connection per worker for its lifetime: opening one and running the PRAGMAs
            # below costs several times more than serving a cached index page.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                # IMMEDIATE avoids the "database is locked" upgrade race between workers.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;"
                ),
            },
        }
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ConfigError("BASTION_DATABASE_URL must be sqlite:///... or postgresql://...")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's model admin at /admin/, read-only, for debugging (bastion.web.admin_site); off by
# default: changes go through the services, which record security events.
DEBUG_ADMIN = option("debug_admin", False, cast=bool)

INSTALLED_APPS = [
    "bastion.web.admin_config.ReadOnlyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "bastion.accounts",
    "bastion.events",
    "bastion.packaging",
    "bastion.tokens",
    "bastion.proxy",
    "bastion.advisories",
    "bastion.inventory",
    "bastion.publishing",
    "bastion.provenance",
    "bastion.scanning",
    "bastion.tuf",
    "bastion.ops",
    "bastion.upload",
    "bastion.simple",
    "bastion.web",
    "bastion.console",
]

MIDDLEWARE = [
    # First: the request id is on every log line of the request, and the latency is all of it.
    "bastion.ops.middleware.RequestIdMiddleware",
    "bastion.web.middleware.HeadWithoutBodyMiddleware",
    "bastion.web.middleware.RejectNulBytesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from the apps' static folders under gunicorn, no collectstatic step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bastion.web.middleware.LazyMessageMiddleware",
    "bastion.web.languages.PageLanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "bastion.web.middleware.SecurityHeadersMiddleware",
    "bastion.web.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "bastion.urls"
WSGI_APPLICATION = "bastion.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # LANGUAGE_CODE and LANGUAGE_BIDI for <html lang dir>.
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "bastion.packaging.context_processors.invitations",
            ],
        },
    }
]

# argon2id; changing these rehashes each password transparently at its next login.
# Defaults follow OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane).
ARGON2_TIME_COST = option("argon2_time_cost", 2, cast=int)
ARGON2_MEMORY_COST = option("argon2_memory_cost", 19456, cast=int)  # KiB
ARGON2_PARALLELISM = option("argon2_parallelism", 1, cast=int)
PASSWORD_HASHERS = [
    "bastion.accounts.hashers.ConfiguredArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": option("password_min_length", 12, cast=int)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "bastion.accounts.passwords.StrengthValidator",
     "OPTIONS": {"min_score": option("password_min_strength", 2, cast=int)}},
]

# Cookies and transport security. BASTION_SECURE_COOKIES=false only for plain-http local use.
SECURE_COOKIES = option("secure_cookies", False, cast=bool)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = option("session_age_seconds", 12 * 3600, cast=int)
LOGIN_URL = "/account/login/"
LOGIN_REDIRECT_URL = "/account/"
CSRF_FAILURE_VIEW = "bastion.web.errors.csrf_failure"
# A password-reset link dies after this long, at first use, or when the password changes.
PASSWORD_RESET_TIMEOUT = option("password_reset_seconds", 3600, cast=int)
EMAIL_VERIFY_SECONDS = option("email_verify_seconds", 48 * 3600, cast=int)
# Failed sign-ins (and failed second factors) allowed per account and per IP address
# within the window before further attempts are refused with 429.
LOGIN_MAX_ATTEMPTS = option("login_max_attempts", 10, cast=int)
LOGIN_IP_MAX_ATTEMPTS = option("login_ip_max_attempts", 50, cast=int)
LOGIN_WINDOW_SECONDS = option("login_window_seconds", 300, cast=int)
# Sensitive actions need a password (and second factor) entered this recently.
REAUTH_SECONDS = option("reauth_seconds", 600, cast=int)
# Accounts need a second factor (and a verified email) to create tokens and projects.
REQUIRE_2FA = option("require_2fa", True, cast=bool)
# WebAuthn relying party; by default the base URL's origin and host name.
WEBAUTHN_ORIGIN = (option("webauthn_origin", "")
                   or "{0.scheme}://{0.netloc}".format(urlparse(BASE_URL))).rstrip("/")
WEBAUTHN_RP_ID = option("webauthn_rp_id", "") or (urlparse(WEBAUTHN_ORIGIN).hostname or "")
WEBAUTHN_RP_NAME = option("webauthn_rp_name", "Bastion")
CSRF_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if option("behind_tls_proxy", False, cast=bool):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True

# Uploads are streamed to temporary files beyond this size rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * MiB
# Web forms: Django's default. The upload endpoint parses its own body, with a limit per
# field (bastion.upload.form.FIELD_LIMITS).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2621440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
# Upload bodies stream to temporary files here: Bastion's own directory, so that the files a
# killed worker leaves are known to be ours and removed (bastion.storage.leftovers).
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
# The pages' languages. Catalogs live in each app's locale/ folder, compiled .mo files beside
# the .po files (see bastion.web.languages); the package-index APIs always answer in English.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True
# Static files are served from the installed package (finders); STATIC_ROOT only exists
# after an optional collectstatic, so its absence is expected, not worth a warning.
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
WHITENOISE_AUTOREFRESH = DEBUG

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS_URL = option("redis_url", "")
if REDIS_URL:
    # Time limits: a Redis that accepts connections and then hangs must make sign-in a quick
    # 503 (bastion.ops.outages), not a worker stuck until gunicorn kills it.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5}}}

EMAIL_HOST = option("smtp_host", "")
EMAIL_PORT = option("smtp_port", 25, cast=int)
EMAIL_HOST_USER = option("smtp_user", "")
EMAIL_HOST_PASSWORD = option("smtp_password", "")
EMAIL_USE_TLS = option("smtp_starttls", False, cast=bool)
# Seconds: a mail server that accepts the connection and then hangs must not stall the worker.
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = option("mail_from", "bastion@localhost")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "outbox")

# Background work (outgoing mail). "database": a durable queue in the database, written in
# the same transaction as the change that queued it and run by `bastion worker` (which
# `bastion serve` starts unless BASTION_RUN_WORKER=false). "immediate": each task runs in the
# process that queued it once the transaction commits (tiny set-ups, debugging).
TASKS_BACKEND = option("tasks_backend", "database")
_TASK_BACKENDS = {"database": "django_tasks_db.DatabaseBackend",
                  "immediate": "django_tasks.backends.immediate.ImmediateBackend"}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ConfigError("BASTION_TASKS_BACKEND must be 'database' or 'immediate'")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[TASKS_BACKEND]}}
RUN_WORKER = option("run_worker", True, cast=bool)
# How long an idle worker waits before looking for new tasks again (the most a mail waits).
WORKER_POLL_SECONDS = option("worker_poll_seconds", 1.0, cast=float)
if not 0 < WORKER_POLL_SECONDS <= 3600:
    raise ConfigError("BASTION_WORKER_POLL_SECONDS must be more than 0 and at most 3600")
# Owners get one mail per release upload batch: it goes out once no file has arrived for the
# release for this long (0: as soon as the worker runs it, naming whatever has arrived).
UPLOAD_MAIL_QUIET_SECONDS = option("upload_mail_quiet_seconds", 60.0, cast=float)
if not 0 <= UPLOAD_MAIL_QUIET_SECONDS <= 300:
    raise ConfigError("BASTION_UPLOAD_MAIL_QUIET_SECONDS must be from 0 to 300")
# A failed mail attempt stays in the task table this long (without its body) for inspection.
FAILED_MAIL_KEEP_DAYS = option("failed_mail_keep_days", 30, cast=int)
if FAILED_MAIL_KEEP_DAYS < 1:
    raise ConfigError("BASTION_FAILED_MAIL_KEEP_DAYS must be at least 1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "bastion.ops.logs.TextFormatter"},
                   "json": {"()": "bastion.ops.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if LOG_FORMAT == "json" else "plain",
                             "filters": ["request_id"]}},
    "filters": {"mail_failures_logged_once": {"()": "bastion.worker.MailFailuresLoggedOnce"},
                "request_id": {"()": "bastion.ops.logs.RequestIdFilter"}},
    "root": {"handlers": ["console"], "level": option("log_level", "INFO")},
    # Task failures are logged as errors; a line for every task started and finished is not.
    "loggers": {"django.request": {"level": "ERROR"},
                "django_tasks": {"level": "WARNING", "filters": ["mail_failures_logged_once"]},
                "django_tasks_db": {"level": "WARNING"},
                # A line per upstream request is noise; the proxy logs what failed itself.
                "httpx": {"level": "WARNING"},
                # python-tuf's fetcher (a Sigstore trust root refresh): a line per retried
                # connection is noise; the refresh says in one line what failed.
                "urllib3": {"level": "ERROR"},
                # Written only with BASTION_ACCESS_LOG in JSON mode, whatever the level.
                "bastion.access": {"level": "INFO"}},
}

# Where the signed head of the security event chain is written (events.anchor): a file
# outside the database, so that deleting the newest events and rewriting the head in the
# database is caught by `bastion admin verify-events`. Empty: no anchor is kept.
CHAIN_ANCHOR = option("chain_anchor", str(DATA_DIR / "chain-anchor.json"))
# How often the worker writes it: the newest events of at most this span can be deleted
# undetected.
CHAIN_ANCHOR_SECONDS = option("chain_anchor_seconds", 60, cast=int)
if CHAIN_ANCHOR_SECONDS < 1:
    raise ConfigError("BASTION_CHAIN_ANCHOR_SECONDS must be at least 1")
