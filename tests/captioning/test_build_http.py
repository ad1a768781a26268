"""The builder against a real chat-completions server: retries, skips, reports, resumes."""

from __future__ import annotations

import json

import pytest
from chat_server import Reply, image_hash

from dcar.captioning import AnswerCache, BuildOptions, CaptionBuilder, RetryPolicy, Verifier, load_captioner
from dcar.captioning.captioners.base import CaptionerOptions
from dcar.captioning.failures import FatalCaptionerError
from dcar.captioning.questions import DEFAULT_PROMPTS

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


def make_builder(server, tmp_path, sleeps=None, verifier=None, workers=3, timeout=5.0, **options):
    captioner = load_captioner(server.spec(), CaptionerOptions(timeout=timeout))
    sleep = (lambda s: sleeps.append(s)) if sleeps is not None else (lambda s: None)
    opts = BuildOptions(workers=workers, retry=options.pop("retry", FAST), progress=False, **options)
    return CaptionBuilder(captioner, opts, AnswerCache(tmp_path / "cache.jsonl"), verifier=verifier, sleep=sleep)


def test_captions_compose_prefix_and_both_questions(chat_server, flower_entries, tmp_path):
    chat_server.behaviour = lambda req, n: Reply(text="It is bright." if "setting" in req.question else "A red bloom.")
    out, report = make_builder(chat_server, tmp_path).build(flower_entries)
    assert [e.key for e in out] == [e.key for e in flower_entries]  # input order kept
    assert out[0].caption == "This is a tiger lily. A red bloom. It is bright."
    assert out[1].caption.startswith("This is a sunflower. ")
    assert len(chat_server.requests) == 2 * len(flower_entries)
    assert {r.question for r in chat_server.requests} == set(DEFAULT_PROMPTS)
    assert report.captioned == 8 and report.answers_new == 16 and report.failed == 0


def test_server_errors_are_retried_with_backoff(chat_server, flower_entries, tmp_path):
    chat_server.behaviour = lambda req, n: Reply(status=500, text=None, body=b"oops") if n == 0 else Reply()
    sleeps: list[float] = []
    out, report = make_builder(chat_server, tmp_path, sleeps=sleeps).build(flower_entries)
    assert report.captioned == 8 and report.failed == 0
    assert report.retries == 16 and len(sleeps) == 16
    assert len(chat_server.requests) == 32


def test_retry_after_is_honoured(chat_server, flower_entries, tmp_path):
    chat_server.behaviour = lambda req, n: Reply(status=429, headers={"Retry-After": "7"}) if n == 0 else Reply()
    sleeps: list[float] = []
    _, report = make_builder(chat_server, tmp_path, sleeps=sleeps).build(flower_entries[:2])
    assert report.captioned == 2
    assert sleeps and all(s >= 7 for s in sleeps)


def test_persistent_failure_skips_that_image_only(chat_server, flower_entries, tmp_path):
    bad = image_hash(flower_entries[3].image)
    chat_server.behaviour = lambda req, n: Reply(status=503) if req.image == bad else Reply()
    out, report = make_builder(chat_server, tmp_path).build(flower_entries)
    assert report.failed == 1 and report.captioned == 7
    assert [k for k, _ in report.skipped] == [flower_entries[3].key]
    assert "HTTP 503" in report.skipped[0][1]
    bad_requests = [r for r in chat_server.requests if r.image == bad]
    assert len(bad_requests) == FAST.attempts  # gave up after the retries, on the first question


def test_malformed_json_and_timeouts_are_skipped_not_fatal(chat_server, flower_entries, tmp_path):
    garbled, slow = image_hash(flower_entries[0].image), image_hash(flower_entries[1].image)

    def behaviour(req, n):
        if req.image == garbled:
            return Reply(body=b'{"choices": [{"mess')
        if req.image == slow:
            return Reply(delay=1.0)
        return Reply()

    chat_server.behaviour = behaviour
    out, report = make_builder(chat_server, tmp_path, timeout=0.3).build(flower_entries)
    assert report.failed == 2 and report.captioned == 6
    reasons = dict(report.skipped)
    assert "malformed" in reasons[flower_entries[0].key]
    assert "timed out" in reasons[flower_entries[1].key].lower()


def test_refusals_and_loops_are_filtered(chat_server, flower_entries, tmp_path):
    refuse, loop = image_hash(flower_entries[0].image), image_hash(flower_entries[1].image)

    def behaviour(req, n):
        if req.image == refuse:
            return Reply(text="I'm sorry, but I cannot help with identifying this image.")
        if req.image == loop:
            return Reply(text="petal " * 30 if "appearance" in req.question else "It grows in a garden.")
        return Reply(text="Sure! Here is a description: **A small flower.**")

    chat_server.behaviour = behaviour
    out, report = make_builder(chat_server, tmp_path).build(flower_entries)
    captions = {e.key: e.caption for e in out}
    assert flower_entries[0].key not in captions and report.filtered == 1
    assert captions[flower_entries[1].key] == "This is a sunflower. It grows in a garden."  # loop dropped
    assert captions[flower_entries[2].key] == "This is a tiger lily. A small flower."  # chatter cleaned
    assert report.dropped_answers["refusal"] == 2 and report.dropped_answers["repetitive"] == 1


def test_long_answers_are_cut_at_a_sentence_to_77_tokens(chat_server, flower_entries, tmp_path):
    from dcar.backbone.tokenizer import token_count

    long = (
        "The flower has bright yellow petals with thin red veins. Its centre is a dark brown disc "
        "covered in tiny florets. Green sepals curl beneath the head. A slender stem rises from "
        "broad, hairy leaves. Morning dew beads on the outer petals. Behind it, a wooden fence and "
        "a blurred row of trees fill the frame. Soft daylight falls from the left."
    )
    chat_server.behaviour = lambda req, n: Reply(text=long)
    out, report = make_builder(chat_server, tmp_path).build(flower_entries[:1])
    caption = out[0].caption
    assert report.truncated == 1
    assert token_count(caption) <= 77 and caption.endswith(".")
    assert caption.startswith("This is a tiger lily. The flower has bright yellow petals")
    kept = caption.count(".")
    next_sentence = long.split(". ")[kept - 1]  # the first one left out
    assert token_count(caption + " " + next_sentence + ".") > 77


def test_auth_failure_stops_the_run(chat_server, flower_entries, tmp_path):
    chat_server.behaviour = lambda req, n: Reply(status=401, body=b'{"error": "bad key"}')
    with pytest.raises(FatalCaptionerError, match="HTTP 401"):
        make_builder(chat_server, tmp_path).build(flower_entries)
    assert len(chat_server.requests) <= 3  # one per worker at most; no retries of a hopeless call


def test_server_down_stops_after_consecutive_failures(chat_server, flower_entries, tmp_path):
    from dcar.errors import DcarError

    chat_server.behaviour = lambda req, n: Reply(status=502)
    with pytest.raises(DcarError, match="3 images in a row failed"):
        make_builder(chat_server, tmp_path, workers=1, max_consecutive_failures=3).build(flower_entries)
    assert len(chat_server.requests) == 3 * FAST.attempts


def test_killed_run_resumes_without_asking_again(chat_server, flower_entries, tmp_path):
    """The first run dies after 5 answers (the server starts refusing the key); the second run
    asks only for what was not finished, and the cache lost nothing."""
    served = []

    def dying(req, n):
        if len(served) >= 5:
            return Reply(status=401)
        served.append(req)
        return Reply(text=f"Answer {len(served)}.")

    chat_server.behaviour = dying
    with pytest.raises(FatalCaptionerError):
        make_builder(chat_server, tmp_path, workers=1).build(flower_entries)
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 5  # every answer the server gave is on disk
    first_run = len(chat_server.requests)

    chat_server.behaviour = lambda req, n: Reply(text="Fresh answer.")
    out, report = make_builder(chat_server, tmp_path, workers=2).build(flower_entries)
    second_run = chat_server.requests[first_run:]
    assert len(second_run) == 2 * len(flower_entries) - 5
    finished = {(r.image, r.question) for r in served}
    assert not finished & {(r.image, r.question) for r in second_run}
    assert report.answers_cached == 5 and report.captioned == 8
    assert "Answer 1." in out[0].caption


def test_cut_short_cache_line_is_ignored_and_the_answer_asked_again(chat_server, flower_entries, tmp_path):
    make_builder(chat_server, tmp_path).build(flower_entries[:2])
    cache = tmp_path / "cache.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    before = len(chat_server.requests)
    _, report = make_builder(chat_server, tmp_path).build(flower_entries[:2])
    assert report.cache_bad_lines == 1 and report.answers_cached == 3
    assert len(chat_server.requests) - before == 1
    for line in cache.read_text().splitlines()[-1:]:
        json.loads(line)  # the new record starts on its own line


def test_changed_prompt_is_not_served_from_cache(chat_server, flower_entries, tmp_path):
    make_builder(chat_server, tmp_path).build(flower_entries[:2])
    before = len(chat_server.requests)
    make_builder(chat_server, tmp_path, prompts=("Describe the flower.",)).build(flower_entries[:2])
    assert len(chat_server.requests) - before == 2


def test_prompts_may_name_the_class_and_bad_prompts_fail_early(chat_server, flower_entries, tmp_path):
    from dcar.errors import DcarError

    builder = make_builder(chat_server, tmp_path, prompts=("This is {a} {class}. Describe its petals.",))
    out, _ = builder.build(flower_entries[:2])
    assert sorted(r.question for r in chat_server.requests) == [
        "This is a sunflower. Describe its petals.", "This is a tiger lily. Describe its petals."
    ]
    with pytest.raises(DcarError, match="prompt"):
        make_builder(chat_server, tmp_path, prompts=("Describe the {colour}.",)).build(flower_entries[:1])
    assert len(chat_server.requests) == 2


def test_verifier_rejects_and_is_cached(chat_server, flower_entries, tmp_path):
    rejected = image_hash(flower_entries[2].image)

    def behaviour(req, n):
        if req.question.startswith("Here is a description"):
            assert "could the main subject be a" in req.question and '"This is a' in req.question
            return Reply(text="No." if req.image == rejected else "Yes, it matches.")
        return Reply(text="A flower.")

    chat_server.behaviour = behaviour
    verifier = Verifier(load_captioner(chat_server.spec("judge")))
    out, report = make_builder(chat_server, tmp_path, verifier=verifier).build(flower_entries[:4])
    assert report.rejected == 1 and report.captioned == 3
    assert sum(r.model == "judge" for r in chat_server.requests) == 4
    before = len(chat_server.requests)
    make_builder(chat_server, tmp_path, verifier=verifier).build(flower_entries[:4])
    assert len(chat_server.requests) == before  # answers and verdicts all cached


def test_api_key_from_the_named_environment_variable(chat_server, flower_entries, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_VLM_KEY", "sk-test")
    captioner = load_captioner(chat_server.spec(), CaptionerOptions(timeout=5.0, api_key_env="MY_VLM_KEY"))
    CaptionBuilder(captioner, BuildOptions(workers=1, retry=FAST, progress=False), AnswerCache(tmp_path / "c.jsonl")).build(flower_entries[:1])
    assert chat_server.requests[0].authorization == "Bearer sk-test"
