"""Small pieces of the builder: cleaning, filtering, truncation, retry policy, cache, specs."""

from __future__ import annotations

import random

import pytest

from dcar.backbone.tokenizer import token_count
from dcar.captioning import AnswerCache, RetryPolicy, TransientError, load_captioner, truncate_caption
from dcar.captioning.captioners.openai_chat import extract_text, parse_retry_after, parse_spec
from dcar.captioning.questions import compose, fill
from dcar.captioning.retry import Retrier
from dcar.captioning.text import clean_answer, reject_reason
from dcar.captioning.verify import parse_verdict
from dcar.errors import DcarError


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Sure! Here's a description:\n\n**A red rose.**", "A red rose."),
        ("  - A red rose.\n- A red rose.\n", "A red rose."),
        ('"A tall tree."', "A tall tree."),
        ("Certainly. The image shows a cat. The image shows a cat.", "The image shows a cat."),
    ],
)
def test_clean_answer(raw, clean):
    assert clean_answer(raw) == clean


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("..", "empty"),
        ("I'm sorry, but I can't help with that.", "refusal"),
        ("I cannot identify people in images.", "refusal"),
        ("As an AI, I have no eyes.", "refusal"),
        ("petal petal petal petal", "repetitive"),
        ("a" * 30, "repetitive"),
        (" ".join(["the red flower"] * 6), "repetitive"),
        ("A red flower with five petals in a sunny garden.", None),
        ("The bird can't fly because its wing is hurt.", None),  # "can't" alone is not a refusal
    ],
)
def test_reject_reason(text, reason):
    assert reject_reason(text) == reason


def test_truncation_keeps_whole_sentences_and_fits():
    caption = "This is a rose. " + " ".join(f"Sentence {i} has several plain words in it." for i in range(20))
    cut, was_cut = truncate_caption(caption, 77)
    assert was_cut and cut.startswith("This is a rose. Sentence 0") and cut.endswith("in it.")
    assert token_count(cut) <= 77 < token_count(cut + " Sentence 99 has several plain words in it.")
    assert truncate_caption("This is a rose.", 77) == ("This is a rose.", False)
    one_long, _ = truncate_caption("word " * 200, 20)
    assert token_count(one_long) <= 20 and one_long.endswith(".")


def test_compose_prefix_and_fill():
    assert compose(["A red bloom", "In a garden."], "orange_dahlia") == "This is an orange dahlia. A red bloom. In a garden."
    assert compose(["This is an orange dahlia.", "Red."], "orange_dahlia") == "This is an orange dahlia. Red."
    assert compose(["Red."], "rose", prefix=None) == "Red."
    assert fill("{a} {class} ({meta})", "iris", "flower") == "an iris (flower)"
    with pytest.raises(ValueError, match="unknown"):
        fill("{colour}", "iris")


def test_retry_policy_backoff_jitter_and_retry_after():
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=4.0, max_retry_after=60)
    rng = random.Random(0)
    for n, hi in enumerate([1, 2, 4, 4]):
        for _ in range(20):
            assert hi / 2 <= policy.delay(n, rng) <= hi
    assert policy.delay(0, rng, retry_after=30) == 30
    assert policy.delay(0, rng, retry_after=600) == 60
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_retrier_gives_up_after_attempts():
    calls = []

    def flaky():
        calls.append(1)
        raise TransientError("down")

    retrier = Retrier(RetryPolicy(attempts=3), sleep=lambda s: None)
    with pytest.raises(TransientError):
        retrier(flaky)
    assert len(calls) == 3 and retrier.retries == 2


def test_cache_survives_a_cut_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = AnswerCache(path)
    cache.put("a", answer="one")
    cache.put("b", answer="two")
    path.write_text(path.read_text() + '{"id": "c", "ans')
    again = AnswerCache(path)
    assert again.get("a")["answer"] == "one" and again.get("c") is None and again.bad_lines == 1
    again.put("c", answer="three")
    assert AnswerCache(path).get("c")["answer"] == "three"


def test_openai_spec_and_reply_parsing(monkeypatch):
    assert parse_spec("qwen2-vl@http://h:8000/v1/") == ("qwen2-vl", "http://h:8000/v1")
    monkeypatch.setenv("DCAR_OPENAI_BASE_URL", "http://env:1/v1")
    assert parse_spec("llava") == ("llava", "http://env:1/v1")
    assert extract_text(b'{"choices": [{"message": {"content": [{"type": "text", "text": "Hi."}]}}]}') == "Hi."
    with pytest.raises(TransientError, match="malformed"):
        extract_text(b'{"choices": []}')
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 1  # a date in the past: no wait


def test_verdicts():
    assert parse_verdict("Yes, it matches.") == "yes"
    assert parse_verdict("No. The flower is red.") == "no"
    assert parse_verdict("The description is accurate.") == "unclear"


@pytest.mark.parametrize("spec", ["nope", "gpt4", "unknown:x", "hf:", "openai:@http://x"])
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(DcarError):
        load_captioner(spec)
