"""The scheduled refresh from BASTION_ADVISORIES_URL: due when no import started within
BASTION_ADVISORIES_REFRESH_HOURS, queued by the worker's periodic work, run as a task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from bastion import worker
from bastion.accounts import notifications
from bastion.advisories import services
from bastion.advisories.models import ImportRun
from bastion.core.errors import ValidationError
from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.events.services import describe_event

from .support import forget, osv_record, write_record


@pytest.fixture
def source(tmp_path, unique):
    osv_id = f"TEST-{unique}-refresh"
    write_record(tmp_path, osv_record(osv_id, f"refresh-{unique}"))
    yield str(tmp_path), osv_id
    forget([osv_id])


def test_a_refresh_is_due_only_with_a_url_and_no_recent_import(source):
    url, _ = source
    later = timezone.now() + timedelta(days=400)
    with override_settings(ADVISORIES_URL=""):
        assert not services.refresh_due(later)
    with override_settings(ADVISORIES_URL=url, ADVISORIES_REFRESH_HOURS=0):
        assert not services.refresh_due(later)
    with override_settings(ADVISORIES_URL=url, ADVISORIES_REFRESH_HOURS=24):
        assert services.refresh_due(later)
        ImportRun.objects.create(source="x", started=later - timedelta(hours=1))
        try:
            assert not services.refresh_due(later)
        finally:
            ImportRun.objects.filter(source="x").delete()


def test_the_worker_queues_the_due_refresh_which_imports_and_says_so(source):
    url, osv_id = source
    with override_settings(ADVISORIES_URL=url, ADVISORIES_REFRESH_HOURS=24):
        # Older imports of other tests may be recent: make this one due.
        ImportRun.objects.filter(started__gt=timezone.now() - timedelta(hours=24)).update(
            started=timezone.now() - timedelta(hours=25))
        worker._tidy_mail_queue(notifications, settings)
    event = SecurityEvent.objects.filter(tag=tags.ADMIN_ADVISORIES_IMPORT).last()
    assert event.additional["scheduled"] is True and event.additional["added"] == 1
    assert describe_event(event) == (f"The scheduled refresh imported vulnerability records "
                                     f"from {url}: 1 added, 0 updated, 0 unchanged, 0 withdrawn, "
                                     f"0 invalid")


def test_queueing_a_refresh_needs_the_url():
    with override_settings(ADVISORIES_URL=""):
        with pytest.raises(ValidationError, match="BASTION_ADVISORIES_URL is not set"):
            services.queue_refresh()
