"""No number of concurrent reservations can push `used` past `limit`.

Real threads, each with its own database connection, race for the same account. On PostgreSQL
they run truly in parallel and the conditional UPDATE's row lock is what serialises them; on
SQLite the database lock serialises the writers (WAL and a busy timeout: they wait, they don't
deadlock), so the same assertions hold there too.
"""

from __future__ import annotations

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


def _user_on_own_connection(user_id: int):
    """The user, read on this thread's own connection, opened before the start. A PostgreSQL
    server with no connection slot left (another suite on the same server holds them) refuses
    with "too many clients": wait for a slot rather than fail the race before it starts."""
    from accounts.models import User

    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return User.objects.get(pk=user_id)
        except OperationalError as exc:
            connections.close_all()
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _race(user_id: int, work, threads: int = THREADS) -> list[str]:
    """Run `work(user)` in `threads` threads released at the same moment; each thread uses and
    closes its own connection. A thread that cannot start breaks the barrier at once, and its
    error is the one raised (not the others' BrokenBarrierError)."""
    barrier = threading.Barrier(threads)

    def one(_index: int) -> str:
        try:
            try:
                user = _user_on_own_connection(user_id)
            except BaseException:
                barrier.abort()
                raise
            barrier.wait(timeout=CONNECT_SECONDS + 30)
            return work(user)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(one, index) for index in range(threads)]
        raised = [error for error in (future.exception() for future in futures) if error is not None]
    if raised:  # the thread that could not start, not the others its abort released
        raise next((error for error in raised if not isinstance(error, threading.BrokenBarrierError)), raised[0])
    return [future.result() for future in futures]


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
