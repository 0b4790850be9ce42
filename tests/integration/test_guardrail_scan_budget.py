"""The guardrail transformer scans off its event loop: its probes answer while worst-case bodies are scanned,
and a scan past its time budget ends in each check's onError. A real transformer process with the example
policy; no predictor is needed (a scan that runs out of budget fails closed before any model call).
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("kserve")
httpx = pytest.importorskip("httpx")

from model_servers import MODEL, free_port, transformer, write_policy  # noqa: E402

BODY_LIMIT = 1 << 20
HOSTILE_PROMPT = ("bob@example.com " * 70_000)[:999_000]
"""Just under the engine's size limit, so it is scanned: one e-mail match every 16 bytes is the most work per
byte the example policy's input checks know (every match is validated, judged and redacted)."""


def predict_json(url: str, prompt: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [{"prompt": prompt}]}, timeout=timeout)


def probe_latencies(url: str, busy: threading.Event) -> list[float]:
    latencies = []
    with httpx.Client(timeout=10) as client:
        while busy.is_set():
            started = time.perf_counter()
            assert client.get(f"{url}/v2/health/live").status_code == 200
            assert client.get(f"{url}/v1/models/{MODEL}").status_code == 200
            latencies.append((time.perf_counter() - started) / 2)
            time.sleep(0.02)
    return latencies


@pytest.mark.timeout(300)
def test_probes_answer_within_100ms_while_1mib_hostile_bodies_are_scanned(tmp_path):
    env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(tmp_path / "policy.json")),
           "LLMOPS_SCAN_TIMEOUT_SECONDS": "120"}
    assert len(f'{{"instances": [{{"prompt": "{HOSTILE_PROMPT}"}}]}}'.encode()) <= BODY_LIMIT
    with transformer(tmp_path, "scan-budget", free_port(), env) as url:
        busy = threading.Event()
        busy.set()
        answers: list[float] = []

        def hostile_request() -> None:
            started = time.perf_counter()
            predict_json(url, HOSTILE_PROMPT)
            answers.append(time.perf_counter() - started)

        scans = [threading.Thread(target=hostile_request) for _ in range(3)]
        for scan in scans:
            scan.start()
        time.sleep(0.3)  # the bodies are uploaded and parsed; the scans are running
        probes: list[float] = []
        prober = threading.Thread(target=lambda: probes.extend(probe_latencies(url, busy)))
        prober.start()
        for scan in scans:
            scan.join()
        busy.clear()
        prober.join()
    assert min(answers) > 0.5, f"the hostile scans took {answers}: too short to have been probed during"
    # p95, not the maximum: on a shared 2-core machine the scheduler alone delays about 1% of probes past 100 ms
    # with no scan running at all. Scans on the event loop delayed every probe taken during them by seconds.
    probes.sort()
    assert len(probes) >= 20 and probes[int(len(probes) * 0.95)] < 0.1 and probes[-1] < 1.0, \
        f"slowest probes {probes[-5:]} of {len(probes)}"


@pytest.mark.timeout(120)
def test_a_scan_over_its_budget_fails_closed_per_check(tmp_path):
    env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(tmp_path / "policy.json")),
           "LLMOPS_SCAN_TIMEOUT_SECONDS": "0.05"}
    with transformer(tmp_path, "scan-timeout", free_port(), env) as url:
        started = time.perf_counter()
        answer = predict_json(url, HOSTILE_PROMPT)
        elapsed = time.perf_counter() - started
    prediction = answer.json()["predictions"][0]
    assert answer.status_code == 200 and prediction["blocked"] is True, prediction
    assert prediction["verdict"] == {"input": {"outcome": "blocked"}} and prediction["requestId"]
    assert elapsed < 5, f"the client waited {elapsed:.1f}s for a 0.05s budget"
