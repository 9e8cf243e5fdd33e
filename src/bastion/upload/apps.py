from django.apps import AppConfig


class UploadConfig(AppConfig):
    name = "bastion.upload"
    label = "upload"
