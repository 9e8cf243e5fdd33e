from django.conf import settings
from django.db import models


class IndexState(models.Model):
    """A single row: the sealed head of the event chain and the index's last sealed serial.

    Only the sealer (``events.services.seal``) writes it, in a short transaction of its own
    after the changes it seals have committed: no change holds it while it runs. (On SQLite,
    where writes are serialised anyway, ``last_serial`` is also the serial counter.)
    """

    last_serial = models.BigIntegerField(default=0)
    last_event_sequence = models.BigIntegerField(default=0)
    last_event_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "events_index_state"


class SecurityEvent(models.Model):
    """One append-only, hash-chained record of a change of state.

    A change inserts its events unsealed (no ``sequence``, no hashes); the sealer gives them
    their place in the chain once the change has committed (see ``events.services``).
    """

    sequence = models.BigIntegerField(unique=True, null=True, blank=True)
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
    previous_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")
    # The serial the event's change took (None: it took none), so that the sealer can advance
    # the index's serial in commit order. Not hashed: it only orders pages, it proves nothing.
    serial = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "events_security_event"
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.tag} by {self.actor_name or '-'}"
