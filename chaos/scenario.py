"""What a chaos run is made of: its size, the faults planned in a seeded order and the readings
that flow through the workers while they happen."""

from __future__ import annotations

import random
from dataclasses import dataclass

from support.sensors import MINUTE, Reading, disordered_readings

DISORDER_MS = 4_000
GRACE_MS = 8_000  # above the disorder: nothing may be late
SPIKE = 5_000.0  # added to a few readings so that the anomaly rule fires
GUARANTEES = ("exactly_once", "at_least_once")
OUTPUTS = ("sensor-stats-1m", "sensor-stats-5m", "sensor-alerts")
PIPELINES = ",".join(OUTPUTS)  # FAUSTAPP_PIPELINES: each of these pipelines writes its topic


@dataclass(frozen=True)
class Size:
    """Shape of a run."""

    sensors: int
    minutes: int
    every_ms: int
    workers: int
    partitions: int
    kills: int
    spikes: int
    rate: float  # readings per second the producer aims at
    chunk: int  # readings per acknowledged send
    gap_s: tuple[float, float]  # pause after a recovery before the next fault
    settle_timeout_s: float  # how long the outputs may take after the last reading

    @property
    def readings(self) -> int:
        return self.sensors * self.minutes * MINUTE // self.every_ms


SIZES = {
    "full": Size(125, 40, 1500, 3, 6, 10, 30, 1000.0, 500, (1.0, 6.0), 300.0),
    "short": Size(50, 10, 1500, 2, 4, 2, 8, 450.0, 250, (0.5, 2.5), 120.0),
}


@dataclass(frozen=True)
class Fault:
    """One planned fault."""

    kind: str  # kill | wipe | broker
    victim: int | None  # worker slot (kill, wipe)
    gap_s: float  # wait before injecting it
    down_s: float  # how long the victim (or the broker) stays down


def plan_faults(rng: random.Random, size: Size) -> list[Fault]:
    """Kinds in random order (the broker bounce and the wipe anywhere), victims and delays."""
    kinds = ["kill"] * size.kills + ["broker", "wipe"]
    rng.shuffle(kinds)
    plan = []
    for kind in kinds:
        victim = None if kind == "broker" else rng.randrange(size.workers)
        down = rng.uniform(1.0, 4.0) if kind == "broker" else rng.uniform(0.3, 3.0)
        plan.append(Fault(kind, victim, round(rng.uniform(*size.gap_s), 2), round(down, 2)))
    return plan


def make_readings(size: Size, seed: int, start: int) -> list[Reading]:
    """Disordered readings (within the grace), a few of them spiked to trigger alerts."""
    sensors = [f"cs-{i}" for i in range(size.sensors)]
    readings = disordered_readings(
        sensors, start, size.minutes, size.every_ms, DISORDER_MS, seed=seed
    )
    rng = random.Random(seed + 1)
    for i in rng.sample(range(len(readings) // 4, len(readings)), size.spikes):
        r = readings[i]
        readings[i] = Reading(r.sensor_id, r.ts, r.value + SPIKE)
    return readings
