from django.apps import AppConfig


class AdvisoriesConfig(AppConfig):
    name = "bastion.advisories"
    label = "advisories"
    verbose_name = "Known vulnerabilities"

    def ready(self) -> None:
        from bastion.packaging.signals import release_added

        from . import malicious

        release_added.connect(malicious.on_release_added,
                              dispatch_uid="bastion.advisories.malicious.on_release_added")
