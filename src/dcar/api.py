"""The Python API: ``dcar.load(RUN_DIR_OR_SPEC)`` gives an encoder for image and text vectors.

    import dcar
    enc = dcar.load("runs/dcar")                  # a `dcar train` run folder, or a model spec
    img = enc.encode_image(["a.jpg", "b.png"])     # [2, E] float32, rows of unit length
    txt = enc.encode_text(["a red tulip"])         # [1, E]
    scores = img @ txt.T

The vectors are the ones `dcar eval`, `dcar embed` and `dcar index build` compute (same encoder
classes, same preprocessing, same normalisation). A run folder describes itself (``run.json``:
base model spec and a digest of its weights, method and config, dcar version); a run whose base
model spec now loads other weights is refused with one line instead of giving silently wrong vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

import torch
from PIL import Image

from dcar.errors import DcarError

ImageInput = Union[str, Path, Image.Image]


class Encoder:
    """A loaded model (zero-shot or trained) as a CLIP-like dual encoder.

    ``retrieval`` is the underlying :class:`~dcar.evaluation.encoders.RetrievalEncoder` that the
    evaluation and the index pipeline take.
    """

    def __init__(self, retrieval, spec: str, weights: str, run: str | None = None):
        self.retrieval = retrieval
        self.spec = spec  # base model spec
        self.weights = weights  # digest of the base model's weights
        self.run = run  # run folder, None for a plain model spec
        self.method = retrieval.method
        self.preprocess: Callable[[Image.Image], torch.Tensor] = retrieval.image_transform()
        self._dim: int | None = None
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        source = self.run or self.spec
        return f"dcar.Encoder({source!r}, method={self.method!r}, base={self.spec!r}, weights={self.weights})"

    @property
    def dim(self) -> int:
        """Feature dimension (measured once on a one-word text)."""
        if self._dim is None:
            self._dim = int(self.encode_text(["a"]).shape[1])
        return self._dim

    def fingerprint(self) -> str:
        """Changes whenever the vectors may change (keys resumable caches and index builds)."""
        if self._fingerprint is None:  # a digest over the weights: computed once, they are frozen here
            self._fingerprint = self.retrieval.fingerprint()
        return self._fingerprint

    def describe(self) -> dict:
        """What produced a set of vectors, as recorded in an index."""
        return {"spec": self.spec, "weights": self.weights, "method": self.method, "run": self.run,
                "fingerprint": self.fingerprint(), "dim": self.dim}

    @torch.inference_mode()
    def encode_image(self, images: ImageInput | Sequence[ImageInput] | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """PIL images, image paths, or a preprocessed ``[B, 3, H, W]`` tensor -> ``[B, E]`` features.

        A path that cannot be decoded raises :class:`~dcar.data.images.UnreadableImage` (one line
        naming the file); for bulk work with skipping use ``dcar index build``.
        """
        from dcar.data.images import _to_rgb, load_image

        if torch.is_tensor(images):
            pixels = images if images.dim() == 4 else images.unsqueeze(0)
            return self._finish(self.retrieval.encode_images(pixels))
        items = [images] if isinstance(images, (str, Path, Image.Image)) else list(images)
        out = []
        for start in range(0, len(items), batch_size):
            # Paths through the pipeline's decoder; PIL images through its colour conversion
            # (alpha on white, 16-bit scaled), so both give what `dcar index build` stores.
            batch = [_to_rgb(im) if isinstance(im, Image.Image) else load_image(im) for im in items[start : start + batch_size]]
            pixels = torch.stack([self.preprocess(im) for im in batch])
            out.append(self._finish(self.retrieval.encode_images(pixels)))
        return torch.cat(out) if out else torch.zeros((0, 0))

    @torch.inference_mode()
    def encode_text(self, texts: str | Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Strings -> ``[N, E]`` features."""
        from dcar.evaluation.embed import embed_texts

        items = [texts] if isinstance(texts, str) else list(texts)
        return torch.from_numpy(embed_texts(self.retrieval, items, batch_size, progress=False))

    @staticmethod
    def _finish(features: torch.Tensor) -> torch.Tensor:
        # The same float32 re-normalisation the embedding pipeline applies.
        from dcar.evaluation.embed import _normalised

        return torch.from_numpy(_normalised(features))


def load(source: str | Path, device: str | None = None) -> Encoder:
    """A `dcar train` run folder (trained prompts on their base model) or a model spec.

    Raises :class:`~dcar.errors.DcarError` (one line) when the folder is not a run, its files are
    missing, or its base model now loads other weights than it was trained on.
    """
    from dcar.backbone import load_backbone
    from dcar.evaluation.encoders import ZeroShotEncoder, weights_digest

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = Path(source)
    if path.is_dir() and (path / "run.json").is_file():
        return _load_run(path, device)
    if path.is_dir():
        raise DcarError(f"{path}: not a run folder (no run.json); give a `dcar train` output or a model spec")
    backbone = load_backbone(str(source), device=device)
    return Encoder(ZeroShotEncoder(backbone), str(source), weights_digest(backbone))


def _load_run(run_dir: Path, device: str) -> Encoder:
    """The run's method as `dcar eval --checkpoint` loads it (which also refuses other base weights)."""
    from dcar.evaluation.encoders import weights_digest
    from dcar.methods.encoder import MethodEncoder
    from dcar.checkpoint import load_method, read_run

    run = read_run(run_dir)
    method = load_method(run_dir, device=device)
    digest = run.get("backbone_weights") or weights_digest(method.backbone)  # older runs recorded none
    return Encoder(MethodEncoder(method), run["backbone"], digest, run=str(run_dir))
