"""The run's pacer keeps its promise: at most `burst + rate * t` packets in any t seconds.

A fake clock (sockio's `time.monotonic` and `asyncio.sleep`) makes the counts exact and the test
independent of the machine's load: nothing here is timed.
"""

from __future__ import annotations

import asyncio
import itertools
import types

import pytest

from sixcheck.probes import sockio

REAL_SLEEP = asyncio.sleep


class FakeClock:
    """Monotonic time that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # a real sleep lasts at least its request and at least a tick: without the tick, a
        # float-rounded remainder of 1e-19 s would never move a clock near 1000.0
        step = max(seconds, 1e-6)
        self.now += step
        self.slept += step
        self.sleeps += 1
        assert self.sleeps < 100_000, "the pacer keeps sleeping without ever sending"
        await REAL_SLEEP(0)  # let the other takers run, as a real sleep would


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(sockio, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(asyncio, "sleep", fake.sleep)
    return fake


def test_burst_is_a_quarter_second_capped_by_concurrency() -> None:
    assert sockio.Pacer(1000).burst == 250
    assert sockio.Pacer(1000, concurrency=256).burst == 250
    assert sockio.Pacer(1000, concurrency=64).burst == 64
    assert sockio.Pacer(5000, concurrency=256).burst == 256
    assert sockio.Pacer(3).burst == 1  # never zero: a rate under 4/s still sends
    assert sockio.Pacer(200, burst=1).burst == 1


def test_a_full_burst_needs_no_sleep(clock: FakeClock) -> None:
    pace = sockio.Pacer(1000, concurrency=256)

    async def main() -> None:
        for _ in range(250):
            await pace.take()

    asyncio.run(main())
    assert clock.sleeps == 0
    assert pace.sent == 250

    asyncio.run(pace.take())  # the 251st waits for one token: 1 ms at 1000/s
    assert clock.sleeps >= 1
    assert clock.slept == pytest.approx(0.001, abs=1e-5)


def test_a_burst_of_one_spaces_every_packet(clock: FakeClock) -> None:
    """41 packets at 200/s with no burst: the first at once, then one every 5 ms."""
    pace = sockio.Pacer(200, burst=1)
    stamps: list[float] = []

    async def main() -> None:
        for _ in range(41):
            await pace.take()
            stamps.append(clock.now)

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) == pytest.approx(0.005, abs=1e-5), gaps
    assert stamps[-1] - stamps[0] == pytest.approx(0.2, abs=1e-4)


@pytest.mark.parametrize(
    ("rate", "concurrency", "takers", "packets"),
    [(1000, 256, 64, 1280), (1000, 8, 16, 320), (200, 256, 4, 160), (3, 256, 2, 12)],
)
def test_no_window_exceeds_burst_plus_rate_times_t(
    clock: FakeClock, rate: int, concurrency: int, takers: int, packets: int
) -> None:
    """Concurrent takers (as the probes of a run are) against the bound, for every window."""
    pace = sockio.Pacer(rate, concurrency=concurrency)
    stamps: list[float] = []

    async def taker(n: int) -> None:
        for _ in range(n):
            await pace.take()
            stamps.append(clock.now)

    async def main() -> None:
        share = packets // takers
        await asyncio.gather(*(taker(share) for _ in range(takers)))

    asyncio.run(main())
    assert len(stamps) == packets == pace.sent
    stamps.sort()
    slack = 1e-9 * rate  # float rounding of the fake clock, far below one packet
    for i, j in itertools.combinations(range(len(stamps)), 2):
        allowed = pace.burst + rate * (stamps[j] - stamps[i]) + slack
        assert j - i + 1 <= allowed, (i, j, stamps[i], stamps[j])
    # and it is not slower than promised: after the burst, `rate` per second
    assert stamps[-1] - stamps[0] == pytest.approx((packets - pace.burst) / rate, abs=1e-3)


def test_one_pacer_per_loop_shared_and_capped_by_the_smallest_concurrency(clock: FakeClock) -> None:
    async def main() -> tuple[sockio.Pacer, sockio.Pacer, sockio.Pacer]:
        tcp = sockio.pacer(1000, 256)
        echo = sockio.pacer(1000, 16)  # another kind of the same run asks for fewer in flight
        other = sockio.pacer(500)
        return tcp, echo, other

    tcp, echo, other = asyncio.run(main())
    assert tcp is echo
    assert tcp.burst == 16
    assert other is not tcp
    assert other.burst == 125
    again, _, _ = asyncio.run(main())
    assert again is not tcp  # a new run (event loop) starts with a full bucket of its own


def test_an_idle_run_saves_up_no_more_than_one_burst(clock: FakeClock) -> None:
    """A pause (the probes waiting for answers) must not bank tokens for a larger wave later."""
    pace = sockio.Pacer(1000, concurrency=256)

    async def wave(n: int) -> int:
        before = clock.sleeps
        for _ in range(n):
            await pace.take()
        return clock.sleeps - before

    async def main() -> tuple[int, int, int]:
        first = await wave(250)
        clock.now += 10.0  # ten idle seconds: 10,000 tokens' worth of time
        second = await wave(250)
        third = await wave(1)
        return first, second, third

    first, second, third = asyncio.run(main())
    assert (first, second) == (0, 0)
    assert third >= 1  # the 251st after the pause waits: the pause banked one burst, no more


@pytest.mark.parametrize(("rate", "concurrency"), [(1000, 256), (1000, 10), (100, 256)])
def test_retries_keep_within_half_a_linux_icmp_error_budget(
    clock: FakeClock, rate: int, concurrency: int
) -> None:
    """Retries interleaved with first attempts: both bounds hold for every window."""
    pace = sockio.Pacer(rate, concurrency=concurrency)
    firsts: list[float] = []
    retries: list[float] = []

    async def taker(retry: bool, n: int) -> None:
        for _ in range(n):
            await pace.take(retry=retry)
            (retries if retry else firsts).append(clock.now)

    async def main() -> None:
        await asyncio.gather(*(taker(i % 2 == 0, 40) for i in range(12)))

    asyncio.run(main())
    retry_burst = min(pace.burst, 25)
    retry_rate = min(rate, 500)
    assert pace.retry_burst == retry_burst
    slack = 1e-9 * rate
    for stamps, burst, per_s in (
        (sorted(firsts + retries), pace.burst, rate),
        (sorted(retries), retry_burst, retry_rate),
    ):
        for i, j in itertools.combinations(range(len(stamps)), 2):
            assert j - i + 1 <= burst + per_s * (stamps[j] - stamps[i]) + slack, (i, j)


def test_first_attempts_do_not_wait_for_the_retries_bucket(clock: FakeClock) -> None:
    pace = sockio.Pacer(1000, concurrency=256)

    async def main() -> None:
        for _ in range(25):
            await pace.take(retry=True)  # empties the retries' bucket, not the run's
        for _ in range(225):
            await pace.take()

    asyncio.run(main())
    assert clock.sleeps == 0
    assert pace.sent == 250
    asyncio.run(pace.take(retry=True))
    assert clock.slept >= 0.001  # the 26th retry waits (for both buckets)
