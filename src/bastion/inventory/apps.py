from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "bastion.inventory"
    label = "inventory"
    verbose_name = "File inventory"

    def ready(self) -> None:
        from bastion.packaging.signals import file_stored

        from . import tasks

        file_stored.connect(tasks.on_file_stored,
                            dispatch_uid="bastion.inventory.tasks.on_file_stored")
