"""Dependency confusion: a new local project under a name an upstream serves is held until an
administrator approves it, end to end against the real server.

The upstream is real (tests/e2e/proxy_support.py: a static PEP 691/503 tree on 127.0.0.1).
Every upstream's include patterns match only the test's own names, and each test removes what
it added: the servers of one worker share one database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.models import Project
from bastion.proxy.models import NameHold, NameHoldStatus
from tests.artifacts import Wheel
from tests.e2e.proxy_support import StaticUpstream

from .manage_support import Client, make_user, text_of
from .test_admin_commands import bastion, twine
from .uploads import uploader

SENTENCE = ("The name '{name}' is also served by the upstream '{upstream}': creating it here "
            "would take it over for every install, so an administrator must approve it first "
            "(request #{number}).")


@pytest.fixture
def tiny_upstream():
    """The real local upstream of the proxy's tests, started."""
    served = StaticUpstream()
    served.start()
    yield served
    served.stop()


def serve(upstream: StaticUpstream, name: str, version: str) -> None:
    upstream.add_wheel(Wheel(name, version),
                       upload_time=datetime.now(dt_timezone.utc) - timedelta(days=30))


@pytest.fixture
def configured_upstream(tiny_upstream, unique):
    """An upstream at ``tiny_upstream`` for names starting ``dc<unique>-`` only."""
    from bastion.proxy import upstreams

    prefix = f"dc{unique}"
    row = upstreams.add_upstream(f"up-{prefix}", tiny_upstream.url, include=[f"{prefix}-*"])
    yield row, prefix
    upstreams.remove_upstream(row.name)
    NameHold.objects.filter(normalized_name__startswith=f"{prefix}-").delete()


def test_a_name_an_upstream_serves_is_held_until_an_administrator_approves_it(
        server, configured_upstream, tiny_upstream, tmp_path):
    upstream, prefix = configured_upstream
    name = f"{prefix}-requests"
    serve(tiny_upstream, name, "2.0")
    user, token = uploader()
    wheel = Wheel(name, "1.0")

    status, output = twine(server, token, wheel, tmp_path)
    hold = NameHold.objects.get(normalized_name=name)
    assert status != 0 and "400" in output
    assert SENTENCE.format(name=name, upstream=upstream.name, number=hold.pk) in output, output
    assert hold.status == NameHoldStatus.PENDING and hold.requested_by == user
    assert tiny_upstream.requests_for(f"/simple/{name}/")
    assert not Project.objects.filter(normalized_name=name).exists()
    assert SecurityEvent.objects.filter(tag=tags.PROXY_NAME_HOLD_REQUEST,
                                        additional__hold_id=hold.pk).count() == 1

    approved = bastion("admin", "held", "approve", name, "--note", "our fork")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"approved {name} (request #{hold.pk})")

    status, output = twine(server, token, wheel, tmp_path)
    assert status == 0, output
    assert Project.objects.filter(normalized_name=name).exists()
    # From now on the name resolves locally: the upstream's 2.0 is no longer what installs get.
    page = Client(server).get(f"/simple/{name}/")
    assert page.status_code == 200 and "1.0" in page.text and "2.0" not in page.text


def test_a_rejected_name_stays_refused_and_an_unserved_name_is_not_held(
        server, configured_upstream, tiny_upstream, tmp_path):
    upstream, prefix = configured_upstream
    name = f"{prefix}-numpy"
    serve(tiny_upstream, name, "1.0")
    _user, token = uploader()
    twine(server, token, Wheel(name, "1.0"), tmp_path)
    rejected = bastion("admin", "held", "reject", name, "--note", "use the upstream one")
    assert rejected.returncode == 0, rejected.stderr
    status, output = twine(server, token, Wheel(name, "1.0"), tmp_path)
    assert status != 0 and "an administrator rejected creating it here" in output, output
    assert "use the upstream one" in output

    own = f"{prefix}-internal-only"  # the upstream answers 404: nothing to take over
    status, output = twine(server, token, Wheel(own, "1.0"), tmp_path)
    assert status == 0, output
    assert not NameHold.objects.filter(normalized_name=own).exists()


def test_an_unreachable_upstream_with_nothing_cached_holds_the_name(
        server, configured_upstream, tiny_upstream, tmp_path):
    upstream, prefix = configured_upstream
    tiny_upstream.stop()
    name = f"{prefix}-unknown"
    _user, token = uploader()
    status, output = twine(server, token, Wheel(name, "1.0"), tmp_path)
    assert status != 0 and f"could not check upstream '{upstream.name}'" in output, output
    assert NameHold.objects.get(normalized_name=name).status == NameHoldStatus.PENDING
    assert not Project.objects.filter(normalized_name=name).exists()


# --- the console ------------------------------------------------------------------------------

@pytest.fixture
def held(unique):
    """Pending holds under the test's own names (as the receiver leaves them)."""
    made = []

    def hold(suffix: str, user) -> NameHold:
        now = timezone.now()
        row = NameHold.objects.create(normalized_name=f"ch{unique}-{suffix}",
                                      name=f"ch{unique}-{suffix}", upstream_name="pypi",
                                      requested_by=user, requested=now, last_attempt=now)
        made.append(row.pk)
        return row

    yield hold
    NameHold.objects.filter(pk__in=made).delete()


def test_the_console_lists_held_names_and_approves_and_rejects_them(server, held):
    requester = make_user("rq")
    first, second = held("first", requester), held("second", requester)
    admin_user = make_user("ha", admin=True)
    admin = Client(server, admin_user)

    overview = text_of(admin.get("/admin/").text)
    assert "Held names" in overview
    page = admin.get("/admin/held/")
    assert page.status_code == 200
    text = text_of(page.text)
    assert first.name in text and second.name in text and "awaiting a decision" in text
    assert 'name="csrfmiddlewaretoken"' in page.text

    done = admin.post("/admin/held/approve/", {"name": first.name, "note": "our fork"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/held/")
    first.refresh_from_db()
    assert (first.status, first.note, first.decided_by) == ("approved", "our fork", admin_user)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_NAME_HOLD_APPROVE,
                                         additional__hold_id=first.pk).get()
    assert event.actor == admin_user and event.ip_address == "127.0.0.1"

    assert admin.post("/admin/held/reject/", {"name": second.name}).status_code == 302
    second.refresh_from_db()
    assert second.status == "rejected"
    listed = admin.get("/admin/held/").text
    assert f'id="held-{first.normalized_name}"' not in listed
    assert f'id="held-{second.normalized_name}"' not in listed
    every = admin.get("/admin/held/?all=1").text
    assert f'id="held-{first.normalized_name}" data-status="approved"' in every
    assert "our fork" in text_of(every)

    again = admin.post("/admin/held/reject/", {"name": second.name})
    assert again.status_code == 400 and "was already rejected" in text_of(again.text)
    unknown = admin.post("/admin/held/approve/", {"name": "x" * 300})
    assert unknown.status_code == 400
    assert admin.post("/admin/held/forget/", {"name": first.name}).status_code == 404


def test_the_console_refuses_everyone_else_and_forms_without_csrf(server, held):
    waiting = held("refused", make_user("rq"))
    for client, status in [(Client(server, make_user("rn")), 403),
                           (Client(server, make_user("rp", admin=True, two_factor=False)), 403),
                           (Client(server, make_user("rs", admin=True), recent=False), 302)]:
        assert client.get("/admin/held/").status_code == status
        assert client.post("/admin/held/approve/",
                           {"name": waiting.name}).status_code == status
    admin = Client(server, make_user("ha", admin=True))
    assert admin.post("/admin/held/approve/", {"name": waiting.name},
                      csrf=False).status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == NameHoldStatus.PENDING


def test_the_console_page_speaks_german_to_a_german_administrator(server, held):
    held("de", make_user("rq"))
    admin_user = make_user("hd", admin=True)
    admin_user.language = "de"
    admin_user.save(update_fields=["language"])
    text = text_of(Client(server, admin_user).get("/admin/held/").text)
    assert "Zurückgehaltene Namen" in text and "wartet auf Entscheidung" in text
