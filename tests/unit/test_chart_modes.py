"""The chart's security options, rendered with the real Helm engine: the Events verbs, the namespaced mode, leader
election and the system-namespace admission policy."""

from __future__ import annotations

import pytest

from chart_render import CHART, NAMESPACE, container, grants, helm, objects, one, render
from llmops_operator.cli.main import parser as cli_parser


def test_the_events_verbs_are_the_ones_events_py_uses():
    """controllers/events.post creates, and on a repeat GETs the existing Event and PATCHes its count."""
    import inspect

    from llmops_operator.controllers import events

    source = inspect.getsource(events.post)
    used = {verb.lower() for verb in ("POST", "GET", "PATCH") if f'"{verb}"' in source}
    assert used == {"post", "get", "patch"}
    for values in (None, {"watchNamespaces": ["team-a"]}):
        assert grants(objects(values))[("", "events")] == {"create", "get", "patch"}


def test_namespaced_mode_writes_nothing_outside_the_watched_namespaces():
    docs = objects({"watchNamespaces": ["team-a"]})
    cluster_wide = [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    assert sorted(d["kind"] for d in cluster_wide) == ["ClusterRole", "ClusterRoleBinding"]
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    assert not {v for verbs in grants(docs, kinds={"ClusterRole"}).values() for v in verbs} & writes
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] in {"Role", "RoleBinding"}} == {"team-a"}


def test_system_namespaces_are_never_watched():
    with pytest.raises(helm.HelmValuesError, match="/watchNamespaces/0"):
        render({"watchNamespaces": ["kube-system"]})


def test_more_than_one_replica_needs_leader_election():
    with pytest.raises(helm.HelmError, match="replicas above 1 need leaderElection.enabled"):
        render({"replicas": 2})
    default = one(objects(), "Deployment")["spec"]
    assert (default["replicas"], default["strategy"]["type"]) == (1, "Recreate")


def test_leader_election_passes_the_lease_to_the_cli_and_grants_only_leases_in_the_release_namespace():
    docs = objects({"replicas": 2, "leaderElection": {"enabled": True, "leaseName": "ops-lease"}})
    spec = one(docs, "Deployment")["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (2, "RollingUpdate")
    args = cli_parser().parse_args(container(docs)["args"])
    assert (args.leader_elect, args.lease_name, args.lease_namespace) == (True, "ops-lease", NAMESPACE)
    pod_name = next(e for e in container(docs)["env"] if e["name"] == "POD_NAME")
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    # Exactly the verbs k8s/leader.py sends: GET, POST (create), PUT (update).
    assert grants([role], kinds={"Role"}) == {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
    binding = one(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": one(docs, "ServiceAccount")["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert not [d for d in objects() if d["kind"] in {"Role", "RoleBinding"}], "no Lease RBAC unless enabled"


def test_the_system_namespace_policy_denies_every_write_of_the_operator_s_service_account():
    assert not [d for d in objects() if d["kind"].startswith("ValidatingAdmissionPolicy")]
    docs = objects({"systemNamespacePolicy": {"enabled": True, "extraNamespaces": ["platform"]}})
    policy, binding = one(docs, "ValidatingAdmissionPolicy"), one(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    (selector,) = spec["matchConstraints"]["namespaceSelector"]["matchExpressions"]
    assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In",
                        "values": ["kube-system", "kube-public", "kube-node-lease", "platform"]}
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"} and rule["resources"] == ["*"]
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    (condition,) = spec["matchConditions"]
    assert condition["expression"] == f'request.userInfo.username == "system:serviceaccount:{NAMESPACE}:{sa}"'
    assert spec["validations"] == [{"expression": "false", "reason": "Forbidden",
                                    "message": f"system:serviceaccount:{NAMESPACE}:{sa} may not write in system "
                                               "namespaces"}]
    report = helm.lint(str(CHART), {"systemNamespacePolicy": {"enabled": True, "extraNamespaces": []},
                                    "replicas": 3, "leaderElection": {"enabled": True, "leaseName": "l"}},
                       strict=True)
    assert report["errors"] == [], report
