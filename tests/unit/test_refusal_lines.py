"""The log lines the real-apiserver suites count as the API refusing the operator, and one they must not."""

import pytest

from realkube.chart_operator import REFUSALS


@pytest.mark.parametrize("line", [
    'events is forbidden: User "system:serviceaccount:llmops-system:llmops" cannot get resource "events"',
    "calling the API: 403 Forbidden",
    "kopf: Forbidden",
])
def test_a_refusal_is_found(line):
    assert REFUSALS.search(line)


def test_a_timestamp_ending_in_403_milliseconds_is_not_a_refusal():
    assert not REFUSALS.search("2026-12-03 20:00:56,403 INFO kopf.objects: Handler 'seen' succeeded.")
