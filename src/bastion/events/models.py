from django.conf import settings
from django.db import models


class IndexState(models.Model):
    """A single row that orders every change: the serial and the head of the event chain.

    Services lock it (``select_for_update``) inside their transaction, so serials are gap-free
    and the event hash chain is linear even with several server processes.
    """

    last_serial = models.BigIntegerField(default=0)
    last_event_sequence = models.BigIntegerField(default=0)
    last_event_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "events_index_state"


class SecurityEvent(models.Model):
    """One append-only, hash-chained record of a change of state."""

    sequence = models.BigIntegerField(unique=True)
    tag = models.CharField(max_length=100, db_index=True)
    time = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    # The user the event is about (may differ from the actor, e.g. an admin acting on them).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="security_events",
    )
    user_name = models.CharField(max_length=150, blank=True)
    # Projects are referenced by id and name, not by foreign key: the record outlives them.
    project_id_ref = models.BigIntegerField(null=True, blank=True, db_index=True)
    project_name = models.CharField(max_length=200, blank=True, db_index=True)
    ip_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    additional = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "events_security_event"
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.tag} by {self.actor_name or '-'}"
