"""The LLM source's failure modes, with the real `openai` client against a local Chat Completions server.

A good reply, parsing, validation and the cache's rerun-costs-nothing are shown in nbs/05_prompting.ipynb;
here: malformed replies, 429 then success, 500 forever (cache intact, the run resumes), timeouts, the API key,
the environment, and `datasetdm prompts --llm`.
"""
import json
import logging
import re
import time

import pytest

from datasetdm_nb.cli import main
from datasetdm_nb.prompting import LLM, LLMError, ReplyCache, get_spec, llm_prompts, read_prompts
from datasetdm_nb.testing import ChatServer, ServerReply

KEY = "sk-test-NEVER-LEAK-1234567890"
MSG = [{"role": "user", "content": "Please provide 3 descriptions."}]


def good(request, i=0):
    "A numbered reply of valid VOC sentences that mention the class the instruction asks for (default: a cat)."
    asked = re.search(r"includes an? (.+?)\. These", request["messages"][-1]["content"])
    cls = asked[1] if asked else "cat"
    return "\n".join(f"{j + 1}. A photo of a {cls} number {request.get('seed')}-{j} resting calmly in a sunny garden "
                     f"beside a low stone wall in warm evening light." for j in range(5))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATASETDM_LLM_MODEL"): monkeypatch.delenv(k, raising=False)


def one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and KEY not in msg
    return msg


@pytest.mark.parametrize("reply", [ServerReply(body="<html>502 Bad Gateway</html>"), ServerReply(body='{"id": 1}'),
                                   ServerReply(body='{"choices": []}'), ServerReply(content=None)])
def test_malformed_reply_is_an_error_and_not_cached(tmp_path, reply):
    with ChatServer(lambda r, i: reply) as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, cache=tmp_path / "c.jsonl", timeout=2, max_retries=0)
        with pytest.raises(LLMError) as err: llm.complete(MSG)
    assert "malformed reply" in one_line(err)
    assert len(ReplyCache(tmp_path / "c.jsonl")) == 0


def test_reply_without_usable_lines_stops_within_the_request_budget(tmp_path):
    with ChatServer(lambda r, i: "I'm sorry, I cannot help with that.\nAs an AI model:") as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, timeout=2, max_retries=0)
        with pytest.raises(LLMError) as err: llm_prompts("voc", 5, llm, max_requests=3)
        assert len(s.requests) == 3
    assert one_line(err) == "only 0 of 5 valid prompts after 3 requests to gpt-4"


def test_429_then_success(tmp_path):
    def respond(r, i):
        return ServerReply(status=429, body='{"error": {"message": "Rate limit reached"}}') if i < 2 else good(r)
    with ChatServer(respond) as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, cache=tmp_path / "c.jsonl", timeout=2, max_retries=3)
        t = time.perf_counter()
        text = llm.complete(MSG)
        dt = time.perf_counter() - t
        assert len(s.requests) == 3 and llm.sent == 1
    assert text == good(s.requests[-1])
    assert 0.5 < dt < 5, f"the client backs off (0.5 s, then 1 s, less jitter) before retrying; took {dt:.2f} s"
    assert len(ReplyCache(tmp_path / "c.jsonl")) == 1


def test_429_honours_retry_after(tmp_path):
    def respond(r, i):
        return ServerReply(status=429, headers={"retry-after-ms": "20"}, body="{}") if i == 0 else good(r)
    with ChatServer(respond) as s:
        t = time.perf_counter()
        LLM(base_url=s.base_url, api_key=KEY, timeout=2, max_retries=1).complete(MSG)
        assert time.perf_counter() - t < 0.4 and len(s.requests) == 2


def test_500_forever_keeps_the_cache_and_the_run_resumes(tmp_path):
    cache = tmp_path / "c.jsonl"
    spec = get_spec("voc")   # 20 VOC prompts in batches of 5: 4 requests
    with ChatServer(lambda r, i: good(r) if i < 2 else ServerReply(status=500, body='{"error": {"message": "boom"}}')) as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, cache=cache, timeout=2, max_retries=2)
        with pytest.raises(LLMError) as err: llm_prompts(spec, 20, llm, seed=7)
        assert len(s.requests) == 2 + 3            # two good batches, then the third batch tried 3 times
    assert re.fullmatch(r"LLM server http://127\.0\.0\.1:\d+/v1 answered HTTP 500 \(3 attempts\): .*boom.*", one_line(err))
    lines = cache.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(l)["reply"] for l in lines) and KEY not in cache.read_text()

    with ChatServer(good) as s:                    # the server is back: only the missing batches are sent
        resumed = llm_prompts(spec, 20, LLM(base_url=s.base_url, api_key=KEY, cache=cache, timeout=2), seed=7)
        assert len(s.requests) == 2
    with ChatServer(good) as s:                    # identical to a run that never failed
        fresh = llm_prompts(spec, 20, LLM(base_url=s.base_url, api_key=KEY, cache=tmp_path / "f.jsonl"), seed=7)
    assert resumed == fresh and len(resumed) == 20


def test_timeout_is_retried_then_reported(tmp_path):
    slow_once = lambda r, i: ServerReply(content=good(r), delay=1.5 if i == 0 else 0)
    with ChatServer(slow_once) as s:
        text = LLM(base_url=s.base_url, api_key=KEY, timeout=0.3, max_retries=1).complete(MSG)
        assert text == good(s.requests[-1]) and len(s.requests) == 2

    with ChatServer(lambda r, i: ServerReply(content=good(r), delay=3)) as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, cache=tmp_path / "c.jsonl", timeout=0.3, max_retries=1)
        t = time.perf_counter()
        with pytest.raises(LLMError) as err: llm.complete(MSG)
        dt = time.perf_counter() - t
    assert re.fullmatch(r"LLM server \S+ timed out \(0\.3 s per request, 2 attempts\)", one_line(err))
    assert dt < 2.5 and not (tmp_path / "c.jsonl").exists()


def test_missing_key(tmp_path):
    with pytest.raises(LLMError) as err: LLM().complete(MSG)       # OpenAI itself needs a key
    assert one_line(err).startswith("no API key: set OPENAI_API_KEY")
    with ChatServer(good) as s:                                      # a local server gets the placeholder
        text = LLM(base_url=s.base_url, cache=tmp_path / "c.jsonl").complete(MSG)
        assert s.headers[0]["authorization"] == "Bearer EMPTY"
    assert LLM(cache=tmp_path / "c.jsonl").complete(MSG) == text    # served from the cache: no key, no network


def test_key_is_never_logged_or_written(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with ChatServer(lambda r, i: good(r) if i == 0 else ServerReply(status=401, body='{"error": {"message": "bad key"}}')) as s:
        llm = LLM(base_url=s.base_url, api_key=KEY, cache=tmp_path / "c.jsonl", timeout=2, max_retries=0)
        llm.complete(MSG)
        with pytest.raises(LLMError) as err: llm.complete(MSG + [{"role": "user", "content": "again"}])
        assert s.headers[0]["authorization"] == f"Bearer {KEY}"    # it did reach the server
    assert one_line(err).endswith("rejected the API key (HTTP 401)")
    out = capsys.readouterr()
    assert caplog.text and KEY not in caplog.text and KEY not in out.out + out.err
    assert KEY not in (tmp_path / "c.jsonl").read_text() and KEY not in repr(llm)


def test_environment_chooses_server_model_and_key(tmp_path, monkeypatch):
    with ChatServer(good) as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("DATASETDM_LLM_MODEL", "llama-3-8b-instruct")
        LLM().complete(MSG)
        assert s.requests[0]["model"] == "llama-3-8b-instruct" and s.headers[0]["authorization"] == f"Bearer {KEY}"
        assert LLM(model="qwen2").model == "qwen2"


def test_datasetdm_prompts_with_llm(tmp_path, monkeypatch):
    "`datasetdm prompts` (in-process): --base-url implies --llm, and the replies are cached beside --out."
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "prompts.jsonl"
    args = ["prompts", "--dataset", "voc", "--n", "20", "--seed", "1", "--out", str(out)]
    with ChatServer(good) as s:
        assert main([*args, "--llm", "--base-url", s.base_url]) == 0
        sent = len(s.requests)
        first = read_prompts(out)
        assert main([*args, "--base-url", s.base_url]) == 0                 # --base-url implies --llm
        assert len(s.requests) == sent                                        # all from the cache
    assert read_prompts(out) == first and len(first) == 20
    assert sorted({r["source"] for r in first}) == ["class", "llm"] and sum(r["source"] == "llm" for r in first) == 14
    assert (tmp_path / "prompts.llm-cache.jsonl").exists()
