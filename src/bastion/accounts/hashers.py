"""argon2id with its cost parameters taken from settings.

Django's hasher compares a stored hash's parameters with these on every successful login
(``must_update``) and rehashes when they differ, so raising the costs needs no migration.
"""

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class ConfiguredArgon2PasswordHasher(Argon2PasswordHasher):
    @property
    def time_cost(self) -> int:
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:
        return settings.ARGON2_MEMORY_COST

    @property
    def parallelism(self) -> int:
        return settings.ARGON2_PARALLELISM
