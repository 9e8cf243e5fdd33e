"""The simple views' one hand-written statement names the tables the models declare."""

import re

from bastion.advisories.models import AdvisoryState
from bastion.events.models import IndexState
from bastion.packaging.models import BlockedFileHash, Project
from bastion.proxy.models import View
from bastion.simple.views import _LOOKUP_SQL


def test_the_lookup_names_each_models_table():
    # The statement is a constant (nothing formatted into SQL, bandit's B608): a renamed
    # table must be renamed there too.
    for model in (View, IndexState, AdvisoryState, BlockedFileHash, Project):
        table = model._meta.db_table
        assert re.search(rf"\b(FROM|JOIN) {table}\b", _LOOKUP_SQL), model.__name__
