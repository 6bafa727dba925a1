"""Seats droppable at renewal and seats about to stop working, from the subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime

from licsync.reports.forecast import SeatForecast
from licsync.spend.renewals import renewal
from licsync.spend.subscriptions import Subscription

JAN, MAR, JUN = (datetime(2027, m, 1, tzinfo=UTC) for m in (1, 3, 6))


def forecast(in_use: int, granted: int = 0, freed: int = 0, short: int = 0) -> SeatForecast:
    wanted = granted + short
    return SeatForecast("s", "SKU", 0, in_use, in_use - freed, freed, wanted, granted, short, 0)


def sub(n: int, status: str, seats: int, when: datetime, trial: bool = False) -> Subscription:
    return Subscription(f"{n}", "s", status, trial, seats, when)


def test_droppable_is_paid_seats_minus_held_after_and_pending() -> None:
    subs = [sub(1, "Enabled", 60, MAR), sub(2, "Enabled", 40, JAN)]
    found = renewal(forecast(in_use=70, granted=5, freed=10, short=3), subs)
    assert found.needed == 70 + 5 - 10 + 3
    assert (found.bought, found.droppable, found.date) == (100, 100 - 68, JAN)
    assert found.losses == ()


def test_no_paid_subscription_means_nothing_to_drop() -> None:
    found = renewal(forecast(in_use=3), [sub(1, "Enabled", 5, JAN, trial=True)])
    assert (found.bought, found.droppable, found.date) == (None, None, None)


def test_ending_subscriptions_take_seats_the_plan_still_needs() -> None:
    subs = [
        sub(1, "Warning", 10, JAN),
        sub(2, "Enabled", 5, MAR, trial=True),
        sub(3, "Enabled", 50, JUN),
        sub(4, "Suspended", 4, JAN),
    ]
    # 62 needed; 69 seats live; the Warning one ends in January: 59 left, 3 users lose;
    # the Suspended one: 55 left, 4 more; the trial in March: 50 left, 5 more
    found = renewal(forecast(in_use=60, granted=2), sorted(subs, key=lambda s: s.next_lifecycle))
    assert [(loss.subscription.id, loss.users, loss.date) for loss in found.losses] == [
        ("1", 3, JAN),
        ("4", 4, JAN),
        ("2", 5, MAR),
    ]
    assert found.droppable == 0


def test_an_ending_subscription_the_plan_does_not_need_costs_no_one() -> None:
    subs = [sub(1, "Warning", 10, JAN), sub(2, "Enabled", 50, JUN)]
    assert renewal(forecast(in_use=45), subs).losses == ()
