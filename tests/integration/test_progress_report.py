"""Two writers of one progress ConfigMap: the workers report progress and checkpoints, then the driver reports the
evaluation. The driver's report must add its block and keep theirs (status reads the loss curve from it).

On the real apiserver the operator's own pass (the chart's credentials) writes the ConfigMap and the reporter's
ServiceAccount, Role and RoleBinding, and the reports go out with a token of that ServiceAccount: what RBAC lets a
training pod do is what is tested."""

from __future__ import annotations

import json
import urllib.error

import pytest

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube, namespace, new_namespace  # noqa: F401
from kube_helpers import example, reconcile_once

from llmops_operator.api.v1alpha1 import TrainingJob
from llmops_operator.builders.progress import PROGRESS_KEY, progress_target, reporter_name
from llmops_operator.core.contract import parse
from llmops_operator.entrypoints.report import CONFIGMAP, Reporter
from llmops_operator.k8s.blocking import BlockingClient

APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator


def test_the_evaluation_report_keeps_the_training_progress(kube, namespace, apiserver_kind):
    body = kube.apply(example("TrainingJob"), namespace)
    job = parse(TrainingJob, reconcile_once(kube, TrainingJob, namespace, body["metadata"]["name"]))
    target = progress_target(job)
    assert kube.get(CONFIGMAP, namespace, target["configMap"]) is not None, "the operator wrote no progress ConfigMap"
    config = None if apiserver_kind is None else apiserver_kind.kubeconfig_of(namespace, reporter_name(job))

    def reporter() -> Reporter:
        return Reporter(target, client=BlockingClient(config, field_manager="llmops-runtime"))

    workers = reporter()
    workers.update("progress", {"step": 33, "loss": 0.51, "firstLoss": 0.6931})
    workers.update("checkpoint", {"step": 33}, force=True)

    reporter().carry_on().update("evaluation", {"scores": {"preferenceAccuracy": 1.0}}, force=True)

    written = json.loads(kube.get(CONFIGMAP, namespace, target["configMap"])["data"][PROGRESS_KEY])
    assert written["progress"]["loss"] == 0.51 and written["checkpoint"] == {"step": 33}
    assert written["evaluation"] == {"scores": {"preferenceAccuracy": 1.0}}
    if config is not None:  # the Role names that one ConfigMap: the pod's token may write no other
        with pytest.raises(urllib.error.HTTPError) as refused:
            BlockingClient(config).patch(CONFIGMAP, namespace, "kube-root-ca.crt", {"data": {"x": "y"}})
        assert refused.value.code == 403
