"""Billing of job kinds paid through a quota reservation: the `core.jobs` `Billing` protocol on
top of `reservation_settle` / `reservation_refund`, for job models with a `reservation` FK."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import models

from quotas.models import Reservation
from quotas.services import reservation_refund, reservation_settle


def _reservation(job: models.Model) -> Reservation | None:
    reservation = getattr(job, "reservation", None)
    return reservation if isinstance(reservation, Reservation) else None


class ReservationBilling:
    """Settles or refunds the reservation a job holds; a job without one costs nothing."""

    def settle(self, job: models.Model, *, units: int | None = None, usage: Mapping[str, float] | None = None) -> None:
        reservation = _reservation(job)
        if reservation is not None:
            reservation_settle(reservation=reservation, units=units, usage=dict(usage) if usage else None)

    def refund(self, job: models.Model) -> None:
        reservation = _reservation(job)
        if reservation is not None:
            reservation_refund(reservation=reservation)
