"""Coordinator timers: keyed, replaceable, cancellable, fired earliest first one at a time."""

from streambus.coordinator.group.timer import Timer


def test_due_operations_fire_in_deadline_then_schedule_order() -> None:
    timer = Timer()
    fired = []
    timer.schedule("b", 20, lambda now: fired.append(("b", now)))
    timer.schedule("a", 10, lambda now: fired.append(("a", now)))
    timer.schedule("c", 20, lambda now: fired.append(("c", now)))
    assert timer.next_deadline_ms() == 10
    while (operation := timer.pop_expired(25)) is not None:
        operation(25)
    assert fired == [("a", 25), ("b", 25), ("c", 25)]
    assert timer.next_deadline_ms() is None and len(timer) == 0


def test_rescheduling_a_key_replaces_the_old_deadline() -> None:
    timer = Timer()
    timer.schedule("k", 10, lambda now: "old")
    timer.schedule("k", 50, lambda now: "new")
    assert timer.pop_expired(30) is None
    assert timer.next_deadline_ms() == 50
    assert timer.pop_expired(50)(50) == "new"


def test_cancelled_timer_never_fires_and_unknown_cancel_is_ignored() -> None:
    timer = Timer()
    timer.schedule("k", 10, lambda now: "x")
    timer.cancel("k")
    timer.cancel("never-scheduled")
    assert not timer.is_scheduled("k")
    assert timer.pop_expired(100) is None


def test_an_operation_may_cancel_a_timer_due_at_the_same_time() -> None:
    timer = Timer()
    fired = []
    timer.schedule("first", 10, lambda now: (fired.append("first"), timer.cancel("second")))
    timer.schedule("second", 10, lambda now: fired.append("second"))
    while (operation := timer.pop_expired(10)) is not None:
        operation(10)
    assert fired == ["first"]
