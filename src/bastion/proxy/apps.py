from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "bastion.proxy"
    label = "proxy"
    verbose_name = "Upstream indexes and views"
