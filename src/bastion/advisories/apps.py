from django.apps import AppConfig


class AdvisoriesConfig(AppConfig):
    name = "bastion.advisories"
    label = "advisories"
    verbose_name = "Known vulnerabilities"
