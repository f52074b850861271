"""Fetch session cache (KIP-227): ids are unique, lookups refresh recency, and a full cache
evicts the least recently used session.

Method: drive FetchSessionCache with a seeded RNG and a manual clock.
"""

import random

from streambus.broker.fetch_session import FetchSessionCache


def _cache(sessions_max: int = 3) -> FetchSessionCache:
    now = [0]
    return FetchSessionCache(clock_ms=lambda: now[0], sessions_max=sessions_max,
                             rng=random.Random(7))


def test_new_sessions_get_distinct_nonzero_ids_and_expect_epoch_one() -> None:
    cache = _cache(sessions_max=100)
    sessions = [cache.create(uses_topic_ids=False) for _ in range(50)]
    ids = {s.session_id for s in sessions}
    assert len(ids) == 50 and 0 not in ids
    assert all(s.epoch == 1 for s in sessions)


def test_full_cache_evicts_least_recently_used() -> None:
    cache = _cache(sessions_max=2)
    first = cache.create(False)
    second = cache.create(False)
    assert cache.get(first.session_id) is first  # touch: second is now the oldest
    third = cache.create(False)
    assert cache.get(second.session_id) is None
    assert cache.get(first.session_id) is first
    assert cache.get(third.session_id) is third
    assert len(cache) == 2


def test_removed_session_is_not_found() -> None:
    cache = _cache()
    session = cache.create(True)
    cache.remove(session.session_id)
    assert cache.get(session.session_id) is None


def test_zero_slots_disables_sessions() -> None:
    assert _cache(sessions_max=0).create(False) is None
