"""Security events as sentences: "alice uploaded demo-1.0.tar.gz with token 'laptop' from
10.0.0.5".

One describer for every place a person reads the log (the admin console, a user's own
security log, a project's history, ``bastion admin events``), so they all say the same. It
knows the tags as strings (``events.tags`` holds the constants; core imports no app), and
reads only what the event recorded: details of events recorded before a field existed are
simply left out of the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .text import one_line

# Free text the events carry (reasons, descriptions, names) is cut to this in a sentence.
QUOTED_LIMIT = 200
CLI_USER_AGENT = "bastion-cli"


@dataclass(frozen=True)
class EventFacts:
    """What a sentence is made of: an event's tag, names, address and details."""

    tag: str
    actor: str = ""
    user: str = ""
    project: str = ""
    ip_address: str = ""
    user_agent: str = ""
    additional: dict = field(default_factory=dict)

    def get(self, key: str, default=None):
        value = self.additional.get(key, default) if isinstance(self.additional, dict) else default
        return default if value is None else value

    def text(self, key: str) -> str:
        return one_line(str(self.get(key, "")), QUOTED_LIMIT)

    @property
    def who(self) -> str:
        """The one who acted, by name; an administrator at the command line; else someone."""
        if self.actor:
            return self.actor
        if self.user_agent == CLI_USER_AGENT:
            return "an administrator (command line)"
        return "someone"

    @property
    def about(self) -> str:
        return self.user or "an account"


def quoted(value: object) -> str:
    return "'" + one_line(str(value), QUOTED_LIMIT) + "'"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _count(value) -> int:
    if isinstance(value, (list, tuple)):
        return len(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def _because(e: EventFacts, key: str = "reason") -> str:
    reason = e.text(key)
    return f": {quoted(reason)}" if reason else ""


def _token_label(e: EventFacts, description_key: str = "description") -> str:
    description = e.text(description_key)
    if description:
        return f"the API token {quoted(description)}"
    token_id = e.text("token_id")
    return f"the API token {token_id[:8]}…" if token_id else "an API token"


def _with_token(e: EventFacts) -> str:
    if not e.get("token_id"):
        return ""
    description = e.text("token_description")
    return f" with token {quoted(description)}" if description else \
        f" with token {e.text('token_id')[:8]}…"


def _scope(e: EventFacts) -> str:
    projects = e.get("projects")
    parts = [f"{e.text('permission') or 'upload'}"]
    if isinstance(projects, list) and projects:
        parts.append("limited to " + ", ".join(one_line(str(p), 100) for p in projects[:20]))
    elif e.get("scope") == "projects":
        parts.append("limited to named projects")
    else:
        parts.append("user-wide")
    if e.get("version"):
        parts.append(f"version {e.text('version')} only")
    expires = e.text("expires")
    parts.append(f"expires {expires[:10]}" if expires else "never expires")
    return " (" + ", ".join(parts) + ")"


_METHODS = {
    "password": "with a password",
    "registration": "by registering",
    "passkey": "with a passkey",
    "password+totp": "with a password and an authenticator app",
    "password+webauthn": "with a password and a security key",
    "password+recovery": "with a password and a recovery code",
    "password+recovery_code": "with a password and a recovery code",
}


def _method(e: EventFacts) -> str:
    method = e.text("method")
    if not method:
        return ""
    return " " + _METHODS.get(method, f"({method})")


def _device(e: EventFacts) -> str:
    kind = {"totp": "an authenticator app", "webauthn": "a security key"}.get(
        e.text("method"), "a second factor")
    return f"{kind} named {quoted(e.text('name'))}" if e.get("name") else kind


def _sessions(e: EventFacts, key: str = "sessions_ended") -> str:
    ended = _count(e.get(key))
    return f" ({plural(ended, 'session')} signed out)" if ended else ""


def _target(e: EventFacts) -> str:
    return e.text("target_user") or e.text("invitee_email") or e.user or "someone"


def _project(e: EventFacts) -> str:
    return e.text("project") or e.project or "a project"


def _role(e: EventFacts) -> str:
    return e.text("role") or "a member"


# --- one function per tag ------------------------------------------------------------------

def _account_create(e):
    made = (f"{e.actor} created the account {e.about}" if e.actor and e.actor != e.user
            else f"{e.who} created the account {e.about}" if not e.actor
            else f"the account {e.about} was created")
    return made + (" as a site administrator" if e.get("admin") else "")


def _token_added(e):
    label = _token_label(e)
    if e.actor and e.user and e.actor != e.user:
        return f"{e.actor} created {label} for {e.user}{_scope(e)}"
    return f"{e.who} created {label}{_scope(e)}"


def _token_removed(e):
    label = _token_label(e)
    owner = e.user or "an account"
    if e.get("by_admin"):
        return f"{e.who} revoked {_possessive(owner)} {label.removeprefix('the ')}" + _because(e, "why")
    reason = e.text("reason")
    if reason in ("revoked", "") and e.actor == e.user:
        return f"{e.who} revoked {label}"
    if reason == "revoked by itself":
        return f"{label[0].upper()}{label[1:]} of {owner} was revoked by presenting it"
    return f"{_possessive(owner)} {label.removeprefix('the ')} was revoked ({reason or 'revoked'})"


def _token_leaked(e):
    where = e.text("url")
    return (f"{_possessive(e.about)} {_token_label(e).removeprefix('the ')} was revoked because "
            f"it was reported leaked" + (f" at {where}" if where else ""))


def _project_token_added(e):
    owner = f" for {e.about}" if e.user and e.user != e.actor else ""
    return (f"{e.who} created {_token_label(e)}{owner}, which can act on "
            f"{e.project or 'the project'}" + ("" if e.get("scope") == "projects"
                                               else " (user-wide)"))


def _project_token_removed(e):
    reason = e.text("reason")
    return (f"{_possessive(e.about)} {_token_label(e).removeprefix('the ')}, which could act on "
            f"{e.project or 'the project'}, was revoked" + (f" ({reason})" if reason else ""))


def _login_failure(e):
    reason = e.text("reason")
    whom = f"as {e.user}" if e.user else "to an unknown account"
    return f"A sign-in {whom} failed" + (f" ({reason})" if reason else "")


def _role_added(e):
    target = _target(e)
    if target == e.actor:
        return f"{target} became {_role(e)} of {_project(e)}"
    return f"{e.who} added {target} as {_role(e)} of {_project(e)}"


def _role_invite(e):
    return f"{e.who} invited {_target(e)} to become {_role(e)} of {_project(e)}"


def _role_revoke_invite(e):
    return f"{e.who} withdrew the invitation of {_target(e)} to become {_role(e)} of {_project(e)}"


def _role_accept(e):
    return f"{_target(e)} accepted the invitation and became {_role(e)} of {_project(e)}"


def _role_decline(e):
    return f"{_target(e)} declined the invitation to become {_role(e)} of {_project(e)}"


def _role_change(e):
    return (f"{e.who} changed the role of {_target(e)} on {_project(e)} from "
            f"{e.text('from') or '?'} to {e.text('to') or '?'}")


def _role_remove(e):
    revoked = _count(e.get("revoked_tokens"))
    tokens = f"; {plural(revoked, 'API token')} of theirs revoked" if revoked else ""
    if e.get("left"):
        how = " on deleting their account" if e.get("account_deleted") else ""
        return f"{_target(e)} left {_project(e)}{how}{tokens}"
    return f"{e.who} removed {_target(e)} ({_role(e)}) from {_project(e)}{tokens}"


def _status_change(e):
    old, new = e.text("from"), e.text("to")
    project = e.project or "the project"
    if new == "quarantined":
        return f"{e.who} quarantined {project}" + _because(e)
    if old == "quarantined" and new == "active":
        return f"{e.who} lifted the quarantine of {project}"
    return f"{e.who} changed the status of {project} from {old or '?'} to {new or '?'}" + _because(e)


def _upload_limit(e):
    limit = e.get("to")
    size = "the index's default" if limit in (None, "") else _size(_count(limit))
    return f"{e.who} set the largest file {e.project or 'the project'} accepts to {size}"


def _grant(what: str, give: bool):
    def sentence(e):
        source = e.text("source")
        how = f" ({source})" if give and source and source != "admin" else ""
        if give:
            return f"{e.who} let {e.about} {what}{how}"
        return f"{e.who} withdrew the right of {e.about} to {what}"
    return sentence


DESCRIBERS: dict[str, Callable[[EventFacts], str]] = {
    "account:create": _account_create,
    "account:api_token:added": _token_added,
    "account:api_token:removed": _token_removed,
    "account:api_token:removed_leak": _token_leaked,
    "account:login:success": lambda e: f"{e.about} signed in{_method(e)}",
    "account:login:failure": _login_failure,
    "account:logout": lambda e: f"{e.who} signed out",
    "account:reauthenticate": lambda e: f"{e.who} confirmed their identity again{_method(e)}",
    "account:sessions:revoked": lambda e: (
        f"{e.who} signed out {plural(_count(e.get('ended')), 'other session')}"),
    "account:password:change": lambda e: f"{e.who} changed their password{_sessions(e)}",
    "account:password:reset:request": lambda e: (
        f"A password reset link was requested for {e.about}"),
    "account:password:reset": lambda e: (
        f"{e.about} reset their password with a mailed link{_sessions(e)}"),
    "account:email:add": lambda e: f"{e.who} added the address {e.text('email')}",
    "account:email:remove": lambda e: f"{e.who} removed the address {e.text('email')}",
    "account:email:verified": lambda e: f"{e.who} verified the address {e.text('email')}",
    "account:email:primary:change": lambda e: (
        f"{e.who} made {e.text('new')} the primary address instead of {e.text('old')}"),
    "account:two_factor:method_added": lambda e: (
        f"{e.who} added {_device(e)} for {e.about}" if e.get("by_admin") or e.actor != e.user
        else f"{e.who} added {_device(e)}"),
    "account:two_factor:method_removed": lambda e: f"{e.who} removed {_device(e)}",
    "account:two_factor:passkey_change": lambda e: (
        f"{e.who} " + ("allowed" if e.get("passwordless") else "turned off")
        + f" passwordless sign-in with the key {quoted(e.text('name'))}"),
    "account:recovery_codes:generated": lambda e: f"Recovery codes were generated for {e.about}",
    "account:recovery_codes:regenerated": lambda e: f"{e.who} generated new recovery codes",
    "account:recovery_codes:used": lambda e: (
        f"{e.about} used a recovery code ({_count(e.get('remaining'))} left)"),
    "account:delete": lambda e: f"{e.who} deleted the account {e.about}"
                                if e.actor != e.user else f"{e.who} deleted their account",
    "account:language:change": lambda e: (
        f"{e.who} set their language to {quoted(e.text('language'))}" if e.get("language")
        else f"{e.who} chose their browser's language"),
    "account:disable": lambda e: (
        f"{e.who} disabled the account {e.about}{_because(e)}{_sessions(e)}"),
    "account:enable": lambda e: f"{e.who} enabled the account {e.about} again",
    "account:signup_invitation:create": lambda e: (
        f"{e.who} invited {e.text('email')} to open an account"
        + (" with read access" if e.get("grants_read") else "")),
    "account:signup_invitation:withdraw": lambda e: (
        f"{e.who} withdrew the sign-up invitation of {e.text('email')}"),
    "account:signup_invitation:use": lambda e: (
        f"{e.about} opened their account with the invitation sent to {e.text('email')}"
        + (f" by {e.text('invited_by')}" if e.get("invited_by") else "")),
    "account:signup:pending": lambda e: (
        f"{e.about} signed up with {e.text('email')} and awaits approval"),
    "account:signup:approve": lambda e: f"{e.who} approved the account {e.about}",
    "account:signup:reject": lambda e: f"{e.who} rejected the account {e.about}{_sessions(e)}",
    "account:recovery:request": lambda e: (
        f"{e.who} asked to recover the account {e.about} (recovery #{e.get('recovery_id', '?')}"
        + ("; a second administrator must approve" if e.get("approval_needed") else "")
        + f"), identity checked: {quoted(e.get('identity_note', ''))}"),
    "account:recovery:approve": lambda e: (
        f"{e.who} approved recovery #{e.get('recovery_id', '?')} of the account {e.about}"
        + (f", requested by {e.text('requested_by')}" if e.get("requested_by") else "")),
    "account:recovery:complete": lambda e: (
        f"{e.who} completed recovery #{e.get('recovery_id', '?')} of the account {e.about}: "
        "its second factors and password were removed and a single-use link to set a new "
        f"password was mailed to it{_sessions(e)}"),
    "account:recovery:link_used": lambda e: (
        f"{e.about} set a new password with the link of recovery #{e.get('recovery_id', '?')}"),
    "account:recovery:cancel": lambda e: (
        f"{e.who} cancelled recovery #{e.get('recovery_id', '?')} of the account {e.about}"
        + (f": {quoted(e.get('reason'))}" if e.get("reason") else "")),
    "account:read_grant:add": _grant("read every project", True),
    "account:read_grant:remove": _grant("read every project", False),
    "account:create_grant:add": _grant("create projects", True),
    "account:create_grant:remove": _grant("create projects", False),
    "project:create": lambda e: f"{e.who} created the project {e.text('name') or e.project}",
    "project:role:add": _role_added,
    "project:role:invite": _role_invite,
    "project:role:revoke_invite": _role_revoke_invite,
    "project:role:accept": _role_accept,
    "project:role:decline": _role_decline,
    "project:role:change": _role_change,
    "project:role:remove": _role_remove,
    "account:role:invite": _role_invite,
    "account:role:revoke_invite": _role_revoke_invite,
    "account:role:accept": _role_accept,
    "account:role:decline": _role_decline,
    "account:role:change": _role_change,
    "account:role:remove": _role_remove,
    "admin:reserved_name:release": lambda e: (
        f"{e.who} released the reserved name {e.text('name')}: anyone may register it again"),
    "project:release:add": lambda e: (
        f"{e.who} released version {e.text('version')} of {e.project}{_with_token(e)}"),
    "project:release:yank": lambda e: (
        f"{e.who} yanked version {e.text('version')} of {e.project}{_because(e)}"),
    "project:release:unyank": lambda e: (
        f"{e.who} un-yanked version {e.text('version')} of {e.project}"),
    "project:release:remove": lambda e: (
        f"{e.who} deleted release {e.text('version')} of {e.project} and its "
        f"{plural(_count(e.get('filenames')), 'file')}"),
    "project:status:change": _status_change,
    "project:upload_limit:change": _upload_limit,
    "project:api_token:added": _project_token_added,
    "project:api_token:removed": _project_token_removed,
    "project:remove": lambda e: (
        f"{e.who} deleted the project {e.text('name') or e.project} with its "
        f"{plural(_count(e.get('files')), 'file')}"),
    "file:add": lambda e: f"{e.who} uploaded {e.text('filename')}{_with_token(e)}",
    "file:remove": lambda e: (
        f"{e.who} deleted the file {e.text('filename')} (release {e.text('version')})"),
    "admin:prohibited_name:add": lambda e: (
        f"{e.who} prohibited the project name {e.text('name')}"
        + (f" ({quoted(e.text('comment'))})" if e.get("comment") else "")),
    "admin:prohibited_name:remove": lambda e: (
        f"{e.who} allowed the project name {e.text('name')} again"),
    "admin:reserved_name:add": lambda e: (
        f"{e.who} reserved the project name {e.text('name')}"
        + (f" for {e.text('for_user')}" if e.get("for_user") else " for nobody")
        + (f": {quoted(e.get('reason'))}" if e.get("reason") else "")),
    "admin:reserved_name:give": lambda e: (
        f"{e.who} let {e.text('for_user') or e.about} register the reserved name "
        f"{e.text('name')}"),
}


def _fallback(e: EventFacts) -> str:
    details = ", ".join(f"{one_line(str(k), 50)}={one_line(str(v), 100)}"
                        for k, v in sorted((e.additional or {}).items())[:10])
    return f"{e.who}: {e.tag}" + (f" ({details})" if details else "")


_GENERIC_STARTS = ("someone ", "someone:", "an ", "a ", "the ")


def describe(facts: EventFacts) -> str:
    """The event in one sentence, ending with where it came from when that was recorded."""
    describer = DESCRIBERS.get(facts.tag, _fallback)
    try:
        sentence = describer(facts)
    except Exception:  # a detail of an unexpected type must not hide the event
        sentence = _fallback(facts)
    if sentence.startswith(_GENERIC_STARTS):  # usernames keep their case; they hold no space
        sentence = sentence[:1].upper() + sentence[1:]
    if facts.ip_address:
        sentence += f" from {facts.ip_address}"
    return sentence
