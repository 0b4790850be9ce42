"""What the operator needs of the engine's offline runs (the self-test and spec.evaluation) without loading the
engine: the engine, its model and corpora stay in the process that runs them."""

from __future__ import annotations

MIN_DETECTION_RATE = 0.9
MAX_FALSE_POSITIVE_RATE = 0.05
"""The self-test's bars: SelfTested is True when the checks catch at least this share of the attacks they cover and
hit at most this share of the benign look-alikes."""


class DatasetError(ValueError):
    """A dataset the evaluation cannot read; the message names the line."""
