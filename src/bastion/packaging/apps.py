from django.apps import AppConfig


class PackagingConfig(AppConfig):
    name = "bastion.packaging"
    label = "packaging"
    verbose_name = "Projects and files"

    def ready(self) -> None:
        from bastion.accounts import signals
        from bastion.accounts.signup import invitation_used

        from . import roles

        # A project Owner's sign-up link, once used, becomes the new account's role invitation.
        invitation_used.connect(roles.offer_to_new_account,
                                dispatch_uid="packaging.offer_to_new_account")
        # An account that alone owns a project cannot be deleted; a deleted one leaves them all.
        signals.deletion_blockers.connect(roles.sole_ownerships,
                                          dispatch_uid="packaging.sole_ownerships")
        signals.account_deleted.connect(roles.remove_deleted_account,
                                        dispatch_uid="packaging.remove_deleted_account")
