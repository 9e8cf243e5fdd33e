"""New local names an upstream serves are held for an administrator (proxy.holds).

pages.resolve is px-upstream's; here it is replaced by one that answers from the
UpstreamProject rows each test writes, so the receiver's own rules are what is tested.
Every upstream's patterns match only the test's own names, and every row a test adds goes
with it (the database is shared with the other tests of the worker).
"""

from __future__ import annotations

import fnmatch
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from bastion.accounts.services import create_user
from bastion.core.event_text import EventFacts, describe
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import CLI
from bastion.packaging import services
from bastion.packaging.models import Project
from bastion.proxy import holds, pages
from bastion.proxy.models import NameHold, Upstream, UpstreamProject
from tests.unit.packaging.support import add, new_user, outbox, recipients, wheel

SENTENCE = ("The name '{name}' is also served by the upstream '{upstream}': creating it here "
            "would take it over for every install, so an administrator must approve it first "
            "(request #{number}).")


class FakeResolve:
    """pages.resolve answering from the cached rows, as the real one does once it asked.

    A name with no row is answered as the upstream's 404 (a ``found=False`` row) when
    ``live``; ``down``: the upstream cannot be reached, and resolve answers None as the real
    one does then; ``error``: resolve raises it.
    """

    def __init__(self):
        self.calls: list[tuple[str, bool]] = []
        self.error: Exception | None = None
        self.down = False

    def __call__(self, normalized: str, *, live: bool = True):
        self.calls.append((normalized, live))
        if self.error is not None:
            raise self.error
        for upstream in Upstream.objects.filter(enabled=True).order_by("priority", "name"):
            if not any(fnmatch.fnmatchcase(normalized, p) for p in upstream.include):
                continue
            page = UpstreamProject.objects.filter(upstream=upstream,
                                                  normalized_name=normalized).first()
            if page is None and live and not self.down:
                page = serve(upstream, normalized, versions=(), found=False)
            if page is None:
                return None
            if page.found:
                return pages.Resolution(upstream=upstream, project=page, stale=False)
        return None


@pytest.fixture
def resolve(monkeypatch):
    fake = FakeResolve()
    monkeypatch.setattr(pages, "resolve", fake)
    return fake


@pytest.fixture
def prefix(unique):
    return f"hold{unique}"


@pytest.fixture
def upstream(prefix):
    now = timezone.now()
    row = Upstream.objects.create(name=f"up-{prefix}", url="http://127.0.0.1:9/simple/",
                                  include=[f"{prefix}-*"], created=now, updated=now)
    yield row
    row.delete()
    NameHold.objects.filter(normalized_name__startswith=f"{prefix}-").delete()


@pytest.fixture
def admin(unique):
    user = create_user(f"adm{unique}", f"adm{unique}@example.test", email_verified=True,
                       is_admin=True)
    yield user
    # Other tests' mail to administrators must not reach an address that outlives its test.
    user.is_active = False
    user.save(update_fields=["is_active"])


def serve(upstream, name: str, *, versions=("1.0",), uploaded_days_ago: float | None = 400,
          seen_days_ago: float = 1, found: bool = True) -> UpstreamProject:
    now = timezone.now()
    listing = [pages.document_entry(pages.ListedFile(
        filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl", version=version,
        url=f"http://127.0.0.1:9/{name}-{version}.whl", sha256="0" * 64, size=None,
        upload_time=(now - timedelta(days=uploaded_days_ago)
                     if uploaded_days_ago is not None else None),
        first_seen=now - timedelta(days=seen_days_ago), requires_python="", yanked=False,
        yanked_reason="", has_metadata=False, metadata_sha256="")) for version in versions]
    return UpstreamProject.objects.create(upstream=upstream, normalized_name=name, name=name,
                                          found=found, fetched=now, checked=now,
                                          listing=listing)


def attempt(name: str, user) -> ValidationError | None:
    """What the upload's first check (before its transaction) says about a new name."""
    try:
        services.check_new_project_name(name, user)
    except ValidationError as exc:
        return exc
    return None


def request_events(hold) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(tag=tags.PROXY_NAME_HOLD_REQUEST,
                                             additional__hold_id=hold.pk))


def test_a_new_name_an_upstream_serves_is_held_mailed_and_logged(resolve, upstream, prefix,
                                                                 admin):
    name = f"{prefix}-requests"
    serve(upstream, name)
    user = new_user()
    with outbox() as sent:
        refused = attempt(name, user)
    hold = NameHold.objects.get(normalized_name=name)
    assert str(refused) == SENTENCE.format(name=name, upstream=upstream.name, number=hold.pk)
    assert (hold.status, hold.requested_by, hold.upstream_name, hold.attempts) == (
        "pending", user, upstream.name, 1)
    assert resolve.calls == [(name, True)]  # outside a transaction: a live lookup
    [event] = request_events(hold)
    assert event.actor == user and event.additional["upstream"] == upstream.name
    assert admin.email in recipients(sent) and user.email not in recipients(sent)
    [to_admin] = [m for m in sent if m.to == [admin.email]]
    assert f"New project name held: {name} (request #{hold.pk})" in to_admin.subject
    assert f"bastion admin held approve {name}" in to_admin.body
    assert not Project.objects.filter(normalized_name=name).exists()


def test_a_repeated_attempt_counts_without_a_second_mail_or_event(resolve, upstream, prefix,
                                                                  admin):
    name = f"{prefix}-numpy"
    serve(upstream, name)
    user, other = new_user(), new_user()
    attempt(name, user)
    with outbox() as sent:
        again = attempt(name, user)
        hold = NameHold.objects.get(normalized_name=name)
        assert f"(request #{hold.pk})" in str(again)
        assert hold.attempts == 2 and len(request_events(hold)) == 1
        attempt(name, other)  # someone else trying the same name is worth a line in the log
        attempt(name, other)
    hold.refresh_from_db()
    assert hold.attempts == 4 and hold.requested_by == user
    assert [e.actor for e in request_events(hold)] == [user, other]
    assert sent == []  # the administrators were told once, when the hold was made
    assert NameHold.objects.filter(normalized_name=name).count() == 1


def test_inside_a_transaction_nothing_is_written_and_only_the_cache_is_asked(
        resolve, upstream, prefix, admin):
    name = f"{prefix}-flask"
    serve(upstream, name)
    events = SecurityEvent.objects.count()
    with outbox() as sent:
        with pytest.raises(ValidationError, match="must approve it first") as refused:
            with transaction.atomic():
                services.check_new_project_name(name, new_user())
    assert resolve.calls == [(name, False)]
    assert not NameHold.objects.filter(normalized_name=name).exists()
    assert SecurityEvent.objects.count() == events and sent == []
    assert "run the upload again to request it" in str(refused.value)
    # Once the first check recorded the hold, the second one names it.
    hold_refusal = attempt(name, new_user())
    hold = NameHold.objects.get(normalized_name=name)
    with pytest.raises(ValidationError) as refused:
        with transaction.atomic():
            services.check_new_project_name(name, new_user())
    assert str(refused.value) == str(hold_refusal)
    assert NameHold.objects.get(pk=hold.pk).attempts == 1


def test_an_upload_straight_to_add_file_creates_nothing(resolve, upstream, prefix):
    name = f"{prefix}-django"
    serve(upstream, name)
    with pytest.raises(ValidationError, match="also served by the upstream"):
        add(new_user(), wheel(name, "1.0"))
    assert not Project.objects.filter(normalized_name=name).exists()


def test_an_approved_name_is_created_by_the_next_upload_of_anyone(resolve, upstream, prefix,
                                                                   admin):
    name = f"{prefix}-acme-util"
    serve(upstream, name)
    requester, someone_else = new_user(), new_user()
    attempt(name, requester)
    with outbox() as sent:
        hold = holds.approve(name, note="our fork, checked with the team", actor=admin)
    assert hold.status == "approved" and hold.decided_by == admin
    assert requester.email in recipients(sent) and admin.email not in recipients(sent)
    [event] = SecurityEvent.objects.filter(tag=tags.ADMIN_NAME_HOLD_APPROVE,
                                           additional__hold_id=hold.pk)
    assert event.actor == admin and event.user == requester
    assert attempt(name, someone_else) is None
    add(someone_else, wheel(name, "1.0"))
    assert Project.objects.filter(normalized_name=name).exists()
    with pytest.raises(ValidationError, match="already approved"):
        holds.approve(name, actor=admin)
    with pytest.raises(ValidationError, match="already created here"):
        holds.reject(name, actor=admin)


def test_a_rejected_name_stays_refused_with_the_note(resolve, upstream, prefix, admin):
    name = f"{prefix}-urllib3"
    serve(upstream, name)
    requester = new_user()
    requester.language = "de"
    requester.save(update_fields=["language"])
    attempt(name, requester)
    with outbox() as sent:
        hold = holds.reject(name.upper(), note="use the upstream one", info=CLI)
    assert hold.status == "rejected" and hold.decided_by is None
    [to_requester] = [m for m in sent if m.to == [requester.email]]
    assert "abgelehnt" in to_requester.subject  # in the requester's language
    assert admin.email in recipients(sent)
    refused = attempt(name, requester)
    assert str(refused) == (f"The name '{name}' is also served by the upstream "
                            f"'{upstream.name}', and an administrator rejected creating it "
                            f"here (request #{hold.pk}): use the upstream one")
    with pytest.raises(ValidationError, match="already rejected"):
        holds.reject(name)
    assert holds.approve(name, note="changed our mind").status == "approved"


def test_only_an_administrator_decides(resolve, upstream, prefix):
    name = f"{prefix}-mine"
    serve(upstream, name)
    requester = new_user()
    attempt(name, requester)
    with pytest.raises(ValidationError, match="Only an active site administrator") as refused:
        holds.approve(name, actor=requester)
    assert refused.value.status == 403
    assert NameHold.objects.get(normalized_name=name).status == "pending"


def test_deciding_on_a_name_nobody_asked_for_is_refused(prefix):
    with pytest.raises(ValidationError, match=f"No project name '{prefix}-nothing' is held"):
        holds.approve(f"{prefix}-nothing")
    with pytest.raises(ValidationError, match="under 500 characters"):
        holds.reject(f"{prefix}-nothing", note="x" * 501)


@pytest.mark.parametrize("versions, held", [(("1.0", "2.0"), False),
                                            (("1.0", "1.1", "2.0"), True)])
def test_names_with_fewer_releases_than_the_threshold_are_not_held(resolve, upstream, prefix,
                                                                  versions, held):
    name = f"{prefix}-young"
    serve(upstream, name, versions=versions)
    with override_settings(PROXY_HOLD_MIN_RELEASES=3):
        assert (attempt(name, new_user()) is not None) == held
    assert NameHold.objects.filter(normalized_name=name).exists() == held


def test_the_age_threshold_reads_upload_time_or_else_first_seen(resolve, upstream, prefix):
    with override_settings(PROXY_HOLD_MIN_AGE_DAYS=30):
        serve(upstream, f"{prefix}-fresh", uploaded_days_ago=10, seen_days_ago=40)
        assert attempt(f"{prefix}-fresh", new_user()) is None
        serve(upstream, f"{prefix}-old", uploaded_days_ago=40, seen_days_ago=1)
        assert attempt(f"{prefix}-old", new_user()) is not None
        serve(upstream, f"{prefix}-undated", uploaded_days_ago=None, seen_days_ago=40)
        assert attempt(f"{prefix}-undated", new_user()) is not None


def test_a_name_no_upstream_serves_is_not_held(resolve, upstream, prefix):
    serve(upstream, f"{prefix}-gone", found=False)
    assert attempt(f"{prefix}-gone", new_user()) is None
    assert attempt(f"{prefix}-unknown", new_user()) is None
    assert not NameHold.objects.filter(normalized_name__startswith=prefix).exists()


def test_a_name_outside_every_upstreams_patterns_asks_no_upstream(resolve, upstream, unique):
    assert attempt(f"other{unique}", new_user()) is None
    assert resolve.calls == []


def test_a_disabled_upstream_holds_nothing(resolve, upstream, prefix):
    serve(upstream, f"{prefix}-off")
    upstream.enabled = False
    upstream.save(update_fields=["enabled"])
    assert attempt(f"{prefix}-off", new_user()) is None


def test_an_unreachable_upstream_with_nothing_cached_holds_the_name(resolve, upstream, prefix,
                                                                   admin):
    name = f"{prefix}-private"
    resolve.error = httpx.ConnectError("connection refused")
    with outbox() as sent:
        refused = attempt(name, new_user())
    hold = NameHold.objects.get(normalized_name=name)
    assert str(refused) == (
        f"Bastion could not check upstream '{upstream.name}' for the name '{name}': creating "
        "it here could take over a name it serves, so an administrator must approve it first "
        f"(request #{hold.pk}).")
    assert request_events(hold)[0].additional["unchecked"] is True
    assert admin.email in recipients(sent)


def test_an_unreachable_upstream_resolve_answers_none_for_holds_the_name(resolve, upstream,
                                                                       prefix):
    name = f"{prefix}-down"
    resolve.down = True
    refused = attempt(name, new_user())
    assert f"could not check upstream '{upstream.name}'" in str(refused)
    assert NameHold.objects.get(normalized_name=name).status == "pending"
    resolve.down = False  # back, and its 404 answers the question the hold was for
    assert attempt(name, new_user()) is None


def test_an_unreachable_upstream_whose_cached_answer_was_404_holds_nothing(resolve, upstream,
                                                                           prefix):
    serve(upstream, f"{prefix}-absent", found=False)
    resolve.error = httpx.ConnectTimeout("timed out")
    assert attempt(f"{prefix}-absent", new_user()) is None


def test_the_holds_list_puts_pending_first(resolve, upstream, prefix):
    for suffix in ("a", "b"):
        serve(upstream, f"{prefix}-{suffix}")
        attempt(f"{prefix}-{suffix}", new_user())
    holds.reject(f"{prefix}-a")
    pending = [h.name for h in holds.holds() if h.name.startswith(prefix)]
    assert pending == [f"{prefix}-b"]
    every = [h.name for h in holds.holds(pending_only=False) if h.name.startswith(prefix)]
    assert every == [f"{prefix}-b", f"{prefix}-a"]


def test_the_command_line_lists_approves_and_rejects(resolve, upstream, prefix, capsys):
    from bastion.cli import build_parser

    def run(*argv) -> tuple[int, str]:
        args = build_parser().parse_args(["admin", "held", *argv])
        status = args.func(args)
        captured = capsys.readouterr()
        return status, captured.out + captured.err

    for suffix in ("x", "y"):
        serve(upstream, f"{prefix}-{suffix}")
        attempt(f"{prefix}-{suffix}", new_user())
    status, out = run("list")
    assert status == 0 and f" {prefix}-x pending upstream={upstream.name}" in out
    status, out = run("approve", f"{prefix}-x", "--note", "ours")
    assert status == 0 and out.startswith(f"approved {prefix}-x (request #")
    status, out = run("reject", f"{prefix}-y")
    assert status == 0 and out.startswith(f"rejected {prefix}-y")
    status, out = run("list")
    assert f"{prefix}-x" not in out and f"{prefix}-y" not in out
    status, out = run("list", "--all")
    assert f"{prefix}-x approved" in out and "note='ours'" in out
    status, out = run("approve", f"{prefix}-x")
    assert status == 2 and f"The name '{prefix}-x' was already approved." in out
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_NAME_HOLD_REJECT).latest("sequence")
    assert event.user_agent == "bastion-cli"


def test_the_events_read_as_sentences():
    request = EventFacts(tag=tags.PROXY_NAME_HOLD_REQUEST, actor="mallory", user="mallory",
                         additional={"name": "requests", "upstream": "pypi", "hold_id": 12})
    assert describe(request) == ("mallory tried to create the project requests, which the "
                                 "upstream pypi serves: held for an administrator (request #12)")
    approve = EventFacts(tag=tags.ADMIN_NAME_HOLD_APPROVE, actor="root",
                         additional={"name": "requests", "upstream": "pypi", "hold_id": 12,
                                     "note": "fork"})
    assert describe(approve) == ("root approved creating the project requests here although the "
                                 "upstream pypi serves it (request #12): 'fork'")
