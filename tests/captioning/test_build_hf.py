"""``hf:`` captioners on tiny random transformers models saved locally (plumbing, not quality)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_vlms import WORDS, save_tiny_blip, save_tiny_llava

from dcar.captioning import BuildOptions, CaptionBuilder, CaptionItem, load_captioner
from dcar.captioning.captioners.base import CaptionerOptions

pytestmark = pytest.mark.slow  # transformers import and model construction: a few seconds each


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_vlms")
    return {"blip": save_tiny_blip(root / "blip"), "llava": save_tiny_llava(root / "llava")}


def test_blip_captions_once_per_image(tiny_models, flower_entries):
    captioner = load_captioner(f"hf:{tiny_models['blip']}", CaptionerOptions(max_new_tokens=6, device="cpu"))
    assert captioner.questions(("appearance?", "setting?")) == ("",)  # no chat template: prompts unused
    item = CaptionItem("k", Path(flower_entries[0].image), "sunflower")
    answer = captioner.answer(item, "")
    words = answer.split()
    assert 1 <= len(words) <= 6 and set(words) <= set(WORDS)
    assert captioner.answer(item, "") == answer  # greedy: the same image gives the same caption


def test_llava_answers_each_question_without_echoing_the_prompt(tiny_models, flower_entries):
    captioner = load_captioner(f"hf:{tiny_models['llava']}", CaptionerOptions(max_new_tokens=5, device="cpu"))
    assert captioner.questions(("appearance?", "setting?")) == ("appearance?", "setting?")
    answer = captioner.answer(CaptionItem("k", Path(flower_entries[0].image), "sunflower"), "describe the flower")
    # only new tokens come back: at most 5 words, and the prompt's "USER:" / question words are not echoed
    assert len(answer.split()) <= 5 and "USER:" not in answer


def test_builder_runs_an_hf_model_with_cache(tiny_models, flower_entries, tmp_path):
    from dcar.captioning import AnswerCache

    captioner = load_captioner(f"hf:{tiny_models['blip']}", CaptionerOptions(max_new_tokens=8, device="cpu"))
    cache = AnswerCache(tmp_path / "c.jsonl")
    out, report = CaptionBuilder(captioner, BuildOptions(progress=False, workers=2), cache).build(flower_entries[:3])
    assert report.answers_new == 3 and report.captioned + report.filtered == 3  # random words may loop
    _, again = CaptionBuilder(captioner, BuildOptions(progress=False), AnswerCache(tmp_path / "c.jsonl")).build(flower_entries[:3])
    assert again.answers_new == 0 and again.answers_cached == 3
