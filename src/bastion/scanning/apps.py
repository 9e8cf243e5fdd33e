from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "bastion.scanning"
    label = "scanning"
    verbose_name = "Malware scanning"

    def ready(self) -> None:
        from bastion.packaging.signals import file_added
        from bastion.proxy.signals import upstream_file_fetched, upstream_file_stored

        from . import services

        file_added.connect(services.on_file_added,
                           dispatch_uid="bastion.scanning.services.on_file_added")
        upstream_file_fetched.connect(services.on_upstream_file_fetched,
                                      dispatch_uid="bastion.scanning.services.on_upstream_file_fetched")
        upstream_file_stored.connect(services.on_upstream_file_stored,
                                     dispatch_uid="bastion.scanning.services.on_upstream_file_stored")
