"""Security events as sentences: "alice uploaded demo-1.0.tar.gz with token 'laptop' from
10.0.0.5".

One describer for every place a person reads the log (the admin console, a user's own
security log, a project's history, ``bastion admin events``), so they all say the same. It
knows the tags as strings (``events.tags`` holds the constants; core imports no app), and
reads only what the event recorded: details of events recorded before a field existed are
simply left out of the sentence.

Each sentence is one template with named placeholders, translated whole: languages order
words differently, so an optional detail gets its own variant of the template rather than a
fragment glued on. Phrases that stand in for a name ("someone", "an API token") are
templates of their own; the recorded values (names, filenames, reasons, addresses) are never
translated. Core imports no Django: the templates are marked with no-op functions named as
Django's makemessages expects, and :func:`describe` is given the translating functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Formatter
from typing import Callable

from .text import one_line

# Free text the events carry (reasons, descriptions, names) is cut to this in a sentence.
QUOTED_LIMIT = 200
CLI_USER_AGENT = "bastion-cli"


def gettext_noop(message: str) -> str:
    """Marks a template for extraction (makemessages passes xgettext this keyword)."""
    return message


def ngettext_lazy(singular: str, plural: str) -> tuple[str, str]:
    """Marks a singular/plural pair for extraction: makemessages knows Django's
    ``ngettext_lazy:1,2`` as a keyword. Nothing is lazy here; the count comes with use."""
    return singular, plural


def _english_plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


@dataclass(frozen=True)
class Translator:
    """The two gettext functions a sentence is translated with; English by default."""

    gettext: Callable[[str], str] = gettext_noop
    ngettext: Callable[[str, str, int], str] = _english_plural


ENGLISH = Translator()


class Phrase(str):
    """Text a template made, as opposed to a recorded value; ``opens_with_words``: its first
    character is the template's own (so it may be capitalised), not a value's."""

    opens_with_words: bool = False


def _fill(template: str, values: dict) -> Phrase:
    out, opening = [], None
    for literal, name, spec, conversion in Formatter().parse(template):
        if literal:
            out.append(literal)
            opening = True if opening is None else opening
        if name is not None:
            value = values[name]
            text = format(value, spec) if spec else str(value)
            if text and opening is None:
                opening = isinstance(value, Phrase) and value.opens_with_words
            out.append(text)
    phrase = Phrase("".join(out))
    phrase.opens_with_words = bool(opening)
    return phrase


class Say:
    """Fills templates in one language: ``say(template, **values)``, ``say.n(pair, count)``."""

    def __init__(self, translator: Translator = ENGLISH):
        self.translator = translator

    def __call__(self, template: str, **values) -> Phrase:
        return self._either(self.translator.gettext(template), template, values)

    def n(self, pair: tuple[str, str], count: int, **values) -> Phrase:
        singular, plural = pair
        values["count"] = count
        return self._either(self.translator.ngettext(singular, plural, count),
                            _english_plural(singular, plural, count), values)

    @staticmethod
    def _either(translated: str, english: str, values: dict) -> Phrase:
        try:
            return _fill(translated, values)
        except (KeyError, IndexError, ValueError):  # a broken translation still says it
            return _fill(english, values)


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


def quoted(value: object) -> str:
    return "'" + one_line(str(value), QUOTED_LIMIT) + "'"


def _count(value) -> int:
    if isinstance(value, (list, tuple)):
        return len(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- phrases that stand in for a name ------------------------------------------------------

def _who(e: EventFacts, say: Say) -> str:
    """The one who acted, by name; an administrator at the command line; else someone."""
    if e.actor:
        return e.actor
    if e.user_agent == CLI_USER_AGENT:
        return say(gettext_noop("an administrator (command line)"))
    return say(gettext_noop("someone"))


def _about(e: EventFacts, say: Say) -> str:
    return e.user or say(gettext_noop("an account"))


def _project_or_the(e: EventFacts, say: Say) -> str:
    return e.project or say(gettext_noop("the project"))


def _target(e: EventFacts, say: Say) -> str:
    return (e.text("target_user") or e.text("invitee_email") or e.user
            or say(gettext_noop("someone")))


def _project(e: EventFacts, say: Say) -> str:
    # Translators: stands in for a project's name after "of", "on" and "from" in the role
    # sentences, when the event recorded none.
    return e.text("project") or e.project or say(gettext_noop("a project"))


def _role(e: EventFacts, say: Say) -> str:
    return e.text("role") or say(gettext_noop("a member"))


def _token_label(e: EventFacts, say: Say, description_key: str = "description") -> str:
    description = e.text(description_key)
    if description:
        return say(gettext_noop("the API token {description}"), description=quoted(description))
    token_id = e.text("token_id")
    if token_id:
        return say(gettext_noop("the API token {token_id}…"), token_id=token_id[:8])
    return say(gettext_noop("an API token"))


def _their_token(e: EventFacts, say: Say) -> str:
    """The token named after its owner's name: "bob's API token 'ci'"."""
    owner = _about(e, say)
    description = e.text("description")
    if description:
        return say(gettext_noop("{owner}'s API token {description}"), owner=owner,
                   description=quoted(description))
    token_id = e.text("token_id")
    if token_id:
        return say(gettext_noop("{owner}'s API token {token_id}…"), owner=owner,
                   token_id=token_id[:8])
    return say(gettext_noop("an API token of {owner}"), owner=owner)


def _size(size: int, say: Say) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return say.n(ngettext_lazy("{count} byte", "{count} bytes"), size)


_PERMISSIONS = {"upload": gettext_noop("upload"), "read": gettext_noop("read")}


def _scope(e: EventFacts, say: Say) -> str:
    """A token's reach, as a list of its properties: each item is whole in any language."""
    permission = e.text("permission") or "upload"
    parts = [say(_PERMISSIONS[permission]) if permission in _PERMISSIONS else permission]
    projects = e.get("projects")
    if isinstance(projects, list) and projects:
        parts.append(say(gettext_noop("limited to {projects}"),
                         projects=", ".join(one_line(str(p), 100) for p in projects[:20])))
    elif e.get("scope") == "projects":
        parts.append(say(gettext_noop("limited to named projects")))
    else:
        parts.append(say(gettext_noop("user-wide")))
    if e.get("version"):
        parts.append(say(gettext_noop("version {version} only"), version=e.text("version")))
    expires = e.text("expires")
    parts.append(say(gettext_noop("expires {day}"), day=expires[:10]) if expires
                 else say(gettext_noop("never expires")))
    return "(" + ", ".join(parts) + ")"


_METHODS = {
    "password": gettext_noop("with a password"),
    "registration": gettext_noop("by registering"),
    "passkey": gettext_noop("with a passkey"),
    "password+totp": gettext_noop("with a password and an authenticator app"),
    "password+webauthn": gettext_noop("with a password and a security key"),
    "password+recovery": gettext_noop("with a password and a recovery code"),
    "password+recovery_code": gettext_noop("with a password and a recovery code"),
}


def _how(e: EventFacts, say: Say) -> str:
    method = e.text("method")
    return say(_METHODS[method]) if method in _METHODS else f"({method})"


def _device(e: EventFacts, say: Say) -> str:
    method = e.text("method")
    if e.get("name"):
        name = quoted(e.text("name"))
        if method == "totp":
            return say(gettext_noop("an authenticator app named {name}"), name=name)
        if method == "webauthn":
            return say(gettext_noop("a security key named {name}"), name=name)
        return say(gettext_noop("a second factor named {name}"), name=name)
    if method == "totp":
        return say(gettext_noop("an authenticator app"))
    if method == "webauthn":
        return say(gettext_noop("a security key"))
    return say(gettext_noop("a second factor"))


def _sessions(e: EventFacts, say: Say, sentence: str, key: str = "sessions_ended") -> str:
    """The sentence, followed by how many sessions it ended, if any."""
    ended = _count(e.get(key))
    if not ended:
        return sentence
    return say.n(ngettext_lazy("{sentence} ({count} session signed out)",
                               "{sentence} ({count} sessions signed out)"), ended,
                 sentence=sentence)


def _with_token(e: EventFacts, say: Say, plain: str, described: str, numbered: str,
                **values) -> str:
    """An upload's sentence in its variant: without a token, with a described one, or with
    one known by its id."""
    if not e.get("token_id"):
        return say(plain, **values)
    description = e.text("token_description")
    if description:
        return say(described, token=quoted(description), **values)
    return say(numbered, token=e.text("token_id")[:8], **values)


# --- one function per tag ------------------------------------------------------------------

def _account_create(e, say):
    admin = bool(e.get("admin"))
    if e.actor and e.actor == e.user:
        return (say(gettext_noop("the account {user} was created as a site administrator"),
                    user=_about(e, say)) if admin
                else say(gettext_noop("the account {user} was created"), user=_about(e, say)))
    if admin:
        return say(gettext_noop("{who} created the account {user} as a site administrator"),
                   who=_who(e, say), user=_about(e, say))
    return say(gettext_noop("{who} created the account {user}"), who=_who(e, say),
               user=_about(e, say))


def _token_added(e, say):
    token, scope = _token_label(e, say), _scope(e, say)
    if e.actor and e.user and e.actor != e.user:
        return say(gettext_noop("{who} created {token} for {user} {scope}"), who=e.actor,
                   token=token, user=e.user, scope=scope)
    return say(gettext_noop("{who} created {token} {scope}"), who=_who(e, say), token=token,
               scope=scope)


def _token_removed(e, say):
    who = _who(e, say)
    if e.get("by_admin"):
        why = e.text("why")
        if why:
            return say(gettext_noop("{who} revoked {token}: {reason}"), who=who,
                       token=_their_token(e, say), reason=quoted(why))
        return say(gettext_noop("{who} revoked {token}"), who=who, token=_their_token(e, say))
    reason = e.text("reason")
    if reason in ("revoked", "") and e.actor == e.user:
        return say(gettext_noop("{who} revoked {token}"), who=who, token=_token_label(e, say))
    if reason == "revoked by itself":
        return say(gettext_noop("{token} of {owner} was revoked by presenting it"),
                   token=_token_label(e, say), owner=_about(e, say))
    if reason:
        return say(gettext_noop("{token} was revoked ({reason})"), token=_their_token(e, say),
                   reason=reason)
    return say(gettext_noop("{token} was revoked"), token=_their_token(e, say))


def _token_leaked(e, say):
    where = e.text("url")
    if where:
        return say(gettext_noop("{token} was revoked because it was reported leaked at {url}"),
                   token=_their_token(e, say), url=where)
    return say(gettext_noop("{token} was revoked because it was reported leaked"),
               token=_their_token(e, say))


def _project_token_added(e, say):
    values = {"who": _who(e, say), "token": _token_label(e, say),
              "project": _project_or_the(e, say)}
    limited = e.get("scope") == "projects"
    if e.user and e.user != e.actor:
        if limited:
            return say(gettext_noop("{who} created {token} for {user}, which can act on "
                                    "{project}"), user=e.user, **values)
        return say(gettext_noop("{who} created {token} for {user}, which can act on "
                                "{project} (user-wide)"), user=e.user, **values)
    if limited:
        return say(gettext_noop("{who} created {token}, which can act on {project}"), **values)
    return say(gettext_noop("{who} created {token}, which can act on {project} (user-wide)"),
               **values)


def _project_token_removed(e, say):
    values = {"token": _their_token(e, say), "project": _project_or_the(e, say)}
    reason = e.text("reason")
    if reason:
        return say(gettext_noop("{token}, which could act on {project}, was revoked "
                                "({reason})"), reason=reason, **values)
    return say(gettext_noop("{token}, which could act on {project}, was revoked"), **values)


def _login_failure(e, say):
    reason = e.text("reason")
    if e.user:
        if reason:
            return say(gettext_noop("A sign-in as {user} failed ({reason})"), user=e.user,
                       reason=reason)
        return say(gettext_noop("A sign-in as {user} failed"), user=e.user)
    if reason:
        return say(gettext_noop("A sign-in to an unknown account failed ({reason})"),
                   reason=reason)
    return say(gettext_noop("A sign-in to an unknown account failed"))


def _login_success(e, say):
    if e.text("method"):
        return say(gettext_noop("{user} signed in {how}"), user=_about(e, say),
                   how=_how(e, say))
    return say(gettext_noop("{user} signed in"), user=_about(e, say))


def _reauthenticate(e, say):
    if e.text("method"):
        return say(gettext_noop("{who} confirmed their identity again {how}"),
                   who=_who(e, say), how=_how(e, say))
    return say(gettext_noop("{who} confirmed their identity again"), who=_who(e, say))


def _roles(e, say):
    return {"target": _target(e, say), "role": _role(e, say), "project": _project(e, say)}


def _role_added(e, say):
    values = _roles(e, say)
    if values["target"] == e.actor:
        return say(gettext_noop("{target} became {role} of {project}"), **values)
    return say(gettext_noop("{who} added {target} as {role} of {project}"),
               who=_who(e, say), **values)


def _role_invite(e, say):
    return say(gettext_noop("{who} invited {target} to become {role} of {project}"),
               who=_who(e, say), **_roles(e, say))


def _role_revoke_invite(e, say):
    return say(gettext_noop("{who} withdrew the invitation of {target} to become {role} of "
                            "{project}"), who=_who(e, say), **_roles(e, say))


def _role_accept(e, say):
    return say(gettext_noop("{target} accepted the invitation and became {role} of {project}"),
               **_roles(e, say))


def _role_decline(e, say):
    return say(gettext_noop("{target} declined the invitation to become {role} of {project}"),
               **_roles(e, say))


def _role_change(e, say):
    return say(gettext_noop("{who} changed the role of {target} on {project} from {old} to "
                            "{new}"), who=_who(e, say), target=_target(e, say),
               project=_project(e, say), old=e.text("from") or "?", new=e.text("to") or "?")


def _role_remove(e, say):
    revoked = _count(e.get("revoked_tokens"))
    values = _roles(e, say)
    if e.get("left"):
        del values["role"]
        if e.get("account_deleted"):
            if revoked:
                return say.n(ngettext_lazy(
                    "{target} left {project} on deleting their account; {count} API token of "
                    "theirs revoked",
                    "{target} left {project} on deleting their account; {count} API tokens of "
                    "theirs revoked"), revoked, **values)
            return say(gettext_noop("{target} left {project} on deleting their account"),
                       **values)
        if revoked:
            return say.n(ngettext_lazy(
                "{target} left {project}; {count} API token of theirs revoked",
                "{target} left {project}; {count} API tokens of theirs revoked"), revoked,
                **values)
        return say(gettext_noop("{target} left {project}"), **values)
    if revoked:
        return say.n(ngettext_lazy(
            "{who} removed {target} ({role}) from {project}; {count} API token of theirs "
            "revoked",
            "{who} removed {target} ({role}) from {project}; {count} API tokens of theirs "
            "revoked"), revoked, who=_who(e, say), **values)
    return say(gettext_noop("{who} removed {target} ({role}) from {project}"),
               who=_who(e, say), **values)


def _status_change(e, say):
    old, new = e.text("from"), e.text("to")
    values = {"who": _who(e, say), "project": _project_or_the(e, say)}
    reason = e.text("reason")
    if new == "quarantined":
        if reason:
            return say(gettext_noop("{who} quarantined {project}: {reason}"),
                       reason=quoted(reason), **values)
        return say(gettext_noop("{who} quarantined {project}"), **values)
    if old == "quarantined" and new == "active":
        return say(gettext_noop("{who} lifted the quarantine of {project}"), **values)
    values.update(old=old or "?", new=new or "?")
    if reason:
        return say(gettext_noop("{who} changed the status of {project} from {old} to {new}: "
                                "{reason}"), reason=quoted(reason), **values)
    return say(gettext_noop("{who} changed the status of {project} from {old} to {new}"),
               **values)


def _upload_limit(e, say):
    limit = e.get("to")
    size = (say(gettext_noop("the index's default")) if limit in (None, "")
            else _size(_count(limit), say))
    return say(gettext_noop("{who} set the largest file {project} accepts to {size}"),
               who=_who(e, say), project=_project_or_the(e, say), size=size)


# Per grant: (given, given with how, withdrawn); whole sentences, since the right granted
# sits differently in each language's sentence.
_READ_GRANT = (gettext_noop("{who} let {user} read every project"),
               gettext_noop("{who} let {user} read every project ({source})"),
               gettext_noop("{who} withdrew the right of {user} to read every project"))
_CREATE_GRANT = (gettext_noop("{who} let {user} create projects"),
                 gettext_noop("{who} let {user} create projects ({source})"),
                 gettext_noop("{who} withdrew the right of {user} to create projects"))


_OBSERVER_GRANT = (gettext_noop("{who} made {user} a trusted observer"),
                   gettext_noop("{who} made {user} a trusted observer ({source})"),
                   gettext_noop("{who} withdrew the trusted observer role of {user}"))


def _grant(templates: tuple[str, str, str], give: bool):
    given, given_how, withdrawn = templates

    def sentence(e, say):
        values = {"who": _who(e, say), "user": _about(e, say)}
        if not give:
            return say(withdrawn, **values)
        source = e.text("source")
        if source and source != "admin":
            return say(given_how, source=source, **values)
        return say(given, **values)
    return sentence


def _who_about(template: str):
    """A sentence of one who acted and the account it was about."""
    return lambda e, say: say(template, who=_who(e, say), user=_about(e, say))


def _who_only(template: str):
    return lambda e, say: say(template, who=_who(e, say))


def _who_and(template: str, **keys: str):
    """A sentence of one who acted and details named ``placeholder=detail key``."""
    return lambda e, say: say(template, who=_who(e, say),
                              **{name: e.text(key) for name, key in keys.items()})


def _two_factor_added(e, say):
    if e.get("by_admin") or e.actor != e.user:
        return say(gettext_noop("{who} added {device} for {user}"), who=_who(e, say),
                   device=_device(e, say), user=_about(e, say))
    return say(gettext_noop("{who} added {device}"), who=_who(e, say), device=_device(e, say))


def _passkey_change(e, say):
    name = quoted(e.text("name"))
    if e.get("passwordless"):
        return say(gettext_noop("{who} allowed passwordless sign-in with the key {name}"),
                   who=_who(e, say), name=name)
    return say(gettext_noop("{who} turned off passwordless sign-in with the key {name}"),
               who=_who(e, say), name=name)


def _account_delete(e, say):
    if e.actor != e.user:
        return say(gettext_noop("{who} deleted the account {user}"), who=_who(e, say),
                   user=_about(e, say))
    return say(gettext_noop("{who} deleted their account"), who=_who(e, say))


def _language_change(e, say):
    if e.get("language"):
        return say(gettext_noop("{who} set their language to {language}"), who=_who(e, say),
                   language=quoted(e.text("language")))
    return say(gettext_noop("{who} chose their browser's language"), who=_who(e, say))


def _dependency_digest_change(e, say):
    if e.get("enabled"):
        return say(gettext_noop("{who} turned on the weekly digest of vulnerable dependencies"),
                   who=_who(e, say))
    return say(gettext_noop("{who} turned off the weekly digest of vulnerable dependencies"),
               who=_who(e, say))


def _dependency_digest_sent(e, say):
    return say.n(ngettext_lazy(
        "The weekly digest for {week} was mailed to {user}: {count} vulnerable dependency",
        "The weekly digest for {week} was mailed to {user}: {count} vulnerable dependencies"),
        _count(e.get("count")), week=e.text("week"), user=_about(e, say))


def _disable(e, say):
    values = {"who": _who(e, say), "user": _about(e, say)}
    reason = e.text("reason")
    sentence = (say(gettext_noop("{who} disabled the account {user}: {reason}"),
                    reason=quoted(reason), **values) if reason
                else say(gettext_noop("{who} disabled the account {user}"), **values))
    return _sessions(e, say, sentence)


def _signup_invitation_create(e, say):
    if e.get("grants_read"):
        return say(gettext_noop("{who} invited {email} to open an account with read access"),
                   who=_who(e, say), email=e.text("email"))
    return say(gettext_noop("{who} invited {email} to open an account"), who=_who(e, say),
               email=e.text("email"))


def _signup_invitation_use(e, say):
    values = {"user": _about(e, say), "email": e.text("email")}
    if e.get("invited_by"):
        return say(gettext_noop("{user} opened their account with the invitation sent to "
                                "{email} by {invited_by}"), invited_by=e.text("invited_by"),
                   **values)
    return say(gettext_noop("{user} opened their account with the invitation sent to {email}"),
               **values)


def _recovery_values(e, say) -> dict:
    return {"who": _who(e, say), "user": _about(e, say), "id": e.get("recovery_id", "?")}


def _recovery_request(e, say):
    values = dict(_recovery_values(e, say), note=quoted(e.get("identity_note", "")))
    if e.get("approval_needed"):
        return say(gettext_noop("{who} asked to recover the account {user} (recovery #{id}; a "
                                "second administrator must approve), identity checked: "
                                "{note}"), **values)
    return say(gettext_noop("{who} asked to recover the account {user} (recovery #{id}), "
                            "identity checked: {note}"), **values)


def _recovery_approve(e, say):
    values = _recovery_values(e, say)
    if e.get("requested_by"):
        return say(gettext_noop("{who} approved recovery #{id} of the account {user}, "
                                "requested by {requested_by}"),
                   requested_by=e.text("requested_by"), **values)
    return say(gettext_noop("{who} approved recovery #{id} of the account {user}"), **values)


def _recovery_complete(e, say):
    return _sessions(e, say, say(gettext_noop(
        "{who} completed recovery #{id} of the account {user}: its second factors and "
        "password were removed and a single-use link to set a new password was mailed to it"),
        **_recovery_values(e, say)))


def _recovery_cancel(e, say):
    values = _recovery_values(e, say)
    if e.get("reason"):
        return say(gettext_noop("{who} cancelled recovery #{id} of the account {user}: "
                                "{reason}"), reason=quoted(e.get("reason")), **values)
    return say(gettext_noop("{who} cancelled recovery #{id} of the account {user}"), **values)


def _release_add(e, say):
    return _with_token(
        e, say, gettext_noop("{who} released version {version} of {project}"),
        gettext_noop("{who} released version {version} of {project} with token {token}"),
        gettext_noop("{who} released version {version} of {project} with token {token}…"),
        who=_who(e, say), version=e.text("version"), project=e.project)


def _file_add(e, say):
    if e.get("publisher"):
        return say(gettext_noop("The trusted publisher {publisher} uploaded {filename} ({run})"),
                   publisher=quoted(e.text("publisher")), filename=e.text("filename"),
                   run=_run(e.get("run")))
    return _with_token(
        e, say, gettext_noop("{who} uploaded {filename}"),
        gettext_noop("{who} uploaded {filename} with token {token}"),
        gettext_noop("{who} uploaded {filename} with token {token}…"),
        who=_who(e, say), filename=e.text("filename"))


def _attestation_add(e, say):
    publisher = e.get("publisher")
    named = ""
    if isinstance(publisher, dict):
        named = str(publisher.get("repository") or publisher.get("email")
                    or publisher.get("identity") or "")
    elif publisher:
        named = str(publisher)
    if named:
        return say(gettext_noop("{filename} came with a verified attestation by {publisher}"),
                   filename=e.text("filename"), publisher=quoted(named))
    return say(gettext_noop("{filename} came with a verified attestation"),
               filename=e.text("filename"))


def _yank(e, say):
    values = {"who": _who(e, say), "version": e.text("version"), "project": e.project}
    if e.text("reason"):
        return say(gettext_noop("{who} yanked version {version} of {project}: {reason}"),
                   reason=quoted(e.text("reason")), **values)
    return say(gettext_noop("{who} yanked version {version} of {project}"), **values)


def _release_remove(e, say):
    return say.n(ngettext_lazy(
        "{who} deleted release {version} of {project} and its {count} file",
        "{who} deleted release {version} of {project} and its {count} files"),
        _count(e.get("filenames")), who=_who(e, say), version=e.text("version"),
        project=e.project)


def _project_remove(e, say):
    return say.n(ngettext_lazy("{who} deleted the project {name} with its {count} file",
                               "{who} deleted the project {name} with its {count} files"),
                 _count(e.get("files")), who=_who(e, say), name=e.text("name") or e.project)


def _prohibit(e, say):
    values = {"who": _who(e, say), "name": e.text("name")}
    if e.get("comment"):
        return say(gettext_noop("{who} prohibited the project name {name} ({comment})"),
                   comment=quoted(e.text("comment")), **values)
    return say(gettext_noop("{who} prohibited the project name {name}"), **values)


def _reserve(e, say):
    values = {"who": _who(e, say), "name": e.text("name")}
    reason = quoted(e.get("reason")) if e.get("reason") else ""
    if e.get("for_user"):
        values["user"] = e.text("for_user")
        if reason:
            return say(gettext_noop("{who} reserved the project name {name} for {user}: "
                                    "{reason}"), reason=reason, **values)
        return say(gettext_noop("{who} reserved the project name {name} for {user}"), **values)
    if reason:
        return say(gettext_noop("{who} reserved the project name {name} for nobody: {reason}"),
                   reason=reason, **values)
    return say(gettext_noop("{who} reserved the project name {name} for nobody"), **values)


_REPORT_KINDS = {"is_malware": gettext_noop("malware"), "is_spam": gettext_noop("spam"),
                 "is_dependency_confusion": gettext_noop("dependency confusion"),
                 "something_else": gettext_noop("something else")}


def _report_add(e, say):
    kind = e.text("kind")
    values = {"who": _who(e, say), "project": _project_or_the(e, say),
              "kind": say(_REPORT_KINDS[kind]) if kind in _REPORT_KINDS else kind}
    if e.get("version"):
        return say(gettext_noop("{who} reported version {version} of {project}: {kind}"),
                   version=e.text("version"), **values)
    return say(gettext_noop("{who} reported {project}: {kind}"), **values)


def _auto_quarantine(e, say):
    project = _project_or_the(e, say)
    if e.text("rule") == "observer-new-project":
        return say(gettext_noop("{project} was quarantined at once: a trusted observer reported "
                                "it within {hours} hours of its creation"),
                   project=project, hours=e.text("hours"))
    return say.n(ngettext_lazy(
        "{project} was quarantined at once: {count} independent reporter, a trusted observer "
        "among them, reported it",
        "{project} was quarantined at once: {count} independent reporters, a trusted observer "
        "among them, reported it"), _count(e.get("reporters")), project=project)


def _report_clear(e, say):
    values = {"who": _who(e, say), "project": _project_or_the(e, say)}
    if e.get("lifted"):
        return say.n(ngettext_lazy(
            "{who} cleared {count} report on {project} and lifted its quarantine",
            "{who} cleared {count} reports on {project} and lifted its quarantine"),
            _count(e.get("reports")), **values)
    return say.n(ngettext_lazy("{who} cleared {count} report on {project}",
                               "{who} cleared {count} reports on {project}"),
                 _count(e.get("reports")), **values)


def _report_quarantine(e, say):
    return say.n(ngettext_lazy("{who} quarantined {project} on {count} report",
                               "{who} quarantined {project} on {count} reports"),
                 _count(e.get("reports")), who=_who(e, say), project=_project_or_the(e, say))


def _report_remove(e, say):
    return say.n(ngettext_lazy(
        "{who} removed {name} as malicious; the hash of its {count} file is blocked",
        "{who} removed {name} as malicious; the hashes of its {count} files are blocked"),
        _count(e.get("blocked")), who=_who(e, say), name=e.text("name") or e.project)


def _hash_mismatch(e, say):
    return say(gettext_noop("The upstream {upstream} sent other bytes than it listed for "
                            "{filename} ({url}): expected {expected}, got {got}; refused, "
                            "not kept"),
               upstream=quoted(e.text("upstream")), filename=e.text("filename"),
               url=e.text("url"), expected=e.text("expected"), got=e.text("got"))


def _cache_prune(e, say):
    return say.n(ngettext_lazy(
        "{who} pruned {count} cached upstream file ({size}) not downloaded for {age}",
        "{who} pruned {count} cached upstream files ({size}) not downloaded for {age}"),
        _count(e.get("files")), who=_who(e, say), size=_size(_count(e.get("bytes")), say),
        age=e.text("not_downloaded_for"))


def _page_cache_prune(e, say):
    return say.n(ngettext_lazy(
        "{who} pruned {count} shared upstream page file ({size})",
        "{who} pruned {count} shared upstream page files ({size})"),
        _count(e.get("files")), who=_who(e, say), size=_size(_count(e.get("bytes")), say))


def _index_export(e, say):
    return say.n(ngettext_lazy(
        "{who} exported the index: {rows} rows and {count} stored file ({size})",
        "{who} exported the index: {rows} rows and {count} stored files ({size})"),
        _count(e.get("files")), who=_who(e, say), rows=_count(e.get("rows")),
        size=_size(_count(e.get("bytes")), say))


def _index_import(e, say):
    return say.n(ngettext_lazy(
        "{who} imported an export of the index: {rows} rows and {count} stored file ({size})",
        "{who} imported an export of the index: {rows} rows and {count} stored files ({size})"),
        _count(e.get("files")), who=_who(e, say), rows=_count(e.get("rows")),
        size=_size(_count(e.get("bytes")), say))


def _view_change(e, say):
    changes = e.get("changes")
    keys = ", ".join(sorted(str(k) for k in changes)) if isinstance(changes, dict) else ""
    if keys:
        return say(gettext_noop("{who} changed the view {view} ({keys})"), who=_who(e, say),
                   view=e.text("view"), keys=one_line(keys, QUOTED_LIMIT))
    return say(gettext_noop("{who} changed the view {view}"), who=_who(e, say),
               view=e.text("view"))


def _upstream_provenance(e, say):
    values = {"upstream": quoted(e.text("upstream")), "filename": e.text("filename")}
    if e.get("verified"):
        return say(gettext_noop("The provenance of {filename} from the upstream {upstream} "
                                "verified: built by {identity}"),
                   identity=e.text("identity"), **values)
    return say(gettext_noop("The provenance of {filename} from the upstream {upstream} did "
                            "not verify: {reason}"), reason=quoted(e.text("reason")), **values)


def _pin_add(e, say):
    values = {"who": _who(e, say), "view": e.text("view"), "name": e.text("name"),
              "identity": e.text("identity")}
    if e.get("before"):
        return say(gettext_noop("{who} pinned {identity} as the publisher of {name} in the "
                                "view {view}, instead of {before}"),
                   before=e.text("before"), **values)
    return say(gettext_noop("{who} pinned {identity} as the publisher of {name} in the view "
                            "{view}"), **values)


def _exemption_add(e, say):
    values = {"who": _who(e, say), "view": e.text("view"), "name": e.text("name"),
              "expires": e.text("expires"), "reason": quoted(e.text("reason"))}
    if e.get("version"):
        return say(gettext_noop("{who} let version {version} of {name} through the cooldown of "
                                "the view {view} until {expires}: {reason}"),
                   version=e.text("version"), **values)
    return say(gettext_noop("{who} let {name} through the cooldown of the view {view} until "
                            "{expires}: {reason}"), **values)


def _exemption_remove(e, say):
    values = {"who": _who(e, say), "view": e.text("view"), "name": e.text("name")}
    if e.get("version"):
        return say(gettext_noop("{who} withdrew the exemption of version {version} of {name} "
                                "from the cooldown of the view {view}"),
                   version=e.text("version"), **values)
    return say(gettext_noop("{who} withdrew the exemption of {name} from the cooldown of the "
                            "view {view}"), **values)


def _name_hold_values(e, say) -> dict:
    return {"who": _who(e, say), "name": e.text("name"), "upstream": e.text("upstream"),
            "id": e.get("hold_id", "?")}


def _name_hold_request(e, say):
    values = _name_hold_values(e, say)
    if e.get("unchecked"):
        return say(gettext_noop("{who} tried to create the project {name}, which could not be "
                                "checked against the upstream {upstream}: held for an "
                                "administrator (request #{id})"), **values)
    return say(gettext_noop("{who} tried to create the project {name}, which the upstream "
                            "{upstream} serves: held for an administrator (request #{id})"),
               **values)


def _name_hold_decision(approved: bool):
    if approved:
        plain = gettext_noop("{who} approved creating the project {name} here although the "
                             "upstream {upstream} serves it (request #{id})")
        noted = gettext_noop("{who} approved creating the project {name} here although the "
                             "upstream {upstream} serves it (request #{id}): {note}")
    else:
        plain = gettext_noop("{who} rejected creating the project {name} here, as the upstream "
                             "{upstream} serves it (request #{id})")
        noted = gettext_noop("{who} rejected creating the project {name} here, as the upstream "
                             "{upstream} serves it (request #{id}): {note}")

    def describe_decision(e, say):
        values = _name_hold_values(e, say)
        if e.get("note"):
            return say(noted, note=quoted(e.get("note")), **values)
        return say(plain, **values)

    return describe_decision


# Look-alike names and namespaces (issue 14).
def _lookalike_refuse(e, say):
    return say(gettext_noop("{who} tried to create the project {name}, refused as a look-alike "
                            "of {resembles}: {reason}"), who=_who(e, say), name=e.text("name"),
               resembles=e.text("resembles"), reason=quoted(e.get("reason", "")))


def _lookalike_hold(e, say):
    return say(gettext_noop("{who} created the project {name}, quarantined for review as a "
                            "look-alike of {resembles}: {reason}"), who=_who(e, say),
               name=e.text("name"), resembles=e.text("resembles"),
               reason=quoted(e.get("reason", "")))


def _allowed_name_add(e, say):
    values = {"who": _who(e, say), "name": e.text("name")}
    if e.get("resembles"):
        return say(gettext_noop("{who} allowed the project name {name} although it looks like "
                                "{resembles}"), resembles=e.text("resembles"), **values)
    return say(gettext_noop("{who} allowed the project name {name} past the look-alike check"),
               **values)


def _corpus_load(e, say):
    return say.n(ngettext_lazy(
        "{who} loaded the look-alike corpus from {source}: {count} name",
        "{who} loaded the look-alike corpus from {source}: {count} names"),
        _count(e.get("count")), who=_who(e, say), source=quoted(e.text("source")))


def _inventory_record(e, say):
    return say.n(ngettext_lazy(
        "The file {filename} was inventoried: {count} bundled library, {hits} known "
        "vulnerabilities",
        "The file {filename} was inventoried: {count} bundled libraries, {hits} known "
        "vulnerabilities"),
        _count(e.get("libraries")), filename=e.text("filename"), hits=_count(e.get("hits")))


def _code_check_record(e, say):
    return say.n(ngettext_lazy(
        "The code of {project} {version} was checked with bandit: {count} finding",
        "The code of {project} {version} was checked with bandit: {count} findings"),
        _count(e.get("findings")), project=_project_or_the(e, say),
        version=e.text("version"))


def _bundled_libs_load(e, say):
    return say.n(ngettext_lazy(
        "{who} loaded the known-vulnerable bundled-library data of {updated}: {count} entry",
        "{who} loaded the known-vulnerable bundled-library data of {updated}: {count} "
        "entries"),
        _count(e.get("entries")), who=_who(e, say), updated=e.text("updated"))


def _inventory_queue(e, say):
    if e.get("project"):
        return say.n(ngettext_lazy(
            "{who} queued the inventory of {count} file of {project} that had none",
            "{who} queued the inventory of {count} files of {project} that had none"),
            _count(e.get("files")), who=_who(e, say), project=e.text("project"))
    return say.n(ngettext_lazy("{who} queued the inventory of {count} file that had none",
                               "{who} queued the inventory of {count} files that had none"),
                 _count(e.get("files")), who=_who(e, say))


def _namespace_grant(e, say):
    return say(gettext_noop("{who} granted the namespace {prefix} to {user}"), who=_who(e, say),
               prefix=e.text("prefix"), user=e.text("for_user") or _about(e, say))


def _namespace_revoke(e, say):
    if e.get("for_user"):
        return say(gettext_noop("{who} took the namespace {prefix} from {user}"),
                   who=_who(e, say), prefix=e.text("prefix"), user=e.text("for_user"))
    return say(gettext_noop("{who} removed the namespace {prefix}"), who=_who(e, say),
               prefix=e.text("prefix"))


# Upstream indexes (issue 12). The password itself is never recorded: only that it changed.
_UPSTREAM_FIELDS = {
    "url": gettext_noop("URL"),
    "priority": gettext_noop("priority"),
    "include": gettext_noop("name patterns"),
    "file_hosts": gettext_noop("file hosts"),
    "username": gettext_noop("user name"),
    "password": gettext_noop("password"),
    "page_ttl": gettext_noop("page TTL"),
    "enabled": gettext_noop("enabled"),
}


def _upstream_add(e, say):
    return say(gettext_noop("{who} added the upstream index {name} at {url}"), who=_who(e, say),
               name=quoted(e.text("name")), url=e.text("url"))


def _upstream_change(e, say):
    changed = e.get("changed")
    fields = [say(_UPSTREAM_FIELDS[key]) if key in _UPSTREAM_FIELDS else one_line(str(key), 30)
              for key in (changed if isinstance(changed, list) else [])[:10]]
    if not fields:
        return say(gettext_noop("{who} saved the upstream index {name} unchanged"),
                   who=_who(e, say), name=quoted(e.text("name")))
    return say(gettext_noop("{who} changed the upstream index {name} ({fields})"),
               who=_who(e, say), name=quoted(e.text("name")), fields=", ".join(fields))


def _advisories_import(e, say):
    who = say(gettext_noop("the scheduled refresh")) if e.get("scheduled") else _who(e, say)
    values = {"who": who, "source": e.text("source"), "added": _count(e.get("added")),
              "updated": _count(e.get("updated")), "unchanged": _count(e.get("unchanged")),
              "withdrawn": _count(e.get("withdrawn")), "invalid": _count(e.get("invalid"))}
    if e.get("failure"):
        return say(gettext_noop("{who} imported vulnerability records from {source}, which "
                                "failed: {failure} ({added} added, {updated} updated, "
                                "{unchanged} unchanged, {withdrawn} withdrawn, {invalid} "
                                "invalid)"), failure=quoted(e.text("failure")), **values)
    return say(gettext_noop("{who} imported vulnerability records from {source}: {added} "
                            "added, {updated} updated, {unchanged} unchanged, {withdrawn} "
                            "withdrawn, {invalid} invalid"), **values)


# Trusted publishing (issue 13).
def _run(run) -> str:
    """A CI run as recorded with a trusted publisher's token: repository@ref, run id/attempt."""
    if not isinstance(run, dict):
        return "?"
    text = str(run.get("repository", "?"))
    if run.get("ref"):
        text += f"@{run['ref']}"
    if run.get("run_id"):
        text += f" run {run['run_id']}"
        if run.get("run_attempt"):
            text += f"/{run['run_attempt']}"
    return one_line(text, QUOTED_LIMIT)


def _publisher_add(e, say):
    values = {"who": _who(e, say), "publisher": quoted(e.text("publisher"))}
    if e.get("from_pending"):
        return say(gettext_noop("The pending publisher {publisher} of {who} created the "
                                "project on its first run"), **values)
    return say(gettext_noop("{who} added the trusted publisher {publisher}"), **values)


def _pending_publisher_remove(e, say):
    values = {"who": _who(e, say), "publisher": quoted(e.text("publisher")),
              "name": e.text("name")}
    if e.text("reason") == "expired":
        return say(gettext_noop("The pending publisher {publisher} for the new project {name} "
                                "expired"), **values)
    return say(gettext_noop("{who} withdrew the pending publisher {publisher} for the new "
                            "project {name}"), **values)


def _file_hold(e, say):
    if e.actor or e.user_agent == CLI_USER_AGENT:
        return say(gettext_noop("{who} held {filename} from clients ({reason})"),
                   who=_who(e, say), filename=e.text("filename"), reason=e.text("reason"))
    return say(gettext_noop("{filename} was held from clients ({reason})"),
               filename=e.text("filename"), reason=e.text("reason"))


def _file_release(e, say):
    if e.actor or e.user_agent == CLI_USER_AGENT:
        return say(gettext_noop("{who} released {filename} to clients (it was held: {reason})"),
                   who=_who(e, say), filename=e.text("filename"), reason=e.text("was"))
    return say(gettext_noop("{filename} was released to clients (it was held: {reason})"),
               filename=e.text("filename"), reason=e.text("was"))


def _release_quarantine(e, say):
    if e.actor or e.user_agent == CLI_USER_AGENT:
        return say(gettext_noop("{who} quarantined release {version}: {reason}"),
                   who=_who(e, say), version=e.text("version"), reason=quoted(e.text("reason")))
    return say(gettext_noop("Release {version} was quarantined: {reason}"),
               version=e.text("version"), reason=quoted(e.text("reason")))


def _scan(e, say):
    return say(gettext_noop("The scanner judged {filename} {verdict} (score {score}, "
                            "{findings} findings, rules {ruleset})"),
               filename=e.text("filename"), verdict=e.text("verdict"), score=e.text("score"),
               findings=e.text("findings"), ruleset=e.text("ruleset"))


def _proxy_scan(e, say):
    return say(gettext_noop("The scanner judged the upstream file {filename} {verdict} "
                            "(score {score}, rules {ruleset})"),
               filename=e.text("filename"), verdict=e.text("verdict"), score=e.text("score"),
               ruleset=e.text("ruleset"))


def _rescan(e, say):
    return say.n(ngettext_lazy("{who} rescanned {count} file with the rules {ruleset}",
                               "{who} rescanned {count} files with the rules {ruleset}"),
                 _count(e.get("files")), who=_who(e, say), ruleset=e.text("ruleset"))


DESCRIBERS: dict[str, Callable[[EventFacts, Say], str]] = {
    "account:create": _account_create,
    "account:api_token:added": _token_added,
    "account:api_token:removed": _token_removed,
    "account:api_token:removed_leak": _token_leaked,
    "account:login:success": _login_success,
    "account:login:failure": _login_failure,
    "account:logout": _who_only(gettext_noop("{who} signed out")),
    "account:reauthenticate": _reauthenticate,
    "account:sessions:revoked": lambda e, say: say.n(
        ngettext_lazy("{who} signed out {count} other session",
                      "{who} signed out {count} other sessions"),
        _count(e.get("ended")), who=_who(e, say)),
    "account:password:change": lambda e, say: _sessions(
        e, say, say(gettext_noop("{who} changed their password"), who=_who(e, say))),
    "account:password:reset:request": lambda e, say: say(
        gettext_noop("A password reset link was requested for {user}"), user=_about(e, say)),
    "account:password:reset": lambda e, say: _sessions(e, say, say(
        gettext_noop("{user} reset their password with a mailed link"), user=_about(e, say))),
    "account:email:add": _who_and(gettext_noop("{who} added the address {email}"),
                                  email="email"),
    "account:email:remove": _who_and(gettext_noop("{who} removed the address {email}"),
                                     email="email"),
    "account:email:verified": _who_and(gettext_noop("{who} verified the address {email}"),
                                       email="email"),
    "account:email:primary:change": _who_and(
        gettext_noop("{who} made {new} the primary address instead of {old}"),
        new="new", old="old"),
    "account:two_factor:method_added": _two_factor_added,
    "account:two_factor:method_removed": lambda e, say: say(
        gettext_noop("{who} removed {device}"), who=_who(e, say), device=_device(e, say)),
    "account:two_factor:passkey_change": _passkey_change,
    "account:recovery_codes:generated": lambda e, say: say(
        gettext_noop("Recovery codes were generated for {user}"), user=_about(e, say)),
    "account:recovery_codes:regenerated": _who_only(
        gettext_noop("{who} generated new recovery codes")),
    "account:recovery_codes:used": lambda e, say: say(
        gettext_noop("{user} used a recovery code ({count} left)"), user=_about(e, say),
        count=_count(e.get("remaining"))),
    "account:delete": _account_delete,
    "account:language:change": _language_change,
    "account:dependency_digest:change": _dependency_digest_change,
    "account:dependency_digest:sent": _dependency_digest_sent,
    "account:disable": _disable,
    "account:enable": _who_about(gettext_noop("{who} enabled the account {user} again")),
    "account:signup_invitation:create": _signup_invitation_create,
    "account:signup_invitation:withdraw": _who_and(
        gettext_noop("{who} withdrew the sign-up invitation of {email}"), email="email"),
    "account:signup_invitation:use": _signup_invitation_use,
    "account:signup:pending": lambda e, say: say(
        gettext_noop("{user} signed up with {email} and awaits approval"),
        user=_about(e, say), email=e.text("email")),
    "account:signup:approve": _who_about(gettext_noop("{who} approved the account {user}")),
    "account:signup:reject": lambda e, say: _sessions(e, say, say(
        gettext_noop("{who} rejected the account {user}"), who=_who(e, say),
        user=_about(e, say))),
    "account:recovery:request": _recovery_request,
    "account:recovery:approve": _recovery_approve,
    "account:recovery:complete": _recovery_complete,
    "account:recovery:link_used": lambda e, say: say(
        gettext_noop("{user} set a new password with the link of recovery #{id}"),
        user=_about(e, say), id=e.get("recovery_id", "?")),
    "account:recovery:cancel": _recovery_cancel,
    "account:read_grant:add": _grant(_READ_GRANT, True),
    "account:read_grant:remove": _grant(_READ_GRANT, False),
    "account:create_grant:add": _grant(_CREATE_GRANT, True),
    "account:create_grant:remove": _grant(_CREATE_GRANT, False),
    "account:observer_grant:add": _grant(_OBSERVER_GRANT, True),
    "account:observer_grant:remove": _grant(_OBSERVER_GRANT, False),
    "project:create": lambda e, say: say(gettext_noop("{who} created the project {name}"),
                                         who=_who(e, say), name=e.text("name") or e.project),
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
    "admin:reserved_name:release": _who_and(
        gettext_noop("{who} released the reserved name {name}: anyone may register it again"),
        name="name"),
    "project:release:add": _release_add,
    "project:release:yank": _yank,
    "project:release:unyank": lambda e, say: say(
        gettext_noop("{who} un-yanked version {version} of {project}"), who=_who(e, say),
        version=e.text("version"), project=e.project),
    "project:release:remove": _release_remove,
    "project:status:change": _status_change,
    "project:upload_limit:change": _upload_limit,
    "project:api_token:added": _project_token_added,
    "project:api_token:removed": _project_token_removed,
    "project:remove": _project_remove,
    "file:add": _file_add,
    "file:remove": _who_and(gettext_noop("{who} deleted the file {filename} (release {version})"),
                            filename="filename", version="version"),
    "admin:prohibited_name:add": _prohibit,
    "admin:prohibited_name:remove": _who_and(
        gettext_noop("{who} allowed the project name {name} again"), name="name"),
    "admin:reserved_name:add": _reserve,
    "admin:reserved_name:give": lambda e, say: say(
        gettext_noop("{who} let {user} register the reserved name {name}"), who=_who(e, say),
        user=e.text("for_user") or _about(e, say), name=e.text("name")),
    "proxy:file:hash_mismatch": _hash_mismatch,
    "project:report:add": _report_add,
    "project:report:auto_quarantine": _auto_quarantine,
    "admin:report:clear": _report_clear,
    "admin:report:quarantine": _report_quarantine,
    "admin:report:remove": _report_remove,
    "admin:cache:prune": _cache_prune,
    "admin:page_cache:prune": _page_cache_prune,
    "admin:index:export": _index_export,
    "admin:index:import": _index_import,
    "admin:tuf:init": _who_and(
        gettext_noop("{who} created the index's TUF metadata (root version {version})"),
        version="root_version"),
    "admin:tuf:root_sign": _who_and(
        gettext_noop("{who} signed version {version} of the index's TUF root ({change})"),
        version="root_version", change="change"),
    "admin:tuf:root_prepare": _who_and(
        gettext_noop("{who} prepared version {version} of the index's TUF root for signing "
                     "offline ({change})"),
        version="root_version", change="change"),
    "admin:pages:render": _who_and(
        gettext_noop("{who} asked for every public page to be rendered to files again")),
    "admin:view:add": _who_and(gettext_noop("{who} added the view {view}"), view="view"),
    "admin:view:change": _view_change,
    "admin:view:remove": _who_and(gettext_noop("{who} removed the view {view}"), view="view"),
    "admin:view:exemption:add": _exemption_add,
    "proxy:file:provenance": _upstream_provenance,
    "admin:view:pin:add": _pin_add,
    "admin:view:pin:remove": lambda e, say: say(
        gettext_noop("{who} withdrew the pin of {identity} as the publisher of {name} in the "
                     "view {view}"), who=_who(e, say), identity=e.text("identity"),
        name=e.text("name"), view=e.text("view")),
    "proxy:publisher_pin:tofu": lambda e, say: say(
        gettext_noop("The view {view} pinned {identity} as the publisher of {name}, the first "
                     "one seen"), view=e.text("view"), identity=e.text("identity"),
        name=e.text("name")),
    "proxy:publisher:mismatch": lambda e, say: say(
        gettext_noop("The view {view} hid {filename}: attested by {identity}, not by {pinned} "
                     "pinned for {name}"), view=e.text("view"), filename=e.text("filename"),
        identity=e.text("identity"), pinned=e.text("pinned"), name=e.text("name")),
    "admin:view:exemption:remove": _exemption_remove,
    "proxy:name_hold:request": _name_hold_request,
    "admin:name_hold:approve": _name_hold_decision(True),
    "admin:name_hold:reject": _name_hold_decision(False),
    "project:lookalike:refuse": _lookalike_refuse,
    "project:lookalike:hold": _lookalike_hold,
    "admin:allowed_name:add": _allowed_name_add,
    "admin:allowed_name:remove": _who_and(
        gettext_noop("{who} withdrew the look-alike allowance of the project name {name}"),
        name="name"),
    "admin:lookalike_corpus:load": _corpus_load,
    "admin:namespace:grant": _namespace_grant,
    "admin:namespace:revoke": _namespace_revoke,
    "admin:event_chain:anchor": _who_and(
        gettext_noop("{who} wrote the head of the security log (event #{sequence}) to its "
                     "anchor outside the database"), sequence="sequence"),
    "proxy:lookalike:block": lambda e, say: say(
        gettext_noop("The upstream name {name} was kept from clients as a look-alike of "
                     "{resembles}: {reason}"), name=e.text("name"),
        resembles=e.text("resembles"), reason=quoted(e.get("reason", ""))),
    "admin:upstream:add": _upstream_add,
    "admin:advisories:import": _advisories_import,
    "admin:upstream:change": _upstream_change,
    "project:publisher:add": _publisher_add,
    "project:publisher:remove": lambda e, say: say(
        gettext_noop("{who} removed the trusted publisher {publisher}"), who=_who(e, say),
        publisher=quoted(e.text("publisher"))),
    "project:publisher:ids_learned": lambda e, say: say(
        gettext_noop("The trusted publisher {publisher} was pinned to the ids of its first "
                     "run"), publisher=quoted(e.text("publisher"))),
    "project:trusted_token:minted": lambda e, say: say(
        gettext_noop("The trusted publisher {publisher} obtained an upload token for {run}"),
        publisher=quoted(e.text("publisher")), run=_run(e.get("run"))),
    "account:pending_publisher:add": lambda e, say: say(
        gettext_noop("{who} registered the pending publisher {publisher} for the new project "
                     "{name}"), who=_who(e, say), publisher=quoted(e.text("publisher")),
        name=e.text("name")),
    "account:pending_publisher:remove": _pending_publisher_remove,
    "file:attestation:add": _attestation_add,
    "project:attestation_required:change": lambda e, say: say(
        gettext_noop("{who} required attested uploads for {project}")
        if e.get("enabled") else
        gettext_noop("{who} stopped requiring attested uploads for {project}"),
        who=_who(e, say), project=_project_or_the(e, say)),
    "admin:sigstore_trust_root:refresh": lambda e, say: say(
        gettext_noop("{who} installed a new Sigstore trust root from {source}"),
        who=_who(e, say), source=quoted(e.text("source"))),
    "project:trusted_publishing_only:change": lambda e, say: say(
        gettext_noop("{who} switched {project} to trusted-publishing-only mode")
        if e.get("enabled") else
        gettext_noop("{who} switched trusted-publishing-only mode off for {project}"),
        who=_who(e, say), project=_project_or_the(e, say)),
    "admin:oidc_issuer:add": lambda e, say: say(
        gettext_noop("{who} trusted the OIDC issuer {name} at {url}"), who=_who(e, say),
        name=quoted(e.text("name")), url=e.text("url")),
    "admin:oidc_issuer:remove": lambda e, say: say(
        gettext_noop("{who} stopped trusting the OIDC issuer {name} at {url}"),
        who=_who(e, say), name=quoted(e.text("name")), url=e.text("url")),
    "admin:upstream:remove": lambda e, say: say(
        gettext_noop("{who} removed the upstream index {name} with what was cached of it"),
        who=_who(e, say), name=quoted(e.text("name"))),
    "inventory:file:record": _inventory_record,
    "inventory:code_check:record": _code_check_record,
    "admin:bundled_libs:load": _bundled_libs_load,
    "admin:inventory:queue": _inventory_queue,
    "file:hold": _file_hold,
    "file:release": _file_release,
    "project:release:quarantine": _release_quarantine,
    "file:scan": _scan,
    "proxy:file:scan": _proxy_scan,
    "admin:scan:false_positive": lambda e, say: say(
        gettext_noop("{who} marked the finding {rule} at {location} in {filename} a false "
                     "positive"), who=_who(e, say), rule=e.text("rule"),
        location=e.text("location"), filename=e.text("filename")),
    "admin:scan_rule:disable": lambda e, say: say(
        gettext_noop("{who} disabled the scanner rule {rule}"), who=_who(e, say),
        rule=e.text("rule")),
    "admin:scan_rule:enable": lambda e, say: say(
        gettext_noop("{who} enabled the scanner rule {rule} again"), who=_who(e, say),
        rule=e.text("rule")),
    "admin:scan:rescan": _rescan,
}


def _fallback(e: EventFacts, say: Say) -> str:
    details = ", ".join(f"{one_line(str(k), 50)}={one_line(str(v), 100)}"
                        for k, v in sorted((e.additional or {}).items())[:10])
    if details:
        return say(gettext_noop("{who}: {tag} ({details})"), who=_who(e, say), tag=e.tag,
                   details=details)
    return say(gettext_noop("{who}: {tag}"), who=_who(e, say), tag=e.tag)


def describe(facts: EventFacts, translator: Translator = ENGLISH) -> str:
    """The event in one sentence, ending with where it came from when that was recorded."""
    say = Say(translator)
    describer = DESCRIBERS.get(facts.tag, _fallback)
    try:
        sentence = describer(facts, say)
    except Exception:  # a detail of an unexpected type must not hide the event
        sentence = _fallback(facts, say)
    if facts.ip_address:
        sentence = say(gettext_noop("{sentence} from {ip}"), sentence=sentence,
                       ip=facts.ip_address)
    # Only the sentence's own words are capitalised: names keep the case they were given.
    if getattr(sentence, "opens_with_words", False):
        sentence = sentence[:1].upper() + sentence[1:]
    return str(sentence)
