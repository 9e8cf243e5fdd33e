"""The upstream admin services: validation, events that never carry the password, and what
removing or re-pointing an upstream does to what was cached of it."""

from __future__ import annotations

import io
import json

import pytest
from django.utils import timezone

from bastion.core.errors import ValidationError
from bastion.core.event_text import EventFacts, describe
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.moderation import PermissionDenied
from bastion.proxy import upstreams
from bastion.proxy.models import Upstream, UpstreamFile, UpstreamProject
from bastion.storage import get_store
from tests.unit.packaging.support import new_user

SECRET = "pa55-never-shown"


@pytest.fixture
def name(unique):
    yield f"up-{unique}"
    if Upstream.objects.filter(name=f"up-{unique}").exists():
        upstreams.remove_upstream(f"up-{unique}")


def events_of(name: str):
    return list(SecurityEvent.objects.filter(tag__startswith="admin:upstream:",
                                             additional__name=name).order_by("sequence"))


def test_adding_normalizes_the_url_and_records_no_password(name):
    row = upstreams.add_upstream(name, "HTTPS://Private.Example/simple", username="ci",
                                 password=SECRET, include=["Acme-*"], page_ttl=0)
    assert row.url == "https://private.example/simple/" and row.include == ["acme-*"]
    assert row.page_ttl is None and row.enabled
    (event,) = events_of(name)
    assert event.tag == tags.ADMIN_UPSTREAM_ADD and event.additional["password"] == "set"
    assert SECRET not in json.dumps(event.additional)
    sentence = describe(EventFacts(tag=event.tag, additional=event.additional,
                                   user_agent="bastion-cli"))
    assert sentence == (f"An administrator (command line) added the upstream index '{name}' "
                        "at https://private.example/simple/")


def test_pypi_gets_its_file_host(name):
    row = upstreams.add_upstream(name, "https://pypi.org/simple", include=["nothing-here"])
    assert row.file_hosts == ["files.pythonhosted.org"]


@pytest.mark.parametrize("kwargs, message", [
    ({"url": "https://u:p@x.example/"}, "credentials"),
    ({"url": "https://x.example/#frag"}, "fragment"),
    ({"url": "https://x.example/?q=1"}, "query"),
    ({"url": "file:///etc/"}, "http"),
    ({"url": "https://x.example:99999/"}, "valid URL"),
    ({"url": "https://x.example/ space"}, "without spaces"),
    ({"include": ["a_b"]}, "name pattern"),
    ({"include": ["x"] * 101}, "At most"),
    ({"file_hosts": ["https://files.example"]}, "host name"),
    ({"priority": "1"}, "priority"),
    ({"priority": 10 ** 9}, "priority"),
    ({"page_ttl": 86401}, "TTL"),
    ({"page_ttl": -1}, "TTL"),
    ({"username": "a:b"}, "user name"),
    ({"password": "x\n"}, "password"),
])
def test_bad_input_is_refused_with_one_sentence_and_nothing_changes(name, kwargs, message):
    args = {"url": "https://x.example/simple/", **kwargs}
    url = args.pop("url")
    with pytest.raises(ValidationError, match=message) as caught:
        upstreams.add_upstream(name, url, **args)
    assert "\n" not in caught.value.message
    assert not Upstream.objects.filter(name=name).exists() and events_of(name) == []


@pytest.mark.parametrize("bad", ["", "Upper", "-lead", "a" * 51, "with space", "a/b"])
def test_a_bad_name_is_refused(bad):
    with pytest.raises(ValidationError, match="name"):
        upstreams.add_upstream(bad, "https://x.example/simple/")


def test_a_second_upstream_of_the_same_name_is_refused(name):
    upstreams.add_upstream(name, "https://x.example/simple/", include=["none"])
    with pytest.raises(ValidationError, match="exists already"):
        upstreams.add_upstream(name, "https://y.example/simple/")


def test_changes_are_recorded_field_by_field_and_the_password_only_as_changed(name):
    upstreams.add_upstream(name, "https://x.example/simple/", include=["none"], password=SECRET)
    row = upstreams.set_upstream(name, upstreams.UpstreamChanges(
        priority=5, password="other-secret", enabled=False, page_ttl=30))
    assert (row.priority, row.password, row.enabled, row.page_ttl) == (
        5, "other-secret", False, 30)
    change = events_of(name)[-1]
    assert sorted(change.additional["changed"]) == ["enabled", "page_ttl", "password",
                                                    "priority"]
    assert change.additional["priority"] == [100, 5]
    assert change.additional["password"] == "changed"
    assert "other-secret" not in json.dumps(change.additional)
    assert "password" in describe(EventFacts(tag=change.tag, additional=change.additional))

    row = upstreams.set_upstream(name, upstreams.UpstreamChanges(password="", page_ttl=-1))
    assert row.password == "" and row.page_ttl is None
    assert events_of(name)[-1].additional["password"] == "removed"


def test_a_missing_upstream_is_a_clear_refusal(unique):
    with pytest.raises(ValidationError, match="no upstream named"):
        upstreams.set_upstream(f"none-{unique}", upstreams.UpstreamChanges(priority=1))
    with pytest.raises(ValidationError, match="no upstream named"):
        upstreams.remove_upstream(f"none-{unique}")


def test_only_administrators_may_change_upstreams(name):
    with pytest.raises(PermissionDenied):
        upstreams.add_upstream(name, "https://x.example/simple/", actor=new_user())


def _cached_file(row: Upstream, filename: str) -> UpstreamFile:
    now = timezone.now()
    project = UpstreamProject.objects.create(upstream=row, normalized_name=filename.split("-")[0],
                                             name="x", fetched=now, checked=now)
    path = f"upstream/{row.pk}/ab/cd/{'ab' * 32}/{filename}"
    get_store().put(path, io.BytesIO(b"cached bytes"))
    return UpstreamFile.objects.create(project=project, filename=filename, version="1.0",
                                       url="https://x.example/f", sha256="ab" * 32,
                                       first_seen=now, stored_path=path)


def test_removing_an_upstream_drops_its_pages_and_cached_bytes(name, unique):
    row = upstreams.add_upstream(name, "https://x.example/simple/", include=["none"])
    cached = _cached_file(row, f"cached{unique}-1.0.tar.gz")
    upstreams.remove_upstream(name)
    assert not UpstreamFile.objects.filter(pk=cached.pk).exists()
    assert not get_store().exists(cached.stored_path)
    assert events_of(name)[-1].additional["cached_files"] == 1


def test_pointing_an_upstream_elsewhere_drops_what_the_old_index_said(name, unique):
    row = upstreams.add_upstream(name, "https://x.example/simple/", include=["none"])
    cached = _cached_file(row, f"cached{unique}-1.0.tar.gz")
    upstreams.set_upstream(name, upstreams.UpstreamChanges(url="https://y.example/simple/"))
    assert not UpstreamProject.objects.filter(upstream=row).exists()
    assert not get_store().exists(cached.stored_path)
    assert events_of(name)[-1].additional["cached_pages_dropped"] == 1
