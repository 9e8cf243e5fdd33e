"""The token exchange through the real services and database, with issuers of our own."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from django.test import override_settings
from django.utils import timezone

from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import Project, Role, RoleName
from bastion.publishing import keys, services
from bastion.publishing.models import Issuer, Publisher
from bastion.publishing.services import ExchangeError, exchange
from bastion.tokens.models import ApiToken
from bastion.tokens.services import TokenError, verify
from tests.oidc_issuer import OidcIssuer as Signer
from tests.oidc_issuer import IssuerServer, github_claims, gitlab_claims
from tests.unit.packaging.support import new_project, new_user

AUD = settings.OIDC_AUDIENCE


def static_issuer(unique, kind="github", **values) -> tuple[Signer, Issuer]:
    signer = Signer(f"https://{kind}-{unique}.ci.example")
    row = services.add_issuer(name=f"{kind}-{unique}", kind=kind, url=signer.url,
                              jwks=__import__("json").dumps(signer.jwks()), **values)
    return signer, row


@pytest.fixture
def owner():
    return new_user("owner")


@pytest.fixture
def github(unique):
    signer, row = static_issuer(unique)
    yield signer, row
    Publisher.objects.filter(issuer=row).delete()
    row.delete()


@pytest.fixture
def published(owner, github, unique):
    """A project with a GitHub publisher for acme-<unique>/widget given only by names."""
    signer, issuer = github
    project = new_project(owner, f"tp-{unique}")
    publisher = services.add_publisher(project, issuer, {
        "owner": f"acme-{unique}", "repository": "widget", "workflow": "release.yml"},
        actor=owner)
    return signer, project, publisher


def refusal(raw) -> ExchangeError:
    with pytest.raises(ExchangeError) as excinfo:
        exchange(raw)
    return excinfo.value


def test_matching_run_gets_a_token_for_the_project_only(published, unique):
    signer, project, publisher = published
    minted = exchange(signer.token(AUD, github_claims(f"acme-{unique}", "widget")))
    assert minted.projects == (project.normalized_name,)
    assert minted.expires - time.time() == pytest.approx(settings.OIDC_TOKEN_SECONDS, abs=5)
    identity = verify(minted.token, permission="upload", project=project.name, version="1.0")
    assert identity.user is None
    row = identity.token
    assert row.publisher_id == publisher.token_key
    assert row.publisher_claims["repository"] == f"acme-{unique}/widget"
    assert row.publisher_claims["run_id"] == "4242"
    with pytest.raises(TokenError):
        verify(minted.token, permission="upload", project="some-other-project", version="1.0")
    event = SecurityEvent.objects.filter(tag=tags.PROJECT_TRUSTED_TOKEN_MINTED,
                                         project_id_ref=project.pk).get()
    assert event.additional["run"]["sha"] == "c" * 40


def test_first_run_pins_the_ids_and_a_recreated_repository_no_longer_matches(published, unique):
    signer, project, publisher = published
    exchange(signer.token(AUD, github_claims(f"acme-{unique}", "widget")))
    publisher.refresh_from_db()
    assert publisher.fields["owner_id"] == "1001" and publisher.fields["repository_id"] == "2002"
    assert SecurityEvent.objects.filter(tag=tags.PROJECT_PUBLISHER_IDS_LEARNED,
                                        project_id_ref=project.pk).exists()
    error = refusal(signer.token(AUD, github_claims(f"acme-{unique}", "widget",
                                                    repository_id="9999")))
    assert error.code == "invalid-publisher"
    assert "repository id 9999 is not the pinned 2002" in error.description
    error = refusal(signer.token(AUD, github_claims(f"acme-{unique}", "widget", owner_id="7")))
    assert "repository owner id 7 is not the pinned 1001" in error.description


# Times are offsets from when the test runs (the parameters are made at collection, and a
# loaded machine may reach a test many minutes later): {"exp": -600} means "now - 600".
TIMED = ("exp", "nbf", "iat")


@pytest.mark.parametrize("change, code, fragment", [
    ({"aud": "pypi"}, "invalid-token", "audience"),
    ({"exp": -600, "iat": -900}, "invalid-token", "expired"),
    ({"nbf": 600}, "invalid-token", "not yet valid"),
    ({"iat": 600}, "invalid-token", "not yet valid"),
    ({"jti": None}, "invalid-token", "no jti"),
    ({"exp": None}, "invalid-token", "no exp claim"),
    ({"exp": 10 ** 20}, "invalid-token", "too long"),
    ({"exp": 2 * 86400}, "invalid-token", "too long"),
    ({"exp": "soon"}, "invalid-token", "invalid"),
])
def test_token_with_bad_standard_claims_is_refused(published, unique, change, code, fragment):
    signer, project, publisher = published
    now = int(time.time())
    change = {key: now + value if key in TIMED and isinstance(value, int) and value < 10 ** 12
              else value for key, value in change.items()}
    error = refusal(signer.token(AUD, github_claims(f"acme-{unique}", "widget"), **change))
    assert (error.code, fragment in error.description) == (code, True), error.description


def test_token_with_two_audiences_is_refused(published, unique):
    signer, *_ = published
    error = refusal(signer.token(AUD, github_claims(f"acme-{unique}", "widget"),
                                 aud=[AUD, "pypi"]))
    assert error.code == "invalid-token"


def test_token_signed_by_another_key_with_the_same_id_is_refused(published, unique):
    signer, *_ = published
    forger = Signer(signer.url)
    raw = signer.token(AUD, github_claims(f"acme-{unique}", "widget"), key=forger.key)
    raw = forger.key.sign(__import__("jwt").decode(raw, options={"verify_signature": False}),
                          kid=signer.key.kid)
    error = refusal(raw)
    assert error.code == "invalid-token" and "signature" in error.description


def test_a_token_id_is_exchanged_once(published, unique):
    signer, *_ = published
    raw = signer.token(AUD, github_claims(f"acme-{unique}", "widget"))
    exchange(raw)
    error = refusal(raw)
    assert error.code == "invalid-reuse-token"


def test_unknown_issuer_and_garbage_are_invalid_payloads(unique):
    stranger = Signer(f"https://stranger-{unique}.example")
    assert refusal(stranger.token(AUD, {"sub": "x"})).code == "invalid-payload"
    assert refusal("not a jwt").code == "invalid-payload"
    assert refusal("x" * 20000).code == "invalid-payload"
    assert refusal(None).code == "invalid-payload"


@pytest.mark.parametrize("claims, fragment", [
    ({"repository": "acme/other"}, "none for"),
    ({"workflow_ref": "W/widget/.github/workflows/ci.yml@refs/tags/v1"}, "workflow"),
    ({"environment": "x"}, None),  # no environment configured: any environment publishes
])
def test_runs_of_other_repositories_or_workflows_are_refused(published, unique, claims, fragment):
    signer, *_ = published
    base = github_claims(f"acme-{unique}", "widget")
    if "workflow_ref" in claims:
        ref = f"acme-{unique}/widget/.github/workflows/ci.yml@refs/tags/v1"
        claims = {"workflow_ref": ref, "job_workflow_ref": ref}
    raw = signer.token(AUD, {**base, **claims})
    if fragment is None:
        assert exchange(raw).projects
        return
    error = refusal(raw)
    assert error.code == "invalid-publisher" and fragment in error.description


def test_environment_is_enforced_when_configured(owner, github, unique):
    signer, issuer = github
    project = new_project(owner, f"tpenv-{unique}")
    services.add_publisher(project, issuer, {"owner": f"env-{unique}", "repository": "w",
                                             "workflow": "release.yml", "environment": "pypi"},
                           actor=owner)
    error = refusal(signer.token(AUD, github_claims(f"env-{unique}", "w", environment="test")))
    assert "environment test is not pypi" in error.description
    assert exchange(signer.token(AUD, github_claims(f"env-{unique}", "w", environment="PyPI")))


def test_removing_a_publisher_revokes_its_tokens(published, owner, unique):
    signer, project, publisher = published
    minted = exchange(signer.token(AUD, github_claims(f"acme-{unique}", "widget")))
    revoked = services.remove_publisher(publisher, actor=owner)
    assert len(revoked) == 1
    with pytest.raises(TokenError):
        verify(minted.token, permission="upload", project=project.name, version="1.0")
    assert refusal(signer.token(AUD, github_claims(f"acme-{unique}", "widget"))).code == \
        "invalid-publisher"


def test_only_owners_with_two_factor_may_add_publishers(github, owner, unique):
    _, issuer = github
    project = new_project(owner, f"tpown-{unique}")
    maintainer = new_user("maint")
    Role.objects.create(project=project, user=maintainer, role_name=RoleName.MAINTAINER)
    fields = {"owner": "acme", "repository": "widget", "workflow": "release.yml"}
    with pytest.raises(Exception, match="Only Owners"):
        services.add_publisher(project, issuer, fields, actor=maintainer)
    no_2fa = new_user("no2fa", two_factor=False)
    Role.objects.create(project=project, user=no_2fa, role_name=RoleName.OWNER)
    with pytest.raises(Exception):
        services.add_publisher(project, issuer, fields, actor=no_2fa)


@pytest.mark.parametrize("fields, fragment", [
    ({"owner": "acme", "repository": "widget"}, "workflow file name is required"),
    ({"owner": "ac/me", "repository": "widget", "workflow": "r.yml"}, "not a valid owner"),
    ({"owner": "acme", "repository": "widget", "workflow": "release.sh"}, "workflow file name"),
    ({"owner": "acme", "repository": "widget", "workflow": "r.yml", "owner_id": "x"}, "owner id"),
])
def test_bad_publisher_fields_are_refused_with_one_line(github, owner, unique, fields, fragment):
    _, issuer = github
    project = new_project(owner, f"tpbad-{unique}")
    with pytest.raises(ValidationError, match=fragment):
        services.add_publisher(project, issuer, fields, actor=owner)
    assert not Publisher.objects.filter(project=project).exists()


def test_pending_publisher_creates_the_project_with_its_owner(github, owner, unique):
    signer, issuer = github
    name = f"tppend-{unique}"
    services.add_pending_publisher(name, issuer, {"owner": f"pend-{unique}", "repository": "w",
                                                  "workflow": "release.yml"}, actor=owner)
    assert not Project.objects.filter(normalized_name=name).exists()
    minted = exchange(signer.token(AUD, github_claims(f"pend-{unique}", "w")))
    project = Project.objects.get(normalized_name=name)
    assert minted.projects == (name,)
    assert Role.objects.get(project=project).user == owner
    publisher = Publisher.objects.get(project=project)
    assert not publisher.is_pending and publisher.fields["owner_id"] == "1001"


def test_pending_publisher_for_an_existing_project_is_refused(github, owner, unique):
    _, issuer = github
    project = new_project(owner, f"tpex-{unique}")
    with pytest.raises(ValidationError, match="exists already"):
        services.add_pending_publisher(project.name, issuer, {
            "owner": "a", "repository": "w", "workflow": "release.yml"}, actor=owner)


def test_expired_pending_publishers_are_removed(github, owner, unique):
    signer, issuer = github
    publisher = services.add_pending_publisher(f"tpexp-{unique}", issuer, {
        "owner": f"exp-{unique}", "repository": "w", "workflow": "release.yml"}, actor=owner)
    Publisher.objects.filter(pk=publisher.pk).update(pending_expires=timezone.now())
    assert refusal(signer.token(AUD, github_claims(f"exp-{unique}", "w"))).code == \
        "invalid-publisher"
    # (A worker of another test's server may have removed it first: they share the database.)
    services.expire_pending_publishers()
    assert not Publisher.objects.filter(pk=publisher.pk).exists()


def test_gitlab_and_custom_issuers(owner, unique):
    gitlab, gitlab_row = static_issuer(unique, "gitlab")
    custom, custom_row = static_issuer(unique, "custom", identifying_claims=["repository"])
    try:
        project = new_project(owner, f"tpgl-{unique}")
        services.add_publisher(project, gitlab_row, {
            "namespace": f"grp-{unique}/sub", "project": "widget",
            "ci_config_path": ".gitlab-ci.yml"}, actor=owner)
        services.add_publisher(project, custom_row, {
            "claims": {"repository": f"forge-{unique}/widget", "workflow": "release"}},
            actor=owner)
        host = gitlab.url.removeprefix("https://")
        assert exchange(gitlab.token(AUD, gitlab_claims(host, f"grp-{unique}/sub", "widget")))
        error = refusal(gitlab.token(AUD, gitlab_claims("gitlab.com", f"grp-{unique}/sub",
                                                        "widget")))
        assert "CI configuration" in error.description
        assert exchange(custom.token(AUD, {"repository": f"forge-{unique}/widget",
                                           "workflow": "release"}))
        error = refusal(custom.token(AUD, {"repository": f"forge-{unique}/widget",
                                           "workflow": "nightly"}))
        assert "claim workflow is nightly, not release" in error.description
    finally:
        for row in (gitlab_row, custom_row):
            Publisher.objects.filter(issuer=row).delete()
            row.delete()


@override_settings(OIDC_ALLOW_HTTP_ISSUERS=True, OIDC_JWKS_MIN_REFETCH=0)
def test_keys_are_discovered_cached_and_refetched_when_the_issuer_rotates(owner, unique):
    server = IssuerServer()
    keys.clear_cache()
    row = services.add_issuer(name=f"disc-{unique}", kind="github", url=server.url)
    try:
        project = new_project(owner, f"tpdisc-{unique}")
        services.add_publisher(project, row, {"owner": f"d-{unique}", "repository": "w",
                                              "workflow": "release.yml"}, actor=owner)
        assert exchange(server.token(AUD, github_claims(f"d-{unique}", "w")))
        assert exchange(server.token(AUD, github_claims(f"d-{unique}", "w")))
        assert server.jwks_fetches == 1
        server.rotate()
        assert exchange(server.token(AUD, github_claims(f"d-{unique}", "w")))
        assert server.jwks_fetches == 2
    finally:
        Publisher.objects.filter(issuer=row).delete()
        row.delete()
        server.stop()


def test_http_issuers_are_refused_unless_allowed(unique):
    with pytest.raises(ValidationError, match="https"):
        services.add_issuer(name=f"plain-{unique}", kind="github", url="http://ci.example")


def test_owners_are_mailed_when_publishers_are_added_and_removed(github, owner, unique):
    from tests.unit.packaging.support import make_member, outbox, recipients

    _, issuer = github
    project = new_project(owner, f"tpmail-{unique}")
    other_owner = new_user("owner2")
    make_member(project, owner, other_owner, RoleName.OWNER)
    with outbox() as sent:
        publisher = services.add_publisher(project, issuer, {
            "owner": "acme", "repository": "widget", "workflow": "release.yml"}, actor=owner)
        services.remove_publisher(publisher, actor=owner)
    subjects = [m.subject for m in sent]
    assert any("trusted publisher added" in s for s in subjects), subjects
    assert any("trusted publisher removed" in s for s in subjects), subjects
    assert {owner.email, other_owner.email} <= recipients(sent)
    assert "acme/widget release.yml" in sent[0].body


def test_trusted_only_mode_revokes_scoped_tokens_and_tells_the_owners(github, owner, unique):
    from bastion.tokens.services import create_token
    from tests.unit.packaging.support import outbox

    _, issuer = github
    project = new_project(owner, f"tponly-{unique}")
    _, scoped = create_token(owner, projects=[project.name])
    _, other = create_token(owner, projects=["something-else"])
    _, wide = create_token(owner)
    with pytest.raises(ValidationError, match="Add a trusted publisher first"):
        services.set_trusted_only(project, True, actor=owner)
    services.add_publisher(project, issuer, {"owner": "a", "repository": "w",
                                             "workflow": "release.yml"}, actor=owner)
    with outbox() as sent:
        revoked = services.set_trusted_only(project, True, actor=owner)
    assert revoked == [str(scoped.id)]
    for row, is_revoked in ((scoped, True), (other, False), (wide, False)):
        row.refresh_from_db()
        assert (row.revoked is not None) == is_revoked
    assert any("trusted-publishing-only" in m.subject for m in sent)
    with pytest.raises(Exception, match="trusted-publishing-only mode"):
        services.check_token_may_upload(project)
    services.set_trusted_only(project, False, actor=owner)
    services.check_token_may_upload(project)
    event_tags = list(SecurityEvent.objects.filter(project_id_ref=project.pk)
                      .values_list("tag", flat=True))
    assert event_tags.count(tags.PROJECT_TRUSTED_ONLY_CHANGE) == 2


def test_the_first_run_offers_the_owners_trusted_publishing_only_mode(published, unique):
    from tests.unit.packaging.support import outbox

    signer, project, _publisher = published
    with outbox() as sent:
        exchange(signer.token(AUD, github_claims(f"acme-{unique}", "widget")))
        exchange(signer.token(AUD, github_claims(f"acme-{unique}", "widget")))
    offers = [m for m in sent if "first run of a trusted publisher" in m.subject]
    assert len(offers) == 1
    assert f"/manage/project/{project.normalized_name}/publishing/" in offers[0].body


def test_google_tokens_match_the_verified_email_and_are_used_once(owner, unique):
    google, row = static_issuer(unique, "google")
    try:
        project = new_project(owner, f"tpgoo-{unique}")
        services.add_publisher(project, row, {"email": f"ci-{unique}@p.iam.example"},
                               actor=owner)
        claims = {"email": f"ci-{unique}@p.iam.example", "email_verified": True, "sub": "1"}
        raw = google.token(AUD, claims, jti=None)
        assert exchange(raw).projects == (project.normalized_name,)
        assert refusal(raw).code == "invalid-reuse-token"
        unverified = google.token(AUD, {**claims, "email_verified": False}, jti=None)
        assert "not verified" in refusal(unverified).description
    finally:
        Publisher.objects.filter(issuer=row).delete()
        row.delete()


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
                    st.floats(allow_nan=False), st.text(max_size=40),
                    st.lists(st.text(max_size=5), max_size=3),
                    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))


@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "jti", "repository",
                                        "repository_owner", "repository_owner_id", "ref",
                                        "sha", "workflow_ref", "job_workflow_ref"]), _VALUES))
@example(changes={"iss": "\x00"})  # found on PostgreSQL: it refuses a NUL in a query
@example(changes={"repository": "a\x00b"})
def test_signed_tokens_with_any_claims_are_answered_never_crash(published, unique, changes):
    signer, *_ = published
    now = int(time.time())
    claims = {"iss": signer.url, "aud": AUD, "iat": now, "exp": now + 300,
              "jti": __import__("secrets").token_hex(8),
              **github_claims(f"acme-{unique}", "widget"), **changes}
    try:
        raw = signer.key.sign(claims)
    except (TypeError, ValueError, OverflowError):
        return  # PyJWT cannot even encode it
    try:
        exchange(raw)
    except ExchangeError as exc:
        assert exc.code and "\n" not in exc.description


def test_pending_publishers_meet_namespaces_and_look_alike_names(github, owner, unique):
    """A pending publisher reserves a name through the checks of creating a project: not
    under another user's namespace, and not a look-alike of an established name."""
    from bastion.packaging import namespaces

    _, issuer = github
    fields = {"owner": "a", "repository": "w", "workflow": "release.yml"}
    namespaces.grant(f"ns{unique}-", new_user("grantee").username, actor=None)
    try:
        with pytest.raises(ValidationError, match="namespace"):
            services.add_pending_publisher(f"ns{unique}-tool", issuer, fields, actor=owner)
        with pytest.raises(ValidationError, match="requests"):
            services.add_pending_publisher("reqeusts", issuer, fields, actor=owner)
    finally:
        namespaces.revoke(f"ns{unique}-", actor=None)
    assert not Publisher.objects.filter(issuer=issuer).exists()
