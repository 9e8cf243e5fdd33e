"""Security mail to project Owners (and the people an action is about).

Every message is queued in the transaction of the change (``accounts.notifications.send``): a
change that rolls back never sends mail, and a mail server that is down never undoes a change
that already happened. Each recipient gets their own message so that Owners' addresses are not
shown to one another.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.accounts.notifications import send, site_url
from bastion.core import caveats

from .models import Project, Role, RoleName

SIGNATURE = (
    "\n\nIf you did not expect this, revoke your API tokens, check the project's security "
    "log and contact the other Owners.\n\n-- Bastion"
)


def _link(path: str) -> str:
    return site_url() + path


def owner_addresses(project_id: int) -> list[str]:
    return list(Role.objects.filter(project_id=project_id, role_name=RoleName.OWNER,
                                    user__is_active=True)
                .exclude(user__email="").values_list("user__email", flat=True))


def notify_owners(project: Project, subject: str, body: str, *,
                  also: Iterable[str] = ()) -> None:
    """Mail the project's current Owners (read when the message is built) and ``also``."""
    send([*owner_addresses(project.pk), *also], f"{project.name}: {subject}", body + SIGNATURE)


def on_file_added(file, *, new_release: bool, user, token=None) -> None:
    """Called by ``add_file`` inside its transaction for every file actually stored."""
    release = file.release
    project = release.project
    via = f"API token '{token.description or token.id}'" if token is not None else "the web"
    if new_release:
        subject = f"new release {release.version}"
        opening = f"A new release {release.version} of {project.name} was published"
    else:
        subject = f"new file in release {release.version}"
        opening = f"A file was added to the existing release {release.version} of {project.name}"
    body = (
        f"{opening} by {getattr(user, 'username', 'unknown')} using {via}.\n\n"
        f"  file:   {file.filename}\n  size:   {file.size} bytes\n  sha256: {file.sha256}\n\n"
        f"Project page: {_link(f'/project/{project.normalized_name}/{release.version}/')}"
    )
    notify_owners(project, subject, body)


def on_token_created(token) -> None:
    """Mail the Owners of every project the new token can act on."""
    scope = caveats.project_scope(token.caveats)
    projects = Project.objects.filter(roles__user_id=token.user_id)
    if scope is not None:
        projects = Project.objects.filter(normalized_name__in=scope)
    per_recipient: dict[str, list[str]] = {}
    for project in projects.distinct():
        for address in owner_addresses(project.pk):
            per_recipient.setdefault(address, []).append(project.name)
    kind = "read-only" if token.permission == "read" else "upload"
    for address, names in per_recipient.items():
        scope_text = ("all projects of its owner, including " if scope is None else "") + \
            ", ".join(sorted(names))
        body = (
            f"{token.user.username} created a new {kind} API token "
            f"'{token.description or token.id}' valid for {scope_text}.\n"
            f"Expires: {token.expires.isoformat() if token.expires else 'never'}."
        )
        send([address], "new API token for your project", body + SIGNATURE)
    if token.user.email not in per_recipient:
        # The account's owner always hears of a new token, even with no project yet.
        from bastion.accounts.notifications import notify

        notify(token.user, "new API token",
               f"A new {kind} API token '{token.description or token.id}' was created for your "
               f"account. Expires: {token.expires.isoformat() if token.expires else 'never'}.")


def on_token_leaked(token, *, url: str) -> None:
    body = (
        f"Your API token '{token.description or token.id}' was found in public at\n"
        f"  {url or '(no URL given)'}\n"
        "and reported to Bastion, so it has been revoked. Create a new token and keep it out of "
        "code, logs and issue trackers."
    )
    send([token.user.email], "an API token of yours leaked and was revoked", body + SIGNATURE)


def on_invitation(invitation) -> None:
    project = invitation.project
    inviter = getattr(invitation.inviter, "username", "an administrator")
    body = (
        f"{inviter} invited you to become {invitation.role_name} of {project.name}.\n"
        f"Sign in and answer the invitation at {_link('/manage/invitations/')} "
        f"before {invitation.expires.isoformat(timespec='minutes')}."
    )
    send([invitation.invitee.email], f"invitation to {project.name}", body + SIGNATURE)
