"""Trusted publishing: does a CI run's verified OIDC claims match a publisher?

The token's signature, issuer, audience and times are checked before this module sees the
claims (``publishing.services``); here only the publisher's own rules are judged. Each
checker returns None when the claims match, or a one-line reason saying what differed,
which the token exchange shows the CI job.

Names (owners, repositories, namespaces) can be renamed, deleted and registered again by
someone else; ids cannot. A publisher therefore pins the ids once known: given by the Owner,
or learned from the first matching run (:func:`ids_to_learn`), after which a re-created
repository of the same name no longer matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Claim values are strings or integers in every issuer we know; anything else (lists,
# objects, booleans) is treated as absent, never coerced into a match.
MAX_CLAIM_LENGTH = 1024

_GITHUB_WORKFLOW_REF = re.compile(
    r"^(?P<repo>[^/]+/[^/]+)/\.github/workflows/(?P<file>[^/@]+)@(?P<ref>.+)$")
_GITLAB_CONFIG_REF = re.compile(r"^(?P<host>[^/]+)/(?P<path>.+?)//(?P<file>[^@]+)@(?P<ref>.+)$")


@dataclass(frozen=True)
class GitHubSpec:
    owner: str
    repository: str
    workflow: str  # the file name under .github/workflows/, e.g. release.yml
    environment: str = ""
    owner_id: str = ""  # empty: learned on first use
    repository_id: str = ""


@dataclass(frozen=True)
class GitLabSpec:
    namespace: str  # may contain subgroups: group/subgroup
    project: str
    ci_config_path: str  # e.g. .gitlab-ci.yml or ci/release.yml
    environment: str = ""
    namespace_id: str = ""
    project_id: str = ""
    host: str = "gitlab.com"  # the issuer's host, as ci_config_ref_uri starts with it


@dataclass(frozen=True)
class GoogleSpec:
    email: str
    subject: str = ""


@dataclass(frozen=True)
class CustomSpec:
    """Every claim named here must carry exactly this value."""

    claims: dict[str, str] = field(default_factory=dict)


Spec = GitHubSpec | GitLabSpec | GoogleSpec | CustomSpec


def text(claims: dict, name: str) -> str:
    """A claim as text: strings and integers only (ids come as either); otherwise ""."""
    value = claims.get(name)
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or len(value) > MAX_CLAIM_LENGTH:
        return ""
    return value


def check(spec: Spec, claims: dict) -> str | None:
    """None when ``claims`` satisfy ``spec``, else the reason they do not."""
    if isinstance(spec, GitHubSpec):
        return check_github(spec, claims)
    if isinstance(spec, GitLabSpec):
        return check_gitlab(spec, claims)
    if isinstance(spec, GoogleSpec):
        return check_google(spec, claims)
    if isinstance(spec, CustomSpec):
        return check_custom(spec, claims)
    raise TypeError(f"unknown publisher spec {type(spec).__name__}")


def _pinned(expected: str, claims: dict, name: str, what: str) -> str | None:
    got = text(claims, name)
    if not got:
        return f"the token has no {name} claim"
    if expected and got != expected:
        return f"{what} id {got} is not the pinned {expected} (renamed or re-created?)"
    return None


def github_workflow_file(ref: str, repository: str) -> str | None:
    """The workflow file a ``workflow_ref``/``job_workflow_ref`` names in ``repository``."""
    match = _GITHUB_WORKFLOW_REF.match(ref)
    if match is None or match["repo"].lower() != repository.lower():
        return None
    return match["file"]


def check_github(spec: GitHubSpec, claims: dict) -> str | None:
    wanted = f"{spec.owner}/{spec.repository}"
    repository = text(claims, "repository")
    if repository.lower() != wanted.lower():
        return f"repository {repository or '(none)'} is not {wanted}"
    owner = text(claims, "repository_owner")
    if owner.lower() != spec.owner.lower():
        return f"repository owner {owner or '(none)'} is not {spec.owner}"
    reason = (_pinned(spec.owner_id, claims, "repository_owner_id", "repository owner")
              or _pinned(spec.repository_id, claims, "repository_id", "repository"))
    if reason:
        return reason
    ref, sha = text(claims, "ref"), text(claims, "sha")
    if not ref or not sha:
        return "the token has no ref or sha claim"
    if text(claims, "event_name") == "pull_request_target":
        return "runs triggered by pull_request_target may not publish"
    # The job's own workflow (a reusable one in the same repository), or the workflow that
    # started the run: both files live in the publisher's repository.
    for name in ("job_workflow_ref", "workflow_ref"):
        value = text(claims, name)
        match = _GITHUB_WORKFLOW_REF.match(value)
        if (match is not None and match["repo"].lower() == wanted.lower()
                and match["file"] == spec.workflow and match["ref"] in (ref, sha)):
            break
    else:
        got = github_workflow_file(text(claims, "workflow_ref"), wanted) or "(none)"
        if got == spec.workflow:
            return f"workflow {got} ran at another ref than the run's ref or sha"
        return f"workflow {got} is not {spec.workflow}"
    if spec.environment:
        environment = text(claims, "environment")
        if environment.lower() != spec.environment.lower():
            return f"environment {environment or '(none)'} is not {spec.environment}"
    return None


def check_gitlab(spec: GitLabSpec, claims: dict) -> str | None:
    wanted = f"{spec.namespace}/{spec.project}"
    path = text(claims, "project_path")
    if path.lower() != wanted.lower():
        return f"project {path or '(none)'} is not {wanted}"
    if not text(claims, "sub").lower().startswith(f"project_path:{wanted.lower()}:"):
        return f"subject does not name project {wanted}"
    reason = (_pinned(spec.namespace_id, claims, "namespace_id", "namespace")
              or _pinned(spec.project_id, claims, "project_id", "project"))
    if reason:
        return reason
    ref_path, sha = text(claims, "ref_path"), text(claims, "sha")
    if not ref_path or not sha:
        return "the token has no ref_path or sha claim"
    match = _GITLAB_CONFIG_REF.match(text(claims, "ci_config_ref_uri"))
    if (match is None or match["host"].lower() != spec.host.lower()
            or match["path"].lower() != wanted.lower()
            or match["file"] != spec.ci_config_path or match["ref"] not in (ref_path, sha)):
        got = match["file"] if match is not None else "(none)"
        return f"CI configuration {got} is not {spec.ci_config_path}"
    # GitLab environment names are case-sensitive.
    if spec.environment and text(claims, "environment") != spec.environment:
        return (f"environment {text(claims, 'environment') or '(none)'} is not "
                f"{spec.environment}")
    return None


def check_google(spec: GoogleSpec, claims: dict) -> str | None:
    email = text(claims, "email")
    if email.lower() != spec.email.lower():
        return f"email {email or '(none)'} is not {spec.email}"
    if claims.get("email_verified") is not True:
        return "the email is not verified"
    if spec.subject and text(claims, "sub") != spec.subject:
        return f"subject {text(claims, 'sub') or '(none)'} is not {spec.subject}"
    return None


def check_custom(spec: CustomSpec, claims: dict) -> str | None:
    if not spec.claims:
        return "the publisher requires no claims"  # fail closed: it would match everyone
    for name, value in sorted(spec.claims.items()):
        got = text(claims, name)
        if got != value:
            return f"claim {name} is {got or '(none)'}, not {value}"
    return None


def ids_to_learn(spec: Spec, claims: dict) -> dict[str, str]:
    """The ids a matching run reveals that ``spec`` did not pin yet (field name → value)."""
    wanted: dict[str, str] = {}
    if isinstance(spec, GitHubSpec):
        wanted = {"owner_id": "repository_owner_id", "repository_id": "repository_id"}
    elif isinstance(spec, GitLabSpec):
        wanted = {"namespace_id": "namespace_id", "project_id": "project_id"}
    return {key: text(claims, claim) for key, claim in wanted.items()
            if not getattr(spec, key) and text(claims, claim)}


# What the security log keeps of a run, per kind: enough to find the run, nothing personal
# beyond what the CI put in the token.
_RUN_CLAIMS = {
    "github": {"repository": "repository", "workflow": "workflow_ref", "ref": "ref",
               "sha": "sha", "run_id": "run_id", "run_attempt": "run_attempt",
               "environment": "environment"},
    "gitlab": {"repository": "project_path", "workflow": "ci_config_ref_uri", "ref": "ref_path",
               "sha": "sha", "run_id": "pipeline_id", "run_attempt": "job_id",
               "environment": "environment"},
    "google": {"repository": "email", "workflow": "sub"},
}
# Claims many other CIs (Gitea/Forgejo, Buildkite, Jenkins plugins) use GitHub's names for.
_GENERIC_RUN_CLAIMS = {"repository": "repository", "workflow": "workflow_ref", "ref": "ref",
                       "sha": "sha", "run_id": "run_id", "run_attempt": "run_attempt",
                       "environment": "environment", "subject": "sub"}


def run_identity(kind: str, claims: dict) -> dict[str, str]:
    """The run that obtained a token, as recorded with every upload it makes."""
    names = _RUN_CLAIMS.get(kind, _GENERIC_RUN_CLAIMS)
    return {key: value[:300] for key, claim in names.items() if (value := text(claims, claim))}


def lookup_key(spec: Spec, identifying: tuple[str, ...] | list[str] = ()) -> str:
    """The key publishers are found by (an indexed column): what a run's claims name
    (:func:`lookup_key_of_claims`) for every publisher those claims could match."""
    if isinstance(spec, GitHubSpec):
        return f"{spec.owner}/{spec.repository}".lower()
    if isinstance(spec, GitLabSpec):
        return f"{spec.namespace}/{spec.project}".lower()
    if isinstance(spec, GoogleSpec):
        return spec.email.lower()
    return "\x1f".join(spec.claims.get(name, "") for name in identifying)


def lookup_key_of_claims(kind: str, claims: dict,
                         identifying: tuple[str, ...] | list[str] = ()) -> str:
    if kind == "github":
        return text(claims, "repository").lower()
    if kind == "gitlab":
        return text(claims, "project_path").lower()
    if kind == "google":
        return text(claims, "email").lower()
    return "\x1f".join(text(claims, name) for name in identifying)


def spec_of(kind: str, fields: dict, *, host: str = "") -> Spec:
    """A publisher's spec from its stored fields (``publishing.models.Publisher.fields``)."""
    if kind == "github":
        return GitHubSpec(**fields)
    if kind == "gitlab":
        return GitLabSpec(**fields, host=host or "gitlab.com")
    if kind == "google":
        return GoogleSpec(**fields)
    if kind == "custom":
        return CustomSpec(claims=dict(fields.get("claims", {})))
    raise ValueError(f"unknown publisher kind {kind!r}")


GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def repository_url(spec: Spec, issuer_url: str) -> str | None:
    """The web address of the repository a publisher names, when its kind has one: runs of
    it verify project URLs pointing into that repository. GitHub Enterprise Server's issuer
    is ``https://HOST/_services/token``; github.com's has a host of its own."""
    if isinstance(spec, GitHubSpec):
        host = "github.com" if issuer_url.rstrip("/") == GITHUB_ISSUER else \
            urlsplit(issuer_url).netloc
        return f"https://{host}/{spec.owner}/{spec.repository}" if host else None
    if isinstance(spec, GitLabSpec):
        return f"https://{spec.host}/{spec.namespace}/{spec.project}"
    return None


def points_into(url: str, repository: str) -> bool:
    """Whether ``url`` is ``repository``'s page or a page under it (https, the same host,
    the path at a segment boundary; case-insensitive, as both forges treat paths)."""
    try:
        got, want = urlsplit(url.strip()), urlsplit(repository)
        got_host, want_host = got.hostname, want.hostname
        got_port, want_port = got.port, want.port
    except ValueError:
        return False
    if got.scheme.lower() != "https" or got.username or got.password:
        return False
    if not got_host or got_host != want_host or got_port != want_port:
        return False
    path = got.path.rstrip("/").lower().removesuffix(".git")
    base = want.path.rstrip("/").lower()
    return path == base or path.startswith(base + "/")


def describe(spec: Spec) -> str:
    """A publisher in a few words, for logs, mails and the token's description."""
    if isinstance(spec, GitHubSpec):
        where = f"{spec.owner}/{spec.repository} {spec.workflow}"
    elif isinstance(spec, GitLabSpec):
        where = f"{spec.namespace}/{spec.project} {spec.ci_config_path}"
    elif isinstance(spec, GoogleSpec):
        where = spec.email
    else:
        where = ", ".join(f"{k}={v}" for k, v in sorted(spec.claims.items()))
    environment = getattr(spec, "environment", "")
    return f"{where} ({environment})" if environment else where
