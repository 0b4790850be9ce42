"""A prompt version can carry chat messages: validated with its variables, written into the version's ConfigMap,
and rendered by the runtime for the chat endpoint (the template, as one user message, when it has none)."""

from __future__ import annotations

import json

import pytest

from llmops_operator.api.v1alpha1 import PromptRelease
from llmops_operator.builders.prompts import PROMPT_KEY, build_prompt_configmaps
from llmops_operator.core.contract import InvalidSpec, parse
from llmops_operator.servers.prompt_routing import PromptError, parse_version

MESSAGES = [{"role": "system", "content": "You answer questions about {{ product }}."},
            {"role": "user", "content": "{{ question }}"}]


def release(**fields) -> PromptRelease:
    version = {"name": "v1", "template": "About {{ product }}: {{ question }}", **fields}
    return parse(PromptRelease, {"apiVersion": "llmops.dev/v1alpha1", "kind": "PromptRelease",
                                 "metadata": {"name": "chat", "namespace": "ml"},
                                 "spec": {"versions": [version], "rollout": {"stable": "v1"}}})


def test_messages_travel_to_the_runtime_and_render_with_the_variables():
    version_map, _ = build_prompt_configmaps(release(messages=MESSAGES, variables=["product", "question"]))
    document = json.loads(version_map["data"][PROMPT_KEY])
    assert document["messages"] == MESSAGES
    served = parse_version(document, "prompt.json")
    assert served.render_messages({"product": "Acme", "question": "Hi?"}) == [
        ("system", "You answer questions about Acme."), ("user", "Hi?")]
    with pytest.raises(PromptError, match="missing question"):
        served.render_messages({"product": "Acme"})


def test_without_messages_the_template_is_one_user_message():
    _, = [json.loads(c["data"][PROMPT_KEY]) for c in build_prompt_configmaps(release())[:1]]
    assert "messages" not in _
    assert parse_version(_, "prompt.json").render_messages({"product": "A", "question": "B"}) == [
        ("user", "About A: B")]


@pytest.mark.parametrize("fields, message", [
    ({"messages": [{"role": "user", "content": "{{ other }}"}], "variables": ["product", "question"]},
     "the template uses ['other'], which are not in variables"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"messages": []}, "messages"),
])
def test_bad_messages_are_refused_naming_the_field(fields, message):
    with pytest.raises(InvalidSpec, match=message.replace("[", r"\[").replace("]", r"\]")):
        release(**fields)


def test_a_mounted_version_with_malformed_messages_is_refused():
    with pytest.raises(PromptError, match="messages"):
        parse_version({"version": "v1", "template": "x", "messages": [{"role": "robot", "content": "x"}]}, "p.json")
