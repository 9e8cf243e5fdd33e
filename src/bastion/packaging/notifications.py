"""Security mail to project Owners (and the people an action is about).

Every message is queued in the transaction of the change (``accounts.notifications.send``): a
change that rolls back never sends mail, and a mail server that is down never undoes a change
that already happened. Each recipient gets their own message so that Owners' addresses are not
shown to one another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils import translation
from django.utils.functional import Promise, lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.dispatch import receiver
from django_tasks import TaskResultStatus, task
from django_tasks.signals import task_finished
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from bastion.accounts import languages
from bastion.accounts.notifications import send, site_url
from bastion.core import caveats

from .models import Project, Role, RoleName, UploadNotice

logger = logging.getLogger(__name__)

SIGNATURE = gettext_lazy(
    "If you did not expect this, revoke your API tokens, check the project's security "
    "log and contact the other Owners."
)
# An invitee is not (yet) a member: telling them to revoke tokens and read the project's log
# would point them at things they do not have, and teach them to act on unexpected mail.
INVITATION_SIGNATURE = gettext_lazy(
    "If you do not know the sender or did not expect this, decline the invitation or let "
    "it expire: nothing changes until you accept it."
)

# The longest an upload waits for its mail while more files keep arriving for its release.
MAX_BATCH_SECONDS = 600
# How long after that a batch nobody mailed counts as lost (its run failed or its worker
# died) and is queued again by the worker's upkeep.
OVERDUE_SECONDS = 600


def _signed(body, signature=SIGNATURE):
    """``body`` and the signature, still lazy: put into words in each recipient's language.

    A body not yet translated (a plain string) keeps an English signature.
    """
    if not isinstance(body, Promise):
        with translation.override("en"):
            return f"{body}\n\n{signature}\n\n-- Bastion"
    return format_lazy("{}\n\n{}\n\n-- Bastion", body, signature)


def _link(path: str) -> str:
    return site_url() + path


def owner_addresses(project_id: int) -> list[str]:
    return list(Role.objects.filter(project_id=project_id, role_name=RoleName.OWNER,
                                    user__is_active=True)
                .exclude(user__email="").values_list("user__email", flat=True))


def notify_owners(project: Project, subject: str, body: str, *,
                  also: Iterable[str] = ()) -> None:
    """Mail the project's current Owners (read when the message is built) and ``also``."""
    send([*owner_addresses(project.pk), *also], format_lazy("{}: {}", project.name, subject),
         _signed(body))


def on_file_added(file, *, new_release: bool, user, token=None) -> None:
    """Called by ``add_file`` inside its transaction for every file actually stored.

    The file joins its release's upload batch; the Owners get one mail per batch
    (:func:`mail_upload_batch`), not one per file: twine sends a release's files one request
    at a time, often many wheels and an sdist.
    """
    release = file.release
    project = release.project
    via = f"API token '{token.description or token.id}'" if token is not None else "the web"
    UploadNotice.objects.create(
        project_id=project.pk, canonical_version=release.canonical_version,
        project_name=project.name, normalized_name=project.normalized_name,
        version=release.version, new_release=new_release, filename=file.filename,
        size=file.size, sha256=file.sha256, uploader=getattr(user, "username", "") or "",
        via=via[:300], owners=owner_addresses(project.pk), created=timezone.now())
    quiet = settings.UPLOAD_MAIL_QUIET_SECONDS
    args = (project.pk, release.canonical_version, quiet)
    if isinstance(mail_upload_batch.get_backend(), DatabaseBackend):
        # Queued in the upload's transaction: a committed file always has a task to mail it.
        if quiet > 0:
            run_after = timezone.now() + timedelta(seconds=quiet)
            mail_upload_batch.using(run_after=run_after).enqueue(*args)
        else:
            mail_upload_batch.enqueue(*args)
    else:
        # No queue to wait in (``immediate``): each upload is mailed once it commits.
        transaction.on_commit(partial(mail_upload_batch.enqueue, project.pk,
                                      release.canonical_version, 0), robust=True)


@task()
def mail_upload_batch(project_id: int, canonical_version: str, quiet_seconds: float) -> int:
    """Mail the Owners once about the files of one release not yet mailed; how many it named.

    The batching rule: every upload queues this task to run ``quiet_seconds`` after it; a
    run finds the release's unmailed files and mails them all in one message once the newest
    is that old (a later upload's own run will do it otherwise), or at once when the oldest
    has waited MAX_BATCH_SECONDS, so that a steady trickle of uploads cannot hold the mail
    back for long.
    """
    now = timezone.now()
    with transaction.atomic():
        notices = list(UploadNotice.objects.select_for_update()
                       .filter(project_id=project_id, canonical_version=canonical_version)
                       .order_by("created", "pk"))
        if not notices:
            return 0  # an earlier run mailed them
        newest, oldest = notices[-1].created, notices[0].created
        if (now - newest < timedelta(seconds=quiet_seconds)
                and now - oldest < timedelta(seconds=MAX_BATCH_SECONDS)):
            return 0  # more files are arriving: the newest one's run mails them all
        _mail_batch(notices)
        UploadNotice.objects.filter(pk__in=[n.pk for n in notices]).delete()
    return len(notices)


def _mail_batch(notices: list[UploadNotice]) -> None:
    first = notices[0]
    count = len(notices)
    values = {"count": count, "project": first.project_name, "version": first.version}

    def subject() -> str:
        return ngettext("{count} file uploaded to {project} {version}",
                        "{count} files uploaded to {project} {version}", count).format(**values)

    def body() -> str:
        if any(n.new_release for n in notices):
            opening = ngettext(
                "{count} file was uploaded to the new release {version} of {project}:",
                "{count} files were uploaded to the new release {version} of {project}:", count)
        else:
            opening = ngettext(
                "{count} file was uploaded to the existing release {version} of {project}:",
                "{count} files were uploaded to the existing release {version} of {project}:",
                count)
        lines = [opening.format(**values), ""]
        for notice in notices:
            # The field names stay English, aligned: people grep mail and logs for them.
            lines += [f"  file:   {notice.filename}",
                      f"  by:     {notice.uploader or 'unknown'} using {notice.via}",
                      f"  at:     {notice.created.isoformat(timespec='seconds')}",
                      f"  size:   {notice.size} bytes",
                      f"  sha256: {notice.sha256}", ""]
        lines.append(gettext("Release page: {url}").format(
            url=_link(f"/project/{first.normalized_name}/{first.version}/")))
        return "\n".join(lines)

    recipients = {address for notice in notices for address in notice.owners}
    recipients.update(owner_addresses(first.project_id))
    send(sorted(recipients), lazy(subject, str)(), _signed(lazy(body, str)()))


@receiver(task_finished)
def _forget_finished_batch_run(sender, task_result, **kwargs) -> None:
    # One row per upload would pile up in the task table forever; a failed run stays for
    # inspection (its notices stay too, for the next run or the worker's upkeep).
    if (task_result.status != TaskResultStatus.SUCCESSFUL
            or task_result.task.func is not mail_upload_batch.func
            or getattr(task_result, "db_result", None) is None):
        return
    try:
        DBTaskResult.objects.filter(pk=task_result.db_result.pk).delete()
    except Exception:  # the worker records a raising receiver as a failed task: never raise
        logger.exception("could not remove the finished upload-mail run %s", task_result.id)


def mail_overdue_upload_batches() -> int:
    """Queue a run for every batch still unmailed long after MAX_BATCH_SECONDS; how many.

    The backstop for a batch whose run failed or whose worker died while running it: the
    notices stay until a mail names them. The worker calls this now and then.
    """
    overdue = timezone.now() - timedelta(seconds=MAX_BATCH_SECONDS + OVERDUE_SECONDS)
    batches = (UploadNotice.objects.filter(created__lt=overdue)
               .values_list("project_id", "canonical_version").distinct())
    found = 0
    for project_id, canonical_version in batches:
        mail_upload_batch.enqueue(project_id, canonical_version, 0)
        found += 1
    return found


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
    read_only = token.permission == "read"
    values = {"user": token.user.username, "token": f"'{token.description or token.id}'"}

    def expiry() -> str:
        return (gettext("Expires: {when}.").format(when=token.expires.isoformat())
                if token.expires else gettext("Expires: never."))

    for address, names in per_recipient.items():
        def body(names=names) -> str:
            if read_only:
                text = (gettext("{user} created a new read-only API token {token} valid for all "
                                "projects of its owner, including {projects}.") if scope is None
                        else gettext("{user} created a new read-only API token {token} valid "
                                     "for {projects}."))
            else:
                text = (gettext("{user} created a new upload API token {token} valid for all "
                                "projects of its owner, including {projects}.") if scope is None
                        else gettext("{user} created a new upload API token {token} valid for "
                                     "{projects}."))
            return text.format(projects=", ".join(sorted(names)), **values) + "\n" + expiry()

        send([address], gettext_lazy("new API token for your project"),
             _signed(lazy(body, str)()))
    if token.user.email not in per_recipient:
        # The account's owner always hears of a new token, even with no project yet.
        from bastion.accounts.notifications import notify

        def own() -> str:
            text = (gettext("A new read-only API token {token} was created for your account.")
                    if read_only else
                    gettext("A new upload API token {token} was created for your account."))
            return text.format(**values) + " " + expiry()

        notify(token.user, gettext_lazy("new API token"), lazy(own, str)())


def on_token_leaked(token, *, url: str) -> None:
    body = format_lazy(gettext_lazy(
        "Your API token {token} was found in public at\n  {url}\nand reported to Bastion, so "
        "it has been revoked. Create a new token and keep it out of code, logs and issue "
        "trackers."), token=f"'{token.description or token.id}'",
        url=url or gettext_lazy("(no URL given)"))
    if token.user is None:  # a trusted publisher's: no account to tell
        return
    send([token.user.email], gettext_lazy("an API token of yours leaked and was revoked"),
         _signed(body), language=languages.of_user(token.user))


def on_invitation(invitation) -> None:
    project = invitation.project
    inviter = getattr(invitation.inviter, "username", None)
    values = {"inviter": inviter, "role": invitation.role_name, "project": project.name,
              "url": _link("/manage/invitations/"),
              "before": invitation.expires.isoformat(timespec="minutes")}
    text = (gettext_lazy("{inviter} invited you to become {role} of {project}.\nSign in and "
                         "answer the invitation at {url} before {before}.") if inviter else
            gettext_lazy("An administrator invited you to become {role} of {project}.\nSign "
                         "in and answer the invitation at {url} before {before}."))
    send([invitation.invitee.email],
         format_lazy(gettext_lazy("invitation to {project}"), project=project.name),
         _signed(format_lazy(text, **values), INVITATION_SIGNATURE),
         language=languages.of_user(invitation.invitee))
