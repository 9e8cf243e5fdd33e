"""The background refresh of the advisories (run by ``bastion worker``, like the mail)."""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def refresh_advisories(actor_id: int | None = None, scheduled: bool = False) -> None:
    from django.contrib.auth import get_user_model

    from bastion.core.errors import ValidationError
    from bastion.events.services import RequestInfo

    from . import services

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        services.refresh(actor=actor, scheduled=scheduled,
                         info=RequestInfo(user_agent="bastion-worker"))
    except ValidationError as exc:
        # The run and its event say why; the task itself is done.
        logger.warning("advisories refresh failed: %s", exc.message)


@task()
def send_dependency_digests() -> None:
    from bastion.events.services import RequestInfo

    from . import digest

    result = digest.send_due(info=RequestInfo(user_agent="bastion-worker"))
    if result.mailed or result.failed:
        logger.info("dependency digests for %s: %d mailed, %d failed", result.week,
                    len(result.mailed), result.failed)
