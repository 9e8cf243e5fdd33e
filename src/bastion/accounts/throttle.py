"""Counting failed sign-in attempts per account and per IP address (per /64 for IPv6).

The store is the database (shared by every server process) or, when BASTION_REDIS_URL is
set, the Redis cache. Only failures count; a success clears the account's counter.

While Redis is unreachable, sign-in fails closed: the store's error is not caught here, so the
request is answered 503 with one line (bastion.ops.outages) and no password is checked. Falling
back to another store, or to no count, would hand out unthrottled guesses for as long as an
attacker can keep Redis busy.

An attempt is counted *before* the password or code is checked (:func:`reserve`), in one
atomic step per limit, and un-counted when the check succeeds (:meth:`Attempt.release`).
Checking the count first and adding a failure afterwards would let every request that
arrives while the others are still checking through: with N limited to 10, dozens of
parallel guesses would each see fewer than 10 failures. Counted first, at most N checks can
be under way or have failed in the window, however many arrive at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import ngettext

from .models import LoginFailure


@dataclass(frozen=True)
class Limit:
    key: str
    max_failures: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


_LOOK_IT_UP = object()


def account_limit(identifier: str, account=_LOOK_IT_UP) -> Limit:
    """The limit of the account ``identifier`` (its name or its address) names, else of what
    was typed.

    One counter per account, whichever of its names is typed: separate ones would give twice
    the guesses. A name that is no account's gets a counter of its own all the same, so
    unknown and known names behave alike. ``account``: the account it names, when the caller
    has looked it up already (None: none).
    """
    if account is _LOOK_IT_UP:
        from .services import find_account  # services imports this module

        account = find_account(identifier)
    if account is not None:
        return user_limit(account)
    return Limit("acct:" + _digest(identifier.strip().lower()), settings.LOGIN_MAX_ATTEMPTS)


def user_limit(user) -> Limit:
    """Password guesses against one account: sign-in, re-authentication, password change."""
    return Limit(f"acct:user:{user.pk}", settings.LOGIN_MAX_ATTEMPTS)


def address_key(ip: str) -> str:
    """What per-address limits count: the address, or for IPv6 its /64.

    One IPv6 subscriber commonly holds a whole /64 (often more), so counting exact addresses
    would hand out 2**64 limits.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def ip_limit(ip: str) -> Limit:
    return Limit("ip:" + address_key(ip), settings.LOGIN_IP_MAX_ATTEMPTS)


def second_factor_limit(user) -> Limit:
    return Limit(f"2fa:{user.pk}", settings.LOGIN_MAX_ATTEMPTS)


def _window() -> int:
    return settings.LOGIN_WINDOW_SECONDS


class _DatabaseStore:
    """One row per counted attempt. The row is committed before the count is read (no
    transaction is open: reserve is called outside atomic blocks), so of any attempts racing
    the last to commit sees every other one: at most ``max_failures`` rows can pass."""

    def reserve(self, limit: Limit):
        now = timezone.now()
        row = LoginFailure.objects.create(key=limit.key, time=now)
        since = now - timedelta(seconds=_window())
        if LoginFailure.objects.filter(key=limit.key, time__gte=since).count() > limit.max_failures:
            row.delete()
            return None
        # Expired rows of every key go, so the table only ever holds the current window.
        LoginFailure.objects.filter(time__lt=since).delete()
        return row.pk

    def release(self, limit: Limit, handle) -> None:
        LoginFailure.objects.filter(pk=handle).delete()

    def retry_after(self, limit: Limit) -> int:
        since = timezone.now() - timedelta(seconds=_window())
        times = list(LoginFailure.objects.filter(key=limit.key, time__gte=since)
                     .order_by("time").values_list("time", flat=True)[:limit.max_failures + 1])
        if len(times) < limit.max_failures:
            return 0
        # The block lifts when enough of the oldest failures have left the window.
        oldest_that_matters = times[len(times) - limit.max_failures]
        wait = (oldest_that_matters + timedelta(seconds=_window()) - timezone.now()).total_seconds()
        return max(1, math.ceil(wait))

    def clear(self, limit: Limit) -> None:
        LoginFailure.objects.filter(key=limit.key).delete()


class _CacheStore:
    """A fixed window per key in the shared cache (Redis)."""

    def _keys(self, limit: Limit) -> tuple[str, str]:
        return f"bastion:throttle:{limit.key}", f"bastion:throttle:{limit.key}:start"

    def retry_after(self, limit: Limit) -> int:
        count_key, start_key = self._keys(limit)
        count = cache.get(count_key) or 0
        if count < limit.max_failures:
            return 0
        start = cache.get(start_key) or time.time()
        return max(1, math.ceil(start + _window() - time.time()))

    def reserve(self, limit: Limit):
        count_key, start_key = self._keys(limit)
        cache.add(start_key, time.time(), _window())
        cache.add(count_key, 0, _window())
        try:
            count = cache.incr(count_key)  # INCR: atomic however many workers race
        except ValueError:  # expired between add and incr
            cache.set(count_key, 1, _window())
            count = 1
        if count > limit.max_failures:
            self.release(limit, True)
            return None
        return True

    def release(self, limit: Limit, handle) -> None:
        try:
            cache.decr(self._keys(limit)[0])
        except ValueError:  # the window ended meanwhile: nothing left to take back
            pass

    def clear(self, limit: Limit) -> None:
        cache.delete_many(list(self._keys(limit)))


def _store():
    return _CacheStore() if settings.REDIS_URL else _DatabaseStore()


def retry_after(limits: list[Limit]) -> int:
    """Seconds until another attempt is allowed; 0 when none of the limits is reached."""
    store = _store()
    return max((store.retry_after(limit) for limit in limits), default=0)


@dataclass
class Attempt:
    """An attempt counted against its limits, or refused (``wait`` seconds > 0)."""

    wait: int = 0
    _held: list = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.wait > 0

    def release(self) -> None:
        """The check passed (or never ran): this attempt is not a failure, un-count it."""
        store = _store()
        for limit, handle in self._held:
            store.release(limit, handle)
        self._held = []


def reserve(limits: list[Limit]) -> Attempt:
    """Count one attempt against every limit before checking it; refused if one is full.

    A refused attempt counts nowhere. A counted one stays counted (it is the failure) unless
    released. Call it outside any transaction, so that other processes see the count at once.
    """
    store = _store()
    held = []
    for limit in limits:
        handle = store.reserve(limit)
        if handle is None:
            Attempt(_held=held).release()
            # Attempts still being checked fill a limit without a failure to date the wait.
            return Attempt(wait=max(1, retry_after(limits)))
        held.append((limit, handle))
    return Attempt(_held=held)


def clear(limits: list[Limit]) -> None:
    store = _store()
    for limit in limits:
        store.clear(limit)


def describe_wait(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return ngettext("{count} second", "{count} seconds", seconds).format(count=seconds)
    return ngettext("{count} minute", "{count} minutes", minutes).format(count=minutes)
