"""Suite-wide settings: no test may reach outside this machine."""

import os

# prometheus_client picks single- or multi-process value storage when first imported; import it before any
# test module imports feast (which sets the multi-process variables) so the suite keeps one mode throughout.
import prometheus_client  # noqa: E402,F401

os.environ.setdefault("LLMOPS_PRICING_FILE", "")

import pytest

PROMETHEUS_MULTIPROCESS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
_AT_START = {name: os.environ.get(name) for name in PROMETHEUS_MULTIPROCESS_VARIABLES}


def _restore(values: dict) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_collection_finish(session):
    _restore(_AT_START)  # a test module that imports feast at collection time


@pytest.fixture(autouse=True)
def _no_leaked_prometheus_multiprocess_mode():
    """Importing feast switches prometheus_client to multi-process mode for the whole process (and every process
    started after it) by setting these variables; a test that imports it must not change how later tests and
    the sandbox's servers count metrics."""
    before = {name: os.environ.get(name) for name in PROMETHEUS_MULTIPROCESS_VARIABLES}
    yield
    _restore(before)
