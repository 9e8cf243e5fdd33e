from django.apps import AppConfig


class PackagingConfig(AppConfig):
    name = "bastion.packaging"
    label = "packaging"
    verbose_name = "Projects and files"

    def ready(self) -> None:
        from bastion.accounts.signup import invitation_used

        from .roles import offer_to_new_account

        # A project Owner's sign-up link, once used, becomes the new account's role invitation.
        invitation_used.connect(offer_to_new_account, dispatch_uid="packaging.offer_to_new_account")
