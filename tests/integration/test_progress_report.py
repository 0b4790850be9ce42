"""Two writers of one progress ConfigMap: the workers report progress and checkpoints, then the driver reports the
evaluation. The driver's report must add its block and keep theirs (status reads the loss curve from it)."""

from __future__ import annotations

import json

from llmops_operator.builders.progress import PROGRESS_KEY
from llmops_operator.entrypoints.report import CONFIGMAP, Reporter


def test_the_evaluation_report_keeps_the_training_progress(kube, namespace):
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ft-progress", "namespace": namespace},
                "data": {}}, namespace=None)
    target = {"namespace": namespace, "configMap": "ft-progress", "key": PROGRESS_KEY}
    workers = Reporter(target)
    workers.update("progress", {"step": 33, "loss": 0.51, "firstLoss": 0.6931})
    workers.update("checkpoint", {"step": 33}, force=True)

    Reporter(target).carry_on().update("evaluation", {"scores": {"preferenceAccuracy": 1.0}}, force=True)

    written = json.loads(kube.get(CONFIGMAP, namespace, "ft-progress")["data"][PROGRESS_KEY])
    assert written["progress"]["loss"] == 0.51 and written["checkpoint"] == {"step": 33}
    assert written["evaluation"] == {"scores": {"preferenceAccuracy": 1.0}}
