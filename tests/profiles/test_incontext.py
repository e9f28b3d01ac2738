"""Rows timed inside the whole forward pass (profiles.incontext): they add up to the pass's total less the
hooks' measured cost, by construction; the CUDA event clock's logic, with fake events on a CPU; the
estimators."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from profiles.backends import TorchBackend
from profiles.incontext import (EventClock, WallClock, estimate, hook_overhead_ms, min_of_medians, time_in_context,
                                trimmed_mean)
from profiles.latency import TimingProtocol
from zoo.builder import build_model
from zoo.config import load_config

QUICK = TimingProtocol(runs=4, warmup_runs=1, warmup_s=0.0)


class Sleepy(nn.Module):
    """A row that takes a known wall time (a sleep), so a timing has an answer."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms

    def forward(self, x):
        import time
        time.sleep(self.ms / 1000)
        return x


class Chain(nn.Module):
    def __init__(self, *ms: float) -> None:
        super().__init__()
        self.model = nn.ModuleList(Sleepy(m) for m in ms)

    def forward(self, x):
        for m in self.model:
            x = m(x)
        return x


def test_rows_add_up_to_the_pass_total_by_construction() -> None:
    model = build_model(load_config("yolov5n"), device="cpu").eval()
    x = torch.randn(1, 3, 64, 64)
    t = time_in_context(model, x, protocol=QUICK)
    assert len(t.rows_ms) == len(model.model) and t.passes == QUICK.runs
    totals = [math.fsum(s[q] for s in t.row_samples_ms) for q in range(t.passes)]  # each pass: its rows
    assert all(v > 0 for v in totals)
    assert t.total.median_ms == pytest.approx(sorted(totals)[1] / 2 + sorted(totals)[2] / 2)  # = the passes' totals
    assert t.overhead_ms >= 0


def test_known_row_times_are_recovered_and_the_overhead_is_subtracted() -> None:
    t = time_in_context(Chain(2.0, 6.0, 4.0), torch.zeros(1), protocol=QUICK)
    assert t.rows_ms[0] < t.rows_ms[2] < t.rows_ms[1]
    for got, want in zip(t.rows_ms, (2.0, 6.0, 4.0)):
        assert want <= got + 0.05 and got < want + 3.0  # a sleep never ends early; the machine is shared
    big = time_in_context(Chain(2.0, 6.0, 4.0), torch.zeros(1), protocol=QUICK, overhead_ms=1.0)
    assert all(s >= 0 for row in big.row_samples_ms for s in row)


def test_hook_overhead_is_the_interval_between_stamps_of_empty_rows() -> None:
    class Fixed:
        """A clock whose every interval is 0.25 ms."""

        def begin(self):
            self.n = 0

        def stamp(self):
            self.n += 1

        def intervals_ms(self):
            return [0.25] * (self.n - 1)

    assert hook_overhead_ms(Fixed(), passes=3, chain=5) == 0.25
    assert 0 <= hook_overhead_ms(WallClock(), passes=3, chain=8) < 1.0


class FakeEvent:
    """A CUDA event stand-in: records the fake GPU's time when recorded."""

    now = 0.0
    log: list = []

    def __init__(self) -> None:
        self.t = None

    def record(self) -> None:
        FakeEvent.log.append("record")
        self.t = FakeEvent.now

    def elapsed_time(self, other: "FakeEvent") -> float:
        assert FakeEvent.log[-1] == "sync", "read before the end of the pass was synchronised"
        return other.t - self.t


class GpuRow(nn.Module):
    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms

    def forward(self, x):
        FakeEvent.now += self.ms  # the fake GPU runs this row for `ms`
        return x


def test_cuda_event_clock_times_rows_from_events_with_one_sync_per_pass() -> None:
    FakeEvent.log, FakeEvent.now = [], 0.0

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.ModuleList([GpuRow(1.5), GpuRow(0.5), GpuRow(3.0)])

        def forward(self, x):
            for m in self.model:
                x = m(x)
            return x

    clock = EventClock(make_event=FakeEvent, synchronize=lambda: FakeEvent.log.append("sync"))
    t = time_in_context(Model(), torch.zeros(1), protocol=QUICK, clock=clock, overhead_ms=0.0)
    assert t.rows_ms == (1.5, 0.5, 3.0)
    assert t.total.median_ms == pytest.approx(5.0)
    syncs = FakeEvent.log.count("sync")
    assert syncs == QUICK.runs  # one per timed pass, none inside a pass
    assert FakeEvent.log.count("record") == QUICK.runs * 5  # begin, three rows, end


def test_torch_backend_times_in_context_through_its_interface() -> None:
    b = TorchBackend(threads=1)
    model = build_model(load_config("yolov5n"), device="cpu")
    t = b.time_in_context(model, (1, 3, 64, 64), QUICK)
    assert len(t.rows_ms) == len(model.model)
    assert t.row_sum_ms == pytest.approx(math.fsum(t.rows_ms))
    assert b._overhead_ms == t.overhead_ms  # measured once, kept for the next model
    t2 = b.time_in_context(model, (1, 3, 64, 64), QUICK)
    assert t2.overhead_ms == t.overhead_ms


def test_estimators() -> None:
    xs = [1.0, 1.1, 0.9, 10.0, 1.0, 1.05]
    assert estimate(xs, "median") == pytest.approx(1.025)
    assert trimmed_mean(xs) == pytest.approx((1.0 + 1.0 + 1.05 + 1.1) / 4)
    assert min_of_medians([5.0, 1.0, 1.0, 5.0, 1.0, 1.0], blocks=3) == 1.0
    assert min_of_medians([2.0]) == 2.0
    with pytest.raises(ValueError, match="estimator"):
        estimate(xs, "mean")
