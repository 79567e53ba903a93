"""The dashboard's speed chart: posters ended, counted into equal spans as rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from posterlab.service.browse import speed_buckets

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_ended_posters_become_rates_per_bucket_ending_at_each_bucket_end() -> None:
    out = speed_buckets(at(1, 2, 3, 9), T0, T0 + timedelta(seconds=10), 2)
    assert out["bucket_seconds"] == 5.0
    assert out["points"] == [{"t": T0.timestamp() + 5, "rate": 0.6},
                             {"t": T0.timestamp() + 10, "rate": 0.2}]


def test_the_edges_fall_in_the_first_and_last_bucket_and_nothing_is_lost() -> None:
    times = at(0, 10, 4.99, 5.0)
    out = speed_buckets(times, T0, T0 + timedelta(seconds=10), 2)
    assert [p["rate"] * out["bucket_seconds"] for p in out["points"]] == [2, 2]


def test_a_run_shorter_than_a_second_still_gets_its_buckets() -> None:
    out = speed_buckets(at(0), T0, T0, 60)
    assert len(out["points"]) == 60 and sum(p["rate"] for p in out["points"]) > 0
