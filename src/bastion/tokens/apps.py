from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "bastion.tokens"
    label = "tokens"

    def ready(self) -> None:
        from bastion.accounts.signals import account_deleted
        from bastion.packaging.signals import member_removed

        from . import services

        # A member's project-scoped tokens die with the role; an account's with the account.
        member_removed.connect(services.revoke_scoped_to_project,
                               dispatch_uid="tokens.revoke_scoped_to_project")
        account_deleted.connect(services.revoke_all_of_deleted_account,
                                dispatch_uid="tokens.revoke_all_of_deleted_account")
