from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "bastion.tokens"
    label = "tokens"
