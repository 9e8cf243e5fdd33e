"""Views and exemptions as the proxy's services keep them; the tests share one database, so
each adds only views named after itself and removes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from bastion.core.errors import ValidationError
from bastion.core.policy import Candidate, evaluate
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.packaging.services import PermissionDenied
from bastion.proxy import views_policy as vp
from bastion.proxy.models import Exemption, PolicyBlock, View
from tests.unit.packaging.support import new_user


@pytest.fixture
def view_name(unique):
    name = f"v-{unique}"
    yield name
    if View.objects.filter(name=name).exists():
        vp.remove_view(name)


def events(tag, view):
    return list(SecurityEvent.objects.filter(tag=tag, additional__view=view).order_by("sequence"))


def test_a_view_is_added_with_a_canonical_policy_and_an_event(view_name):
    view = vp.add_view(view_name, policy={"min_age_hours": 24, "allow": ["Acme_*"]},
                       description="  CI\nonly ")
    assert view.revision == 1 and view.description == "CI only"
    assert view.policy["allow"] == ["acme-*"] and view.policy["min_age_hours"] == 24
    assert vp.find_view(view_name) == view and view in vp.views()
    assert vp.views()[0].name == "default"
    (event,) = events(tags.ADMIN_VIEW_ADD, view_name)
    assert event.additional["policy"]["allow"] == ["acme-*"]
    assert vp.policy_of(view).cooldown_hours == 24


@pytest.mark.parametrize("name", ["default", "", "Has Space", "UPPER", "-x", "a" * 51, "x/y"])
def test_bad_view_names_are_refused(name):
    with pytest.raises(ValidationError):
        vp.add_view(name, policy={})


def test_a_bad_policy_is_refused_and_changes_nothing(view_name):
    with pytest.raises(ValidationError, match="Unknown policy key 'cooldown'"):
        vp.add_view(view_name, policy={"cooldown": 3})
    assert vp.find_view(view_name) is None
    vp.add_view(view_name, policy={})
    with pytest.raises(ValidationError, match="invalid version specifier"):
        vp.set_view(view_name, policy={"deny": ["x<<1"]})
    assert vp.find_view(view_name).revision == 1


def test_a_second_view_of_the_same_name_is_refused(view_name):
    vp.add_view(view_name, policy={})
    with pytest.raises(ValidationError, match="exists already"):
        vp.add_view(view_name, policy={})


def test_set_view_advances_the_revision_records_what_changed_and_reparses(view_name):
    view = vp.add_view(view_name, policy={"min_age_hours": 24})
    first = vp.policy_of(view)
    assert vp.policy_of(view) is first  # cached
    changed = vp.set_view(view_name, policy={"min_age_hours": 48, "deny": ["evil"]},
                          description="stricter")
    assert changed.revision == 2
    (event,) = events(tags.ADMIN_VIEW_CHANGE, view_name)
    assert event.additional["changes"]["min_age_hours"] == [24, 48]
    assert event.additional["changes"]["deny"] == [[], ["evil"]]
    assert "description" in event.additional["changes"]
    assert vp.policy_of(changed).cooldown_hours == 48
    # Nothing changed: no new revision, no event.
    assert vp.set_view(view_name, policy=changed.policy).revision == 2
    assert len(events(tags.ADMIN_VIEW_CHANGE, view_name)) == 1


def test_a_null_cooldown_follows_the_setting(view_name):
    view = vp.add_view(view_name, policy={})
    with override_settings(PROXY_COOLDOWN_HOURS=12):
        assert vp.policy_of(view).cooldown_hours == 12
    with override_settings(PROXY_COOLDOWN_HOURS=0):
        assert vp.policy_of(view).cooldown_hours == 0


def test_the_default_view_exists_and_cannot_be_removed():
    assert vp.find_view("default") is not None
    with pytest.raises(ValidationError, match="cannot be removed"):
        vp.remove_view("default")
    with pytest.raises(ValidationError, match="no view named"):
        vp.remove_view("no-such-view-here")


def test_removing_a_view_takes_its_exemptions_and_blocks(view_name):
    vp.add_view(view_name, policy={"min_age_hours": 72})
    vp.add_exemption(view_name, "demo", reason="CVE", expires=timezone.now() + timedelta(days=1))
    block = evaluate(view_name, vp.policy_of(vp.find_view(view_name)),
                     Candidate("demo", "1.0", "demo-1.0.tar.gz", uploaded=timezone.now()),
                     timezone.now())
    vp.record_block(view_name, Candidate("demo", "1.0", "demo-1.0.tar.gz"), block)
    assert vp.recent_blocks(view=view_name)[0].reason == block.reason
    vp.remove_view(view_name)
    assert not Exemption.objects.filter(view__name=view_name).exists()
    assert not PolicyBlock.objects.filter(view_name=view_name).exists()
    assert events(tags.ADMIN_VIEW_REMOVE, view_name)


def test_only_administrators_change_views(view_name):
    with pytest.raises(PermissionDenied):
        vp.add_view(view_name, policy={}, actor=new_user())
    admin = new_user(admin=True)
    vp.add_view(view_name, policy={}, actor=admin)
    assert events(tags.ADMIN_VIEW_ADD, view_name)[0].actor == admin


def test_exemptions_lift_the_cooldown_until_they_expire_or_are_withdrawn(view_name, unique):
    view = vp.add_view(view_name, policy={"min_age_hours": 72})
    now = timezone.now()
    young = Candidate(f"fix-{unique}", "2.0", f"fix_{unique}-2.0.tar.gz",
                      uploaded=now - timedelta(hours=1), first_seen=now)
    policy = vp.policy_of(view)
    assert evaluate(view.name, policy, young, now).kind == "cooldown"
    exemption = vp.add_exemption(view_name, f"Fix_{unique}", version="2.0", reason="CVE-2026-1",
                                 expires=now + timedelta(days=2))
    view.refresh_from_db()
    assert view.revision == 2
    active = vp.active_exemptions(view, f"fix.{unique}")
    assert [(e.project, e.version) for e in active] == [(f"fix-{unique}", "2.0")]
    assert evaluate(view.name, policy, young, now, active) is None
    assert vp.active_exemptions(view, f"fix-{unique}", now=now + timedelta(days=3)) == []
    (event,) = events(tags.ADMIN_VIEW_EXEMPTION_ADD, view_name)
    assert event.additional["reason"] == "CVE-2026-1" and event.additional["version"] == "2.0"
    vp.remove_exemption(exemption.pk)
    view.refresh_from_db()
    assert view.revision == 3 and vp.active_exemptions(view, f"fix-{unique}") == []
    assert events(tags.ADMIN_VIEW_EXEMPTION_REMOVE, view_name)
    with pytest.raises(ValidationError, match="no exemption"):
        vp.remove_exemption(exemption.pk)


@pytest.mark.parametrize("kwargs, words", [
    ({"reason": " "}, "Say why"),
    ({"expires": timedelta(hours=-1)}, "in the future"),
    ({"expires": timedelta(days=91)}, "at most 90 days"),
    ({"project": "bad name"}, "not a valid project name"),
    ({"version": "1.0; rm"}, "not a valid version"),
    ({"reason": "x" * 1001}, "too long"),
])
def test_bad_exemptions_are_refused(view_name, kwargs, words):
    vp.add_view(view_name, policy={})
    values = {"project": "demo", "version": "", "reason": "CVE", "expires": timedelta(days=1)}
    values.update(kwargs)
    values["expires"] = timezone.now() + values["expires"]
    project = values.pop("project")
    with pytest.raises(ValidationError, match=words):
        vp.add_exemption(view_name, project, **values)
    assert vp.find_view(view_name).revision == 1


def test_exemptions_of_an_unknown_view_are_refused():
    with pytest.raises(ValidationError, match="no view named"):
        vp.add_exemption("no-such-view-here", "demo", reason="r",
                         expires=timezone.now() + timedelta(days=1))


def test_blocks_are_counted_per_view_and_file_and_old_ones_pruned(view_name, unique):
    vp.add_view(view_name, policy={})
    now = timezone.now()
    one = Candidate(f"p-{unique}", "1.0", f"p_{unique}-1.0.tar.gz")
    vp.record_block(view_name, one, "Blocked by policy: one", now=now)
    vp.record_block(view_name, one, "Blocked by policy: two", direct=True,
                    now=now + timedelta(seconds=1))
    (row,) = vp.recent_blocks(view=view_name)
    assert (row.count, row.direct, row.reason) == (2, True, "Blocked by policy: two")
    assert vp.block_json(row)["filename"] == one.filename
    other = f"v2-{unique}"
    vp.add_view(other, policy={})
    try:
        # Seen last 40 days ago: the next record prunes it (only rows that old go).
        old = Candidate(f"q-{unique}", "1.0", f"q_{unique}-1.0.tar.gz")
        vp.record_block(other, old, "r", now=now - timedelta(days=40))
        assert len(vp.recent_blocks(view=view_name)) == 1
        assert {b.view_name for b in vp.recent_blocks(limit=1000)} >= {view_name, other}
        vp._pruned_at = None
        vp.record_block(other, one, "r", now=now)
        assert [b.filename for b in vp.recent_blocks(view=other)] == [one.filename]
        assert len(vp.recent_blocks(view=view_name)) == 1
    finally:
        vp.remove_view(other)


def test_refusals_are_translated():
    from django.utils import translation

    with translation.override("de"), pytest.raises(ValidationError) as caught:
        vp.remove_view("default")
    assert caught.value.message == ("Die Standardansicht kann nicht entfernt werden: /simple/ "
                                    "liefert sie aus.")


def test_a_view_added_again_under_its_name_gets_its_new_policy(view_name):
    first = vp.add_view(view_name, policy={"min_age_hours": 1})
    assert vp.policy_of(first).cooldown_hours == 1
    vp.remove_view(view_name)
    second = vp.add_view(view_name, policy={"min_age_hours": 2})
    assert second.revision == first.revision == 1
    assert vp.policy_of(second).cooldown_hours == 2
