"""The gate: a view's policy applied to what the endpoints are about to show or send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bastion.core.policy import Candidate
from bastion.proxy import gate
from bastion.proxy import views_policy as vp
from bastion.proxy.models import PolicyBlock, View


@pytest.fixture
def view_name(unique):
    name = f"g-{unique}"
    yield name
    if View.objects.filter(name=name).exists():
        vp.remove_view(name)


def upstream(project: str, version: str, age: timedelta) -> Candidate:
    when = timezone.now() - age
    return Candidate(project=project, version=version, filename=f"{project}-{version}.tar.gz",
                     uploaded=when, first_seen=when, local=False)


def test_a_page_judged_under_a_cooldown_expires_when_the_held_file_comes_of_age(view_name, unique):
    vp.add_view(view_name, policy={"min_age_hours": 24})
    state = gate.view_state(view_name)
    young, old = upstream(f"p-{unique}", "2.0", timedelta(hours=1)), \
        upstream(f"p-{unique}", "1.0", timedelta(days=5))
    judgement = gate.judge(state, f"p-{unique}", [young, old])
    assert list(judgement.hidden) == [young.filename]
    coming_of_age = (young.uploaded + timedelta(hours=24)).timestamp()
    assert abs(judgement.valid_until - coming_of_age) < 1
    row = PolicyBlock.objects.get(view_name=view_name, filename=young.filename)
    assert not row.direct and "younger than the 1-day cooldown" in row.reason


def test_the_state_is_kept_by_revision_and_follows_a_change(view_name):
    view = vp.add_view(view_name, policy={})
    state = gate.view_state(view_name)
    assert gate.view_state(view_name, state.revision) is state  # no query, the same state
    assert not state.affects_local
    vp.set_view(view_name, policy={"deny": ["evil-*"]})
    changed = gate.view_state(view_name, View.objects.get(pk=view.pk).revision)
    assert changed is not state and changed.affects_local
    assert not gate.name_listed(changed, "evil-thing") and gate.name_listed(changed, "good")
    assert gate.view_state(view_name, None) is None  # the caller's query found no such view


def test_a_stored_policy_that_no_longer_parses_hides_everything(view_name, unique):
    view = vp.add_view(view_name, policy={})
    # Edited by hand in the database: no service would store it.
    View.objects.filter(pk=view.pk).update(policy={"min_age_hours": "soon"}, revision=99)
    state = gate.view_state(view_name, 99)
    assert state.affects_local
    candidate = upstream(f"p-{unique}", "1.0", timedelta(days=30))
    judgement = gate.judge(state, candidate.project, [candidate], record=False)
    assert judgement.hidden[candidate.filename].reason.startswith(
        f"Blocked by policy '{view_name}': ")
    assert not gate.name_listed(state, candidate.project)


def test_an_upstream_file_with_a_blocked_sha256_is_hidden_and_the_stamp_moves(view_name, unique):
    from dataclasses import replace

    from bastion.packaging.models import BlockedFileHash
    from bastion.simple.views import lookup

    vp.add_view(view_name, policy={})
    state = gate.view_state(view_name)
    digest = f"{unique}".ljust(64, "0")[:64]
    bad = replace(upstream(f"p-{unique}", "1.0", timedelta(days=5)), sha256=digest.upper())
    good = replace(upstream(f"p-{unique}", "2.0", timedelta(days=5)), sha256="f" * 64)
    local_twin = replace(bad, filename=f"l-{unique}.tar.gz", local=True)
    before = lookup(f"p-{unique}", view_name).blocklist_revision
    row = BlockedFileHash.objects.create(sha256=digest, filename="x.whl",
                                         project_name=f"gone-{unique}", created=timezone.now())
    try:
        judgement = gate.judge(state, f"p-{unique}", [bad, good, local_twin], record=False)
        assert list(judgement.hidden) == [bad.filename]
        assert judgement.hidden[bad.filename].kind == "blocked-hash"
        assert "removed from this index as malicious" in judgement.hidden[bad.filename].reason
        after = lookup(f"p-{unique}", view_name).blocklist_revision
        assert after == row.pk and after != before
        assert gate.stamp(state, 1, 0, before) != gate.stamp(state, 1, 0, after)
    finally:
        row.delete()


def _upstream_file(unique: str, **values):
    from bastion.proxy.models import Upstream, UpstreamFile, UpstreamProject

    now = timezone.now()
    upstream = Upstream.objects.create(name=f"u-{unique}", url="https://up.invalid/simple/",
                                       include=[f"*{unique}*"], created=now, updated=now)
    project = UpstreamProject.objects.create(upstream=upstream, normalized_name=f"p-{unique}",
                                             name=f"p-{unique}", fetched=now, checked=now)
    return UpstreamFile.objects.create(
        project=project, filename=f"p_{unique}-1.0.tar.gz", version="1.0",
        url="https://up.invalid/f.tar.gz", sha256="a" * 64, first_seen=now - timedelta(days=9),
        upload_time=now - timedelta(days=9),
        provenance_url="https://up.invalid/integrity/x/provenance", **values)


def test_a_view_without_pins_judges_a_download_with_no_pin_query_and_no_provenance_fetch(
        view_name, unique):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    vp.add_view(view_name, policy={"min_age_hours": 0})
    state = gate.view_state(view_name)
    assert not state.has_pins and not state.needs_provenance
    file = _upstream_file(unique)
    file.project.upstream  # noqa: B018 (loaded by find_file's select_related on the real path)
    with CaptureQueriesContext(connection) as queries:
        assert gate.check_upstream_file(state, file) is None
    assert not any("proxy_publisher_pin" in q["sql"] or "proxy_upstream_provenance" in q["sql"]
                   for q in queries.captured_queries)
    assert file.provenance_state == ""  # nothing fetched: the download itself checks it once
    file.project.upstream.delete()


def test_a_pinned_view_hides_a_download_attested_by_another_publisher(view_name, unique):
    from bastion.events import tags
    from bastion.events.models import SecurityEvent
    from bastion.proxy import provenance

    vp.add_view(view_name, policy={"min_age_hours": 0})
    file = _upstream_file(unique, provenance_state="verified",
                          provenance_identity="https://github.com/evil/p")
    provenance.add_pin(view_name, f"p-{unique}=https://github.com/acme/p")
    state = gate.view_state(view_name)
    assert state.has_pins
    block = gate.check_upstream_file(state, file)
    assert block.kind == "pinned-publisher" and "attested by https://github.com/evil/p" in \
        block.reason
    assert SecurityEvent.objects.filter(tag=tags.PROXY_PUBLISHER_MISMATCH,
                                        additional__view=view_name).count() == 1
    gate.check_upstream_file(state, file)  # told once per view and file
    assert SecurityEvent.objects.filter(tag=tags.PROXY_PUBLISHER_MISMATCH,
                                        additional__view=view_name).count() == 1
    file.project.upstream.delete()
