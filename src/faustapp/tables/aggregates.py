"""Mergeable running statistics, so partial aggregates from batches or workers combine exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class RunningStats:
    """Count, sum, min, max and a numerically stable variance (Welford, merged with Chan et al.)."""

    count: int = 0
    total: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        """Fold one observation in without keeping it."""
        self.count += 1
        self.total += value
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def merge(self, other: RunningStats) -> None:
        """Combine another partial aggregate into this one, as if its values were added here."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.total, self.mean = other.count, other.total, other.mean
            self.m2, self.minimum, self.maximum = other.m2, other.minimum, other.maximum
            return
        count = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / count
        self.m2 += other.m2 + delta * delta * self.count * other.count / count
        self.count = count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    @property
    def variance(self) -> float:
        """Population variance; 0 for fewer than two values."""
        if self.count < 2:
            return 0.0
        return max(self.m2 / self.count, 0.0)

    @property
    def stddev(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.variance)

    def to_list(self) -> list[float | int]:
        """Compact form for the state store."""
        return [self.count, self.total, self.mean, self.m2, self.minimum, self.maximum]

    @classmethod
    def from_list(cls, data: list[float | int]) -> RunningStats:
        """Inverse of :meth:`to_list`."""
        count, total, mean, m2, minimum, maximum = data
        return cls(int(count), float(total), float(mean), float(m2), float(minimum), float(maximum))

    def summary(self) -> dict[str, float | int]:
        """The figures users see, in the output topics' field names."""
        return {
            "count": self.count,
            "sum": self.total,
            "mean": self.mean,
            "min": self.minimum,
            "max": self.maximum,
            "stddev": self.stddev,
        }
