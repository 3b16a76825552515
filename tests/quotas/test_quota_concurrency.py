"""No number of concurrent reservations can push `used` past `limit`.

Real threads, each with its own database connection, race for the same account. On PostgreSQL
they run truly in parallel and the conditional UPDATE's row lock is what serialises them; on
SQLite the database lock serialises the writers (WAL and a busy timeout: they wait, they don't
deadlock), so the same assertions hold there too.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError, connection, connections
from django.db.models import Sum

from core.exceptions import QuotaExceeded
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.services import quota_account_ensure, quota_limit_set, quota_reserve, reservation_refund, reservation_settle

THREADS = 50


CONNECT_SECONDS = 120
# Refusals of a PostgreSQL server with no connection slot left (another suite on it holds them).
NO_SLOT = ("too many clients", "remaining connection slots are reserved")


class _NoSlot(Exception):
    """A thread could not connect before the start: nothing has run yet, so the start can be retried."""


def _race_once(user_id: int, work, threads: int) -> list[str]:
    from accounts.models import User

    barrier = threading.Barrier(threads)

    def one(_index: int) -> str:
        try:
            try:
                user = User.objects.get(pk=user_id)  # on this thread's own connection, before the start
            except BaseException as exc:
                barrier.abort()
                if isinstance(exc, OperationalError) and any(text in str(exc) for text in NO_SLOT):
                    raise _NoSlot(str(exc)) from exc
                raise
            barrier.wait(timeout=60)
            return work(user)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(one, index) for index in range(threads)]
        raised = [error for error in (future.exception() for future in futures) if error is not None]
    if raised:  # the thread that could not start, not the others its abort released
        raise next((error for error in raised if not isinstance(error, threading.BrokenBarrierError)), raised[0])
    return [future.result() for future in futures]


def _race(user_id: int, work, threads: int = THREADS) -> list[str]:
    """Run `work(user)` in `threads` threads released at the same moment; each thread uses and
    closes its own connection. If the server has no slot for one of them, every thread lets go of
    its connection before the start and the start is tried again after a random pause: holding
    them while waiting could leave two suites on one server each waiting for the other's slots."""
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return _race_once(user_id, work, threads)
        except _NoSlot:
            if time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.5, 3.0))  # a back-off that breaks the symmetry, not a wait on an event


def _reserve_chat(user) -> str:
    try:
        quota_reserve(user=user, service=Service.CHAT, units=2)
    except QuotaExceeded:
        return "refused"
    return "reserved"


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_reservations_with_room_for_ten(make_user):
    user = make_user()
    account = quota_limit_set(account=quota_account_ensure(user=user), limit=20)  # room for 10 chats of 2 units

    outcomes = _race(user.pk, _reserve_chat)

    assert outcomes.count("reserved") == 10
    assert outcomes.count("refused") == THREADS - 10
    account.refresh_from_db()
    assert account.used == 20
    assert Reservation.objects.filter(user=user).count() == 10
    assert UsageEntry.objects.filter(user=user).aggregate(total=Sum("units"))["total"] == account.used


@pytest.mark.django_db(transaction=True)
def test_concurrent_settles_and_refunds_keep_the_ledger_equal_to_used(make_user):
    """Half the reservations settle lower, half are refunded, all at once."""
    user = make_user()
    quota_limit_set(account=quota_account_ensure(user=user), limit=1000)
    reservations = [quota_reserve(user=user, service=Service.SPEECH_TO_TEXT, units=10) for _ in range(20)]
    queue = iter(reservations)
    lock = threading.Lock()

    def close_one(_user) -> str:
        with lock:
            index, reservation = next(counter), next(queue)
        if index % 2:
            reservation_refund(reservation=reservation)
            return "refunded"
        reservation_settle(reservation=reservation, units=3)
        return "settled"

    counter = iter(range(20))
    outcomes = _race(user.pk, close_one, threads=20)

    assert sorted(outcomes) == ["refunded"] * 10 + ["settled"] * 10
    used = QuotaAccount.objects.get(user=user).used
    assert used == 10 * 3
    assert UsageEntry.objects.filter(user=user).aggregate(total=Sum("units"))["total"] == used


def test_threads_use_their_own_connections():
    """Guards the premise of the race above: a thread does not share the test's connection."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(connections["default"]))
    thread.start()
    thread.join()
    assert seen[0] is not connection
