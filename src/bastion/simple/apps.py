from django.apps import AppConfig


class SimpleConfig(AppConfig):
    name = "bastion.simple"
    label = "simple"
