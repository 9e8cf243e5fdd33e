from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "bastion.proxy"
    label = "proxy"
    verbose_name = "Upstream indexes and views"

    def ready(self) -> None:
        from bastion.packaging.signals import new_project_name_check

        from . import holds

        new_project_name_check.connect(holds.check_new_name,
                                       dispatch_uid="bastion.proxy.holds.check_new_name")
