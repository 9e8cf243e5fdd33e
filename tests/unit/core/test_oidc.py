"""Trusted publishers' claim checks (pure, no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.core import oidc
from bastion.core.oidc import CustomSpec, GitHubSpec, GitLabSpec, GoogleSpec, check

GITHUB = GitHubSpec(owner="acme", repository="widget", workflow="release.yml",
                    owner_id="1001", repository_id="2002")


def github_claims(**overrides):
    claims = {
        "iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/widget:ref:refs/tags/v1",
        "repository": "acme/widget", "repository_owner": "acme", "repository_owner_id": "1001",
        "repository_id": "2002", "ref": "refs/tags/v1", "sha": "a" * 40,
        "workflow_ref": "acme/widget/.github/workflows/release.yml@refs/tags/v1",
        "job_workflow_ref": "acme/widget/.github/workflows/release.yml@refs/tags/v1",
        "event_name": "push", "run_id": "77", "run_attempt": "1", "environment": "pypi",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


GITLAB = GitLabSpec(namespace="group/sub", project="widget", ci_config_path=".gitlab-ci.yml",
                    namespace_id="11", project_id="22")


def gitlab_claims(**overrides):
    claims = {
        "iss": "https://gitlab.com",
        "sub": "project_path:group/sub/widget:ref_type:tag:ref:v1",
        "project_path": "group/sub/widget", "namespace_path": "group/sub",
        "namespace_id": "11", "project_id": "22", "ref_path": "refs/tags/v1", "sha": "b" * 40,
        "ci_config_ref_uri": "gitlab.com/group/sub/widget//.gitlab-ci.yml@refs/tags/v1",
        "pipeline_id": "9", "job_id": "10",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# --- GitHub ----------------------------------------------------------------------------

def test_github_run_of_the_named_workflow_matches():
    assert check(GITHUB, github_claims()) is None


def test_github_names_compare_case_insensitively():
    assert check(GITHUB, github_claims(repository="ACME/Widget", repository_owner="Acme")) is None


@pytest.mark.parametrize("overrides, fragment", [
    ({"repository": "acme/other"}, "repository acme/other is not acme/widget"),
    ({"repository_owner": "mallory"}, "repository owner mallory"),
    ({"repository_owner_id": "666"}, "repository owner id 666 is not the pinned 1001"),
    ({"repository_id": "3003"}, "repository id 3003 is not the pinned 2002"),
    ({"repository_owner_id": None}, "no repository_owner_id claim"),
    ({"ref": None}, "no ref or sha"),
    ({"sha": None}, "no ref or sha"),
    ({"event_name": "pull_request_target"}, "pull_request_target"),
    ({"workflow_ref": "acme/widget/.github/workflows/ci.yml@refs/tags/v1",
      "job_workflow_ref": "acme/widget/.github/workflows/ci.yml@refs/tags/v1"},
     "workflow ci.yml is not release.yml"),
    # The file is right but lives in another repository.
    ({"workflow_ref": "evil/fork/.github/workflows/release.yml@refs/tags/v1",
      "job_workflow_ref": "evil/fork/.github/workflows/release.yml@refs/tags/v1"},
     "workflow (none) is not release.yml"),
    # The ref in the workflow reference must be the run's ref or sha.
    ({"workflow_ref": "acme/widget/.github/workflows/release.yml@refs/heads/x",
      "job_workflow_ref": "acme/widget/.github/workflows/release.yml@refs/heads/x"},
     "ran at another ref"),
])
def test_github_mismatches_are_refused_with_the_reason(overrides, fragment):
    reason = check(GITHUB, github_claims(**overrides))
    assert reason is not None and fragment in reason


def test_github_integer_ids_match_their_text():
    assert check(GITHUB, github_claims(repository_owner_id=1001, repository_id=2002)) is None


def test_github_boolean_or_list_claims_count_as_absent():
    assert "no repository_id" in check(GITHUB, github_claims(repository_id=True))
    assert "repository (none)" in check(GITHUB, github_claims(repository=["acme/widget"]))


def test_github_reusable_workflow_in_another_repository_matches_by_the_calling_workflow():
    claims = github_claims(
        job_workflow_ref="acme/shared/.github/workflows/publish.yml@refs/heads/main")
    assert check(GITHUB, claims) is None


def test_github_job_workflow_matches_a_reusable_workflow_of_the_same_repository():
    spec = GitHubSpec(owner="acme", repository="widget", workflow="publish.yml")
    claims = github_claims(
        job_workflow_ref=f"acme/widget/.github/workflows/publish.yml@{'a' * 40}")
    assert check(spec, claims) is None


def test_github_environment_is_required_when_configured_case_insensitively():
    spec = GitHubSpec(owner="acme", repository="widget", workflow="release.yml", environment="PyPI")
    assert check(spec, github_claims(environment="pypi")) is None
    assert "environment staging is not PyPI" in check(spec, github_claims(environment="staging"))
    assert "environment (none)" in check(spec, github_claims(environment=None))


def test_github_without_environment_accepts_any_environment():
    spec = GitHubSpec(owner="acme", repository="widget", workflow="release.yml")
    assert check(spec, github_claims(environment="anything")) is None


def test_github_publisher_given_only_names_learns_the_ids_of_its_first_run():
    spec = GitHubSpec(owner="acme", repository="widget", workflow="release.yml")
    assert check(spec, github_claims()) is None
    assert oidc.ids_to_learn(spec, github_claims()) == {"owner_id": "1001", "repository_id": "2002"}
    assert oidc.ids_to_learn(GITHUB, github_claims()) == {}


# --- GitLab ----------------------------------------------------------------------------

def test_gitlab_run_of_the_named_ci_file_matches():
    assert check(GITLAB, gitlab_claims()) is None


@pytest.mark.parametrize("overrides, fragment", [
    ({"project_path": "group/sub/other"}, "project group/sub/other is not group/sub/widget"),
    ({"sub": "project_path:group/sub/other:ref_type:tag:ref:v1"}, "subject does not name"),
    ({"namespace_id": "12"}, "namespace id 12 is not the pinned 11"),
    ({"project_id": "23"}, "project id 23 is not the pinned 22"),
    ({"ref_path": None}, "no ref_path or sha"),
    ({"ci_config_ref_uri": "gitlab.com/group/sub/widget//other.yml@refs/tags/v1"},
     "CI configuration other.yml is not .gitlab-ci.yml"),
    ({"ci_config_ref_uri": "evil.example/group/sub/widget//.gitlab-ci.yml@refs/tags/v1"},
     "CI configuration"),
    ({"ci_config_ref_uri": "gitlab.com/group/other//.gitlab-ci.yml@refs/tags/v1"},
     "CI configuration"),
])
def test_gitlab_mismatches_are_refused_with_the_reason(overrides, fragment):
    reason = check(GITLAB, gitlab_claims(**overrides))
    assert reason is not None and fragment in reason


def test_gitlab_environment_compares_case_sensitively():
    spec = GitLabSpec(namespace="group/sub", project="widget", ci_config_path=".gitlab-ci.yml",
                      environment="prod")
    assert check(spec, gitlab_claims(environment="prod")) is None
    assert "environment Prod is not prod" in check(spec, gitlab_claims(environment="Prod"))


def test_gitlab_self_managed_host_must_be_the_issuers():
    spec = GitLabSpec(namespace="group/sub", project="widget", ci_config_path=".gitlab-ci.yml",
                      host="git.example.com")
    uri = "git.example.com/group/sub/widget//.gitlab-ci.yml@refs/tags/v1"
    assert check(spec, gitlab_claims(ci_config_ref_uri=uri)) is None
    assert check(spec, gitlab_claims()) is not None


def test_gitlab_publisher_learns_namespace_and_project_ids():
    spec = GitLabSpec(namespace="group/sub", project="widget", ci_config_path=".gitlab-ci.yml")
    assert oidc.ids_to_learn(spec, gitlab_claims()) == {"namespace_id": "11", "project_id": "22"}


# --- Google and custom -----------------------------------------------------------------

def test_google_needs_the_verified_email_and_the_subject_when_given():
    spec = GoogleSpec(email="ci@proj.iam.gserviceaccount.com", subject="123")
    claims = {"email": "CI@proj.iam.gserviceaccount.com", "email_verified": True, "sub": "123"}
    assert check(spec, claims) is None
    assert "not verified" in check(spec, {**claims, "email_verified": "true"})
    assert "subject 456" in check(spec, {**claims, "sub": "456"})
    assert "email x@y" in check(spec, {**claims, "email": "x@y"})


def test_custom_needs_every_named_claim_exactly():
    spec = CustomSpec({"repository": "acme/widget", "repository_owner_id": "5"})
    assert check(spec, {"repository": "acme/widget", "repository_owner_id": 5}) is None
    assert "claim repository is ACME/widget" in check(
        spec, {"repository": "ACME/widget", "repository_owner_id": "5"})
    assert "claim repository_owner_id is (none)" in check(spec, {"repository": "acme/widget"})


def test_custom_with_no_claims_matches_nothing():
    assert check(CustomSpec({}), {"anything": "x"}) is not None


@given(st.dictionaries(st.text(max_size=20), st.one_of(
    st.text(max_size=50), st.integers(), st.booleans(), st.none(),
    st.lists(st.text(max_size=5), max_size=3))))
def test_arbitrary_claims_never_crash_and_only_the_exact_ones_match(claims):
    for spec in (GITHUB, GITLAB, GoogleSpec(email="a@b"), CustomSpec({"k": "v"})):
        reason = check(spec, claims)
        assert reason is None or (isinstance(reason, str) and "\n" not in reason)
    assert check(GITHUB, claims) is not None  # none of the required claims are generated


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.lower() != "acme/widget"))
def test_any_other_repository_is_refused(repository):
    assert check(GITHUB, github_claims(repository=repository)) is not None


def test_run_identity_keeps_the_run_and_drops_the_rest():
    identity = oidc.run_identity("github", github_claims(actor="bob"))
    assert identity == {"repository": "acme/widget",
                        "workflow": "acme/widget/.github/workflows/release.yml@refs/tags/v1",
                        "ref": "refs/tags/v1", "sha": "a" * 40, "run_id": "77",
                        "run_attempt": "1", "environment": "pypi"}
    assert oidc.run_identity("gitlab", gitlab_claims())["run_id"] == "9"


def test_repository_urls_and_what_points_into_them():
    github = oidc.GitHubSpec(owner="Acme", repository="Widget", workflow="release.yml")
    assert oidc.repository_url(github, oidc.GITHUB_ISSUER) == "https://github.com/Acme/Widget"
    assert oidc.repository_url(github, "https://ghe.example/_services/token") == \
        "https://ghe.example/Acme/Widget"
    gitlab = oidc.GitLabSpec(namespace="g/sub", project="p", ci_config_path=".gitlab-ci.yml")
    assert oidc.repository_url(gitlab, "https://gitlab.com") == "https://gitlab.com/g/sub/p"
    assert oidc.repository_url(oidc.GoogleSpec(email="a@b.c"), "https://accounts.google.com") \
        is None
    base = "https://github.com/Acme/Widget"
    for url in (base, base + "/", "https://github.com/acme/widget/issues", base + ".git"):
        assert oidc.points_into(url, base), url
    for url in ("http://github.com/Acme/Widget", "https://github.com/Acme/Widget-fork",
                "https://github.com/Acme", "https://github.com.evil/Acme/Widget",
                "https://user@github.com/Acme/Widget", "https://github.com:8443/Acme/Widget",
                "https://[bad/Acme/Widget", "https://evil.example/?https://github.com/Acme/Widget"):
        assert not oidc.points_into(url, base), url
