"""The operator process does not carry the Kubernetes client libraries kopf would import for nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is None, reason="the kubernetes client is not installed")
def test_the_operator_imports_kopf_without_the_kubernetes_client_which_stays_importable():
    script = ("import sys; import llmops_operator.cli.run; "
              "print('kubernetes' in sys.modules); import kubernetes.client; print(kubernetes.client.__name__)")
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "kubernetes.client"]
