from __future__ import annotations

import pytest

from llmops_operator.api.v1alpha1.units import gib, parse_duration, parse_quantity
from llmops_operator.builders.naming import child_name, short_hash
from llmops_operator.core.pricing import PriceCatalog, default_catalog
from llmops_operator.scoring.cost import UnknownGpuType, accrued, per_1k_tokens, pod_hourly


@pytest.mark.parametrize("value,expected", [
    ("500m", 0.5), ("2", 2.0), (3, 3.0), ("1k", 1000.0), ("16Gi", 16 * 2**30), ("1.5", 1.5),
])
def test_parse_quantity(value, expected):
    assert parse_quantity(value) == expected


def test_gib_and_bad_quantity():
    assert gib("512Mi") == 0.5
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity("lots")


@pytest.mark.parametrize("value,seconds", [("90s", 90), ("1h30m", 5400), ("250ms", 0.25), ("2h", 7200)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("bad", ["", "5", "1d", "1h 2m"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_child_names_are_dns_labels_and_hashed_only_when_long():
    assert child_name("My_Job", "ray") == "my-job-ray"
    long = child_name("x" * 80, "ingest", max_length=40)
    assert len(long) == 40 and long == child_name("x" * 80, "ingest", max_length=40)
    assert long != child_name("x" * 81, "ingest", max_length=40)


def test_short_hash_ignores_key_order():
    assert short_hash({"a": 1, "b": 2}) == short_hash({"b": 2, "a": 1})


def test_pod_hourly_prices_cpu_memory_and_gpus():
    catalog = PriceCatalog(cpuCoreHour=0.5, memoryGiBHour=0.1, gpus={"g": {"hourly": 2.0}})
    assert pod_hourly(catalog, cpu=2, memory_gib=4) == pytest.approx(1.4)
    assert pod_hourly(catalog, cpu=2, memory_gib=4, gpus=2, gpu_type="g") == pytest.approx(5.4)
    with pytest.raises(UnknownGpuType, match="knows: g"):
        pod_hourly(catalog, cpu=1, memory_gib=1, gpus=1, gpu_type="nvidia-unknown")


def test_accrued_and_per_token_cost():
    assert accrued(3.6, 1800) == pytest.approx(1.8)
    assert per_1k_tokens(3.6, 3600, 2000) == pytest.approx(1.8)
    assert per_1k_tokens(3.6, 3600, 0) is None


def test_catalog_file_round_trip(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("currency: EUR\ncpuCoreHour: 0.02\ngpus:\n  nvidia-l4: {hourly: 0.7}\n")
    catalog = PriceCatalog.load(path)
    assert catalog.currency == "EUR" and catalog.gpus["nvidia-l4"].hourly == 0.7
    assert PriceCatalog.load(None) == default_catalog()


def test_catalog_rejects_negative_prices(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("cpuCoreHour: -1\n")
    with pytest.raises(ValueError, match="cpuCoreHour"):
        PriceCatalog.load(path)
