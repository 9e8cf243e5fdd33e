from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "bastion.provenance"
    label = "provenance"
    verbose_name = "Provenance (PEP 740 attestations)"
