"""``hf:MODEL_DIR``: a local transformers (5.x) captioning or vision-language model.

Two kinds are told apart by the processor:

- chat VLMs (Qwen2-VL, LLaVA, Idefics, ...; the processor has a chat template): every question
  is asked with the image through the chat template, and only the newly generated tokens are kept;
- plain captioners (BLIP, GIT, VisionEncoderDecoder; no chat template): one unconditional caption
  per image, the questions are ignored.

The model loads on first use (so building the CLI or a template run never imports it), from
safetensors where the directory has them, with no remote code. Generation is greedy and serialised
by a lock: one model instance, no benefit from parallel CPU calls.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dcar.captioning.captioners.base import CaptionerOptions, CaptionItem, Captioner, register
from dcar.captioning.failures import FatalCaptionerError, PermanentError
from dcar.captioning.image_payload import open_rgb


@register("hf")
class HFCaptioner(Captioner):
    def __init__(self, spec: str, rest: str, options: CaptionerOptions | None = None) -> None:
        super().__init__(spec)
        options = options or CaptionerOptions()
        if not rest:
            raise FatalCaptionerError("hf: needs a model directory (hf:PATH)")
        self.path = Path(rest).expanduser()
        self.device = options.device
        self.max_new_tokens = options.max_new_tokens
        self._lock = threading.Lock()
        self._loaded: tuple[object, object, bool] | None = None

    def identity(self) -> str:
        return f"hf:{self.path.resolve()}|n={self.max_new_tokens}"

    # -- loading ------------------------------------------------------------------------------
    def _load(self) -> tuple[object, object, bool]:
        if self._loaded is None:
            if not self.path.is_dir():
                raise FatalCaptionerError(f"{self.path}: not a model directory")
            try:
                import torch
                from transformers import (AutoConfig, AutoModelForImageTextToText, AutoProcessor,
                                          VisionEncoderDecoderModel)

                config = AutoConfig.from_pretrained(self.path)
                encoder_decoder = config.model_type == "vision-encoder-decoder"
                cls = VisionEncoderDecoderModel if encoder_decoder else AutoModelForImageTextToText
                model = cls.from_pretrained(self.path).eval()
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                model.to(device)
                processor = AutoProcessor.from_pretrained(self.path)
            except (OSError, ValueError, KeyError, ImportError) as err:
                raise FatalCaptionerError(f"{self.path}: cannot load model ({type(err).__name__}: {err})") from None
            chat = bool(getattr(processor, "chat_template", None))
            self._loaded = (model, processor, chat)
        return self._loaded

    def questions(self, prompts: tuple[str, ...]) -> tuple[str, ...]:
        with self._lock:
            _, _, chat = self._load()
        return prompts if chat else ("",)

    # -- answering ----------------------------------------------------------------------------
    def answer(self, item: CaptionItem, question: str) -> str:
        if item.image is None:
            raise PermanentError(f"{item.key}: no image file")
        image = open_rgb(item.image)
        with self._lock:
            model, processor, chat = self._load()
            return self._generate(model, processor, chat, image, question)

    def _generate(self, model, processor, chat: bool, image, question: str) -> str:
        import torch

        if chat:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(images=[image], text=[prompt], return_tensors="pt")
        else:
            inputs = processor(images=image, return_tensors="pt")
        inputs = inputs.to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        if chat and "input_ids" in inputs and not model.config.is_encoder_decoder:
            out = out[:, inputs["input_ids"].shape[1] :]  # decoder-only: drop the echoed prompt
        decode = getattr(processor, "batch_decode", None) or processor.tokenizer.batch_decode
        return decode(out, skip_special_tokens=True)[0].strip()

    def close(self) -> None:
        self._loaded = None
