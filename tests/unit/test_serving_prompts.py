"""Prompt versions and routing as the guardrail runtime reads them: loading, picking, rendering, reloading."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import PromptRelease
from llmops_operator.builders.prompts import PROMPT_KEY, ROUTING_KEY, TEMPLATE_KEY, build_prompt_configmaps
from llmops_operator.core.contract import parse
from llmops_operator.servers import protocol
from llmops_operator.servers.prompt_routing import (
    BUCKETS, MountedPrompts, PromptError, PromptVersion, Route, Routing, bucket_of, load_release, parse_routing,
    pick_version, render,
)

ROOT = Path(__file__).resolve().parents[2]


def example_release() -> PromptRelease:
    body = yaml.safe_load((ROOT / "manifests/examples/promptrelease.yaml").read_text())
    body["metadata"]["namespace"] = "default"
    return parse(PromptRelease, body)


def mount(release: PromptRelease, root: Path) -> tuple[Path, Path]:
    """Write the release's ConfigMaps as builders/kserve.py mounts them: versions/<version>/, routing/."""
    *versions, routing = build_prompt_configmaps(release)
    for config_map in versions:
        version = json.loads(config_map["data"][PROMPT_KEY])["version"]
        target = root / "versions" / version
        target.mkdir(parents=True)
        for key, value in config_map["data"].items():
            (target / key).write_text(value)
    (root / "routing").mkdir()
    (root / "routing" / ROUTING_KEY).write_text(routing["data"][ROUTING_KEY])
    return root / "versions", root / "routing" / ROUTING_KEY


def test_the_example_release_loads_as_mounted(tmp_path):
    versions, routing = mount(example_release(), tmp_path)
    release = load_release(versions, routing)
    assert set(release.versions) == {"v1", "v2"}
    assert release.routing == Routing("sticky", (Route("v1", 90), Route("v2", 10)), "x-user-id")
    v1 = release.versions["v1"]
    assert v1.parameters == {"temperature": 0.7, "maxTokens": 256, "stop": ["\nQuestion:"]}
    assert v1.render({"product": "Acme", "question": "Why?"}).endswith("Question: Why?\n")


def test_rendering_names_the_missing_or_undeclared_variable():
    assert render("Hi {{ name }}, {{name}}!", {"name": "Ada"}, ("name",)) == "Hi Ada, Ada!"
    with pytest.raises(PromptError, match="missing question"):
        render("{{ product }} {{ question }}", {"product": "x"}, ("product", "question"))
    with pytest.raises(PromptError, match="colour not declared"):
        render("{{ product }}", {"product": "x", "colour": "red"}, ("product",))
    with pytest.raises(PromptError, match=r"variables\.product: expected a string"):
        render("{{ product }}", {"product": {"nested": 1}}, ("product",))


def test_undeclared_versions_expect_the_templates_placeholders():
    version = PromptVersion("v1", "{{ a }} and {{ b }} and {{ a }}")
    assert version.expected == ("a", "b")
    assert version.render({"a": 1, "b": "two"}) == "1 and two and 1"


def test_sticky_routing_is_stable_per_key_and_follows_the_weights():
    routing = Routing("sticky", (Route("v1", 90), Route("v2", 10)), "x-user-id")
    first = {f"user-{i}": pick_version(routing, {"X-User-Id": f"user-{i}"}) for i in range(2000)}
    again = {f"user-{i}": pick_version(routing, {"x-user-id": f"user-{i}"}, random.Random(i)) for i in range(2000)}
    assert first == again  # the header's case and the rng do not matter
    share = Counter(first.values())["v2"] / len(first)
    assert 0.07 < share < 0.13
    assert 0 <= bucket_of("anyone") < BUCKETS


def test_random_routing_uses_the_injected_rng_and_skips_zero_weights():
    routing = Routing("random", (Route("v1", 50), Route("v2", 50)))
    assert [pick_version(routing, {}, random.Random(7)) for _ in range(3)] == \
           [pick_version(routing, {}, random.Random(7)) for _ in range(3)]
    picks = Counter(pick_version(routing, {}, rng) for rng in [random.Random(1)] for _ in range(4000))
    assert 0.45 < picks["v1"] / 4000 < 0.55
    only = Routing("random", (Route("v1", 0), Route("v2", 100)))
    assert {pick_version(only, {}, random.Random(s)) for s in range(50)} == {"v2"}
    sticky_without_header = Routing("sticky", (Route("v1", 100), Route("v2", 0)), "x-user-id")
    assert pick_version(sticky_without_header, {}, random.Random(3)) == "v1"


@pytest.mark.parametrize("document, message", [
    ({"strategy": "roundRobin", "routes": [{"version": "v1", "weight": 100}]}, "strategy: expected one of"),
    ({"routes": []}, "routes: expected a non-empty list"),
    ({"routes": [{"version": "v1", "weight": -1}]}, r"routes\[0\].weight"),
    ({"routes": [{"weight": 100}]}, r"routes\[0\].version"),
    ({"routes": [{"version": "v1", "weight": 0}]}, "add up to 0"),
    ({"strategy": "sticky", "routes": [{"version": "v1", "weight": 100}]}, "stickyKey: required"),
])
def test_bad_routing_is_named(document, message):
    with pytest.raises(PromptError, match=message):
        parse_routing(document, "routing.json")


def test_a_route_to_a_version_that_is_not_mounted_is_an_error(tmp_path):
    versions, routing = mount(example_release(), tmp_path)
    routing.write_text(json.dumps({"strategy": "random", "routes": [{"version": "v3", "weight": 100}]}))
    with pytest.raises(PromptError, match="v3, which are not mounted"):
        load_release(versions, routing)


def test_mounted_prompts_reload_on_change_and_keep_the_last_good_release(tmp_path):
    versions, routing = mount(example_release(), tmp_path)
    mounted = MountedPrompts(versions, routing)
    assert mounted.release().routing.routes[1].weight == 10
    document = json.loads(routing.read_text())
    document["routes"] = [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}]
    routing.write_text(json.dumps(document))
    os.utime(routing, ns=(1, 1))  # a new stamp even within the file system's timestamp resolution
    assert mounted.release().routing.routes[1].weight == 50
    routing.write_text("{not json")
    assert mounted.release().routing.routes[1].weight == 50
    assert "routing.json" in mounted.last_error


def test_mounted_prompts_without_any_good_release_raise(tmp_path):
    (tmp_path / "versions").mkdir()
    with pytest.raises(PromptError, match="no prompt versions"):
        MountedPrompts(tmp_path / "versions", tmp_path / ROUTING_KEY).release()


def test_template_txt_is_the_template_when_present(tmp_path):
    versions, routing = mount(example_release(), tmp_path)
    (versions / "v1" / TEMPLATE_KEY).write_text("Only {{ question }}")
    (versions / "v1" / PROMPT_KEY).write_text(json.dumps({"version": "v1", "template": "ignored {{ question }}",
                                                          "variables": ["question"]}))
    assert load_release(versions, routing).versions["v1"].render({"question": "q"}) == "Only q"


# ----- the v1 request protocol ---------------------------------------------------------------------

def test_requests_are_parsed_per_instance_with_errors_naming_the_field():
    [one] = protocol.parse_request({"instances": [{"prompt": "hi", "parameters": {"maxTokens": 4}}]}, templated=False)
    assert one.prompt == "hi" and one.parameters == {"maxTokens": 4}
    cases = [
        ([], False, "body: expected a JSON object"),
        ({"instances": []}, False, "instances: expected a non-empty list"),
        ({"instances": ["hi"]}, False, r"instances\[0\]: expected an object"),
        ({"instances": [{"prompt": ""}]}, False, r"instances\[0\].prompt: expected a non-empty string"),
        ({"instances": [{"prompt": "x", "temperature": 1}]}, False, "unknown field 'temperature'"),
        ({"instances": [{"prompt": "x", "parameters": {"maxTokens": 0}}]}, False, "maxTokens: expected a positive"),
        ({"instances": [{"prompt": "x", "parameters": {"top": 1}}]}, False, r"parameters.top: unknown parameter"),
        ({"instances": [{"variables": {}}]}, False, "no prompt release is attached"),
        ({"instances": [{"prompt": "x"}]}, True, "send 'variables' instead"),
        ({"instances": [{"prompt": "x"}] * (protocol.MAX_INSTANCES + 1)}, False, "at most"),
    ]
    for body, templated, message in cases:
        with pytest.raises(protocol.RequestError, match=message):
            protocol.parse_request(body, templated)


def test_completion_request_layers_defaults_version_and_request_parameters():
    body = protocol.completion_request("m", "p", {"temperature": 0.7, "maxTokens": 256, "stop": ["\nQ:"]},
                                       {"maxTokens": 8, "topP": 0.9})
    assert body == {"model": "m", "prompt": "p", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9, "stop": ["\nQ:"]}
    assert protocol.completion_request("m", "p") == {"model": "m", "prompt": "p", "max_tokens": 128, "temperature": 1.0}


def test_completion_result_reads_text_and_usage_or_says_what_is_missing():
    text, usage = protocol.completion_result({"choices": [{"text": "ok"}],
                                              "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    assert (text, usage) == ("ok", {"promptTokens": 3, "completionTokens": 1})
    with pytest.raises(ValueError, match="no choices"):
        protocol.completion_result({"choices": []})
