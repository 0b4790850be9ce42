"""builders/crd_fields: a manifest pruned to the fields a CRD's schema declares."""

from __future__ import annotations

from llmops_operator.builders.crd_fields import prune, version_schema

SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "metadata": {"type": "object"},  # as controller-gen writes it: no properties, yet nothing is pruned
        "spec": {
            "type": "object",
            "properties": {
                "entrypoint": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "workers": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}}}},
                "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                             "properties": {"spec": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "properties": {"data": {"type": "object"}}},
                "anything": {"type": "object", "additionalProperties": True},
            },
        },
    },
}


def test_undeclared_fields_are_removed_and_named():
    manifest = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x", "labels": {"a": "b"}},
                "spec": {"entrypoint": "python", "preRunningDeadlineSeconds": 60,
                         "workers": [{"name": "w", "replicas": 2}]}}
    pruned, removed = prune(manifest, SCHEMA)
    assert pruned == {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x", "labels": {"a": "b"}},
                      "spec": {"entrypoint": "python", "workers": [{"name": "w"}]}}
    assert removed == ["spec.preRunningDeadlineSeconds", "spec.workers[0].replicas"]
    assert manifest["spec"]["preRunningDeadlineSeconds"] == 60  # the input is left as it was


def test_maps_keep_their_keys_and_prune_their_values():
    pruned, removed = prune({"spec": {"labels": {"x": "1", "y": "2"}, "anything": {"k": {"deep": 1}}}}, SCHEMA)
    assert pruned == {"spec": {"labels": {"x": "1", "y": "2"}, "anything": {"k": {"deep": 1}}}}
    assert removed == []


def test_preserve_unknown_fields_keeps_undeclared_but_prunes_declared_children():
    manifest = {"spec": {"template": {"free": {"form": True}, "spec": {"a": 1, "b": 2}}}}
    pruned, removed = prune(manifest, SCHEMA)
    assert pruned == {"spec": {"template": {"free": {"form": True}, "spec": {"a": 1}}}}
    assert removed == ["spec.template.spec.b"]


def test_embedded_resources_keep_type_and_metadata():
    manifest = {"spec": {"embedded": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                      "data": {}, "binaryData": {}}}}
    pruned, removed = prune(manifest, SCHEMA)
    assert pruned["spec"]["embedded"] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                          "data": {}}
    assert removed == ["spec.embedded.binaryData"]


def test_a_whole_object_under_preserve_unknown_fields_is_kept():
    manifest = {"spec": {"x": [1, {"y": 2}]}, "status": {"z": 1}}
    assert prune(manifest, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}) == (manifest, [])


def test_arrays_without_item_schema_and_scalars_pass_through():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "args": {"type": "array"}, "n": {"type": "integer"}}}}}
    manifest = {"spec": {"args": ["a", {"b": 1}], "n": 3}}
    assert prune(manifest, schema) == (manifest, [])


def test_version_schema():
    crd = {"spec": {"versions": [{"name": "v1alpha1"}, {"name": "v1", "schema": {"openAPIV3Schema": SCHEMA}}]}}
    assert version_schema(crd, "v1") is SCHEMA
    assert version_schema(crd, "v1alpha1") is None
    assert version_schema(crd, "v2") is None


def test_the_field_tree_prunes_as_the_whole_schema_does():
    from llmops_operator.builders.crd_fields import field_tree

    described = {**SCHEMA, "description": "x" * 1000}
    manifest = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"},
                "spec": {"entrypoint": "e", "gone": 1, "workers": [{"name": "w", "extra": 2}],
                         "template": {"kept": 1, "spec": {"a": 1, "b": 2}}, "anything": {"x": 1}}}
    tree = field_tree(described)
    assert "description" not in str(tree) and "type" not in tree
    assert prune(manifest, tree) == prune(manifest, SCHEMA)


def test_a_drop_message_names_the_crd_the_fields_and_what_to_install():
    from llmops_operator.builders.crd_fields import SHOWN_FIELDS, Dropped

    many = tuple(f"spec.f{i}" for i in range(SHOWN_FIELDS + 3))
    message = Dropped("RayJob", "run-a", "rayjobs.ray.io", many, "KubeRay v1.6 or later").message()
    assert message.startswith("RayJob run-a: the installed rayjobs.ray.io CRD does not declare spec.f0, ")
    assert "and 3 more" in message and f"spec.f{SHOWN_FIELDS}" not in message
    assert message.endswith("install KubeRay v1.6 or later for them to take effect")
