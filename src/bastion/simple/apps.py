from django.apps import AppConfig


class SimpleConfig(AppConfig):
    name = "bastion.simple"
    label = "simple"

    def ready(self) -> None:
        from bastion.advisories import signals as advisories
        from bastion.packaging import signals as packaging
        from bastion.proxy import signals as proxy

        from . import receivers

        packaging.project_committed.connect(receivers.project_committed,
                                            dispatch_uid="simple-render-project")
        advisories.revision_changed.connect(receivers.everything_changed,
                                            dispatch_uid="simple-render-advisories")
        packaging.render_requested.connect(receivers.everything_changed,
                                           dispatch_uid="simple-render-requested")
        proxy.view_changed.connect(receivers.view_changed, dispatch_uid="simple-render-view")
