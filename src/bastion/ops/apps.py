from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running the index: health, readiness, metrics, request ids and logs, backups."""

    name = "bastion.ops"
    label = "ops"
