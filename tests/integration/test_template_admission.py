"""The e2e journey's pod-template admission check (tests/realkube/template_admission.py) on the real apiserver: a
Job whose pod would violate PodSecurity `restricted` is stored (workload objects are only warned about), and the
check refuses its template; a Job the operator could have written passes; a namespace that does not enforce
`restricted` is not looked at."""

from __future__ import annotations

import pytest

from apiservers import apiserver_kind, kube, namespace, new_namespace  # noqa: F401

from llmops_operator.k8s.resources import resource_for

pytestmark = pytest.mark.integration

APISERVERS = ("real",)  # PodSecurity admission exists only there
JOBS = resource_for("batch/v1", "Job")
RESTRICTED_CONTAINER = {"name": "main", "image": "python:3.11", "command": ["true"],
                        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                            "capabilities": {"drop": ["ALL"]},
                                            "seccompProfile": {"type": "RuntimeDefault"}}}


def job(name: str, container: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}


def test_a_template_restricted_refuses_is_reported_and_one_it_admits_is_not(kube, namespace, new_namespace):
    from realkube.template_admission import TemplateAdmission

    kube.apply(job("root", {"name": "main", "image": "python:3.11", "command": ["true"]}), namespace)
    kube.apply(job("restricted", RESTRICTED_CONTAINER), namespace)
    open_namespace = new_namespace("open")
    kube.request("PATCH", f"/api/v1/namespaces/{open_namespace}",
                 {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
                 "application/merge-patch+json")
    kube.apply(job("elsewhere", {"name": "main", "image": "python:3.11"}), open_namespace)

    admission = TemplateAdmission(kube)
    admission.sweep()
    [refused] = admission.refused
    assert refused.startswith(f"Job {namespace}/root spec.template:") and "violates PodSecurity" in refused, refused
    assert namespace in admission.namespaces and open_namespace not in admission.namespaces

    admission.sweep()  # each child is checked once per generation
    assert admission.refused == [refused]
