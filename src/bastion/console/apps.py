from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "bastion.console"
    label = "console"
