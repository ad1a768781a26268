"""Models shipped inside the package, usable as ``builtin:NAME`` model specs.

Each ``dcar/builtin/NAME/`` folder is an open_clip local-dir model (``open_clip_config.json`` with
``model_cfg`` and ``preprocess_cfg``, ``open_clip_model.safetensors``), so it loads with
``open_clip.create_model_and_transforms("local-dir:<folder>")``.

``builtin:synthetic-small`` is a small CLIP (ViT image tower) pretrained on the procedural world
(:mod:`dcar.world`) by ``dcar pretrain --preset synthetic-small``; see docs/world/.
"""

from __future__ import annotations

from pathlib import Path

from dcar.errors import ModelSpecError

BUILTIN_ROOT = Path(__file__).resolve().parent
SYNTHETIC_SMALL = "synthetic-small"
SYNTHETIC_SMALL_SPEC = f"builtin:{SYNTHETIC_SMALL}"
_CONFIG = "open_clip_config.json"


def builtin_names() -> list[str]:
    """Names usable as ``builtin:NAME`` (folders under BUILTIN_ROOT with an open_clip config)."""
    if not BUILTIN_ROOT.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_ROOT.iterdir() if (p / _CONFIG).is_file())


def builtin_dir(name: str) -> Path:
    """The folder of a shipped model."""
    if name not in builtin_names():
        known = ", ".join(builtin_names()) or "none installed"
        raise ModelSpecError(f"builtin:{name}: unknown built-in model (available: {known})")
    return BUILTIN_ROOT / name


def local_dir_spec(name: str) -> str:
    """The open_clip model name that loads a shipped model (``local-dir:/abs/path``)."""
    return f"local-dir:{builtin_dir(name)}"
