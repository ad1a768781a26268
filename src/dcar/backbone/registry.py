"""Model spec strings -> frozen backbones.

A spec is ``PREFIX:REST``; each prefix maps to one loader, so a new model source is one entry in
:data:`LOADERS` (or a :func:`register_loader` call). Every failure to resolve a spec is a
:class:`~dcar.errors.ModelSpecError` with a one-line message naming the spec.

Specs:
- ``open_clip:ARCH``: random init (smoke tests, speed).
- ``open_clip:ARCH:TAG``: a pretrained tag open_clip knows (downloads on first use).
- ``open_clip:ARCH:FILE``: a local .safetensors or torch state dict (read with weights_only=True).
- ``open_clip:local-dir:DIR``: ``open_clip_config.json`` + ``open_clip_model.safetensors`` in DIR.
- ``open_clip:hf-hub:ORG/REPO``: open_clip's own hub schema (needs the network).
- ``hf:ID_OR_DIR``: a transformers ``CLIPModel`` (``save_pretrained`` folder or hub id).
- ``builtin:NAME``: a local-dir model shipped inside the package under ``dcar/builtin/NAME``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

import torch

from dcar.backbone.base import Backbone
from dcar.errors import ModelSpecError

Loader = Callable[[str, str, torch.device], Backbone]
"""(rest of the spec after ``PREFIX:``, the full spec, device) -> backbone, not yet frozen."""

_OPEN_CLIP_SCHEMAS = ("local-dir", "hf-hub")
_LOCAL_DIR_CONFIG = "open_clip_config.json"


def one_line(err: BaseException | str, limit: int = 240) -> str:
    """A library error squeezed onto one line (whitespace collapsed, cut at ``limit`` chars): state
    dict mismatches span many lines and the first one alone says nothing."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(spec: str, why: str) -> ModelSpecError:
    return ModelSpecError(f"model spec {spec!r}: {why}")


# --------------------------------------------------------------------------- open_clip
def _warn_quickgelu(spec: str, arch: str, pretrained: str | None) -> None:
    """OpenAI weights were trained with QuickGELU; plain ``ViT-B-32`` configs use nn.GELU and give
    silently worse features. open_clip only warns for tags, never for files: warn for both."""
    import open_clip

    if not pretrained or arch.endswith("-quickgelu"):
        return
    if (open_clip.get_model_config(arch) or {}).get("quick_gelu", False):
        return
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg:
        if not tag_cfg.get("quick_gelu", False):
            return
        why = f"tag {pretrained!r} was trained with QuickGELU"
    elif "openai" in Path(pretrained).name.lower():
        why = "the file name says OpenAI CLIP weights, which were trained with QuickGELU"
    else:
        return
    fixed = f"{arch}-quickgelu"
    hint = f"use 'open_clip:{fixed}:{pretrained}'" if fixed in open_clip.list_models() else "use a -quickgelu architecture"
    warnings.warn(
        f"{spec}: {why} but {arch} uses GELU, which silently degrades features; {hint}",
        UserWarning,
        stacklevel=4,
    )


def _create_open_clip(spec: str, name: str, pretrained: str | None, device: torch.device):
    import open_clip

    try:
        # weights_only=True: checkpoints are never unpickled beyond plain tensors.
        return open_clip.create_model(
            name, pretrained=pretrained, precision="fp32", device=device, weights_only=True
        )
    except Exception as err:  # library boundary: any failure becomes one clear line
        if "TorchScript" in str(err):
            raise _fail(spec, "TorchScript (OpenAI JIT) archives cannot be loaded safely; convert "
                        "it to a state dict or .safetensors file first") from err
        raise _fail(spec, one_line(err)) from err


def load_open_clip(rest: str, spec: str, device: torch.device) -> Backbone:
    import open_clip

    from dcar.backbone.open_clip_backbone import OpenClipBackbone

    arch, _, pretrained = rest.partition(":")
    if not arch:
        raise _fail(spec, "expected open_clip:ARCH[:TAG_OR_FILE] or open_clip:local-dir:DIR")
    if arch in _OPEN_CLIP_SCHEMAS:
        if not pretrained:
            raise _fail(spec, f"{arch}: needs a location after the colon")
        if arch == "local-dir" and not (Path(pretrained) / _LOCAL_DIR_CONFIG).is_file():
            raise _fail(spec, f"no {_LOCAL_DIR_CONFIG} in folder {pretrained}")
        model = _create_open_clip(spec, rest, None, device)
        return OpenClipBackbone(model, spec)

    arch = arch.replace("/", "-")  # open_clip accepts ViT-B/32 for ViT-B-32
    if arch not in open_clip.list_models():
        raise _fail(spec, f"unknown open_clip architecture {arch!r} (see open_clip.list_models())")
    if rest.endswith(":") and not pretrained:
        raise _fail(spec, "empty pretrained tag or file after the architecture")
    if pretrained:
        is_tag = bool(open_clip.get_pretrained_cfg(arch, pretrained))
        if not is_tag and not Path(pretrained).is_file():
            tags = open_clip.list_pretrained_tags_by_model(arch)
            raise _fail(spec, f"{pretrained!r} is neither an existing file nor a pretrained tag of {arch} "
                        f"(tags: {', '.join(tags) or 'none'})")
        _warn_quickgelu(spec, arch, pretrained)
    model = _create_open_clip(spec, arch, pretrained or None, device)
    return OpenClipBackbone(model, spec)


# --------------------------------------------------------------------------- transformers
def _read_json(path: Path, spec: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise _fail(spec, f"cannot read {path}: {one_line(err)}") from err


def load_hf(rest: str, spec: str, device: torch.device) -> Backbone:
    try:
        from transformers import CLIPModel
    except ImportError as err:
        raise _fail(spec, "hf: models need transformers 5.x (pip install 'dcar[hf]')") from err
    from dcar.backbone.hf_backbone import HFClipBackbone

    folder = Path(rest).expanduser()
    preprocess: dict = {}
    if folder.is_dir():
        config = _read_json(folder / "config.json", spec) if (folder / "config.json").is_file() else None
        if config is None:
            raise _fail(spec, f"no config.json in folder {folder}")
        if config.get("model_type") != "clip":
            raise _fail(spec, f"{folder} holds a {config.get('model_type')!r} model, not a CLIP model")
        if (folder / "preprocessor_config.json").is_file():
            preprocess = _read_json(folder / "preprocessor_config.json", spec)
    elif rest.startswith((".", "/", "~")) or folder.exists():
        raise _fail(spec, f"folder {folder} not found")
    try:
        model = CLIPModel.from_pretrained(str(folder) if folder.is_dir() else rest, dtype=torch.float32)
    except Exception as err:  # library boundary: any failure becomes one clear line
        raise _fail(spec, one_line(err)) from err
    return HFClipBackbone(model.to(device), spec, preprocess)


# --------------------------------------------------------------------------- builtin
def load_builtin(rest: str, spec: str, device: torch.device) -> Backbone:
    """A model shipped in :mod:`dcar.builtin` (which knows where they live)."""
    from dcar.backbone.open_clip_backbone import OpenClipBackbone
    from dcar.builtin import local_dir_spec

    model = _create_open_clip(spec, local_dir_spec(rest), None, device)
    return OpenClipBackbone(model, spec)


# --------------------------------------------------------------------------- registry
LOADERS: dict[str, Loader] = {
    "open_clip": load_open_clip,
    "hf": load_hf,
    "builtin": load_builtin,
}


def register_loader(prefix: str, loader: Loader) -> None:
    """Make ``PREFIX:...`` specs resolve through ``loader`` (replaces an existing entry)."""
    LOADERS[prefix] = loader


def load_backbone(spec: str, device: str | torch.device = "cpu") -> Backbone:
    """Resolve ``spec`` to a frozen fp32 backbone in eval mode on ``device``; ``backbone.spec``
    records the spec string as given (what checkpoints store)."""
    prefix, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise _fail(spec, f"expected PREFIX:MODEL with PREFIX one of {', '.join(sorted(LOADERS))}, "
                    "e.g. open_clip:ViT-B-32")
    loader = LOADERS.get(prefix)
    if loader is None:
        raise _fail(spec, f"unknown prefix {prefix!r} (known: {', '.join(sorted(LOADERS))})")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise _fail(spec, f"bad device {device!r}: {one_line(err)}") from err
    backbone = loader(rest, spec, device)
    backbone.spec = spec
    return backbone.freeze().eval()
