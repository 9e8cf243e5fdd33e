"""What every page's navigation needs from packaging: the signed-in user's open invitations.

A callable, so the query runs only on pages that show the navigation to a signed-in user
(the template calls it once, in base.html); the index, files and APIs never render it.
"""

from functools import partial

from . import roles


def _count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return roles.pending_invitation_count(user)


def invitations(request):
    return {"pending_invitation_count": partial(_count, getattr(request, "user", None))}
