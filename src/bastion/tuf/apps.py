from django.apps import AppConfig


class TufConfig(AppConfig):
    name = "bastion.tuf"
    label = "bastion_tuf"

    def ready(self) -> None:
        from bastion.proxy.signals import (
            upstream_file_stored,
            upstream_metadata_stored,
            view_changed,
        )

        from . import receivers

        # Proxied files become targets once kept (docs/tuf.md); services, which load
        # python-tuf, are imported only when TUF is on and a file is kept.
        upstream_file_stored.connect(receivers.on_upstream_file_stored,
                                     dispatch_uid="bastion.tuf.receivers.on_upstream_file_stored")
        upstream_metadata_stored.connect(
            receivers.on_upstream_metadata_stored,
            dispatch_uid="bastion.tuf.receivers.on_upstream_metadata_stored")
        # A view's change takes the pages it signed as served out of the metadata.
        view_changed.connect(receivers.on_view_changed,
                             dispatch_uid="bastion.tuf.receivers.on_view_changed")
