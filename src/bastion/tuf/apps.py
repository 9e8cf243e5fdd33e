from django.apps import AppConfig


class TufConfig(AppConfig):
    name = "bastion.tuf"
    label = "bastion_tuf"
