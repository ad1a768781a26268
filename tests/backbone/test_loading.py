"""Spec strings resolve to frozen backbones whose features equal the saved model's; bad specs
give one-line ModelSpecErrors naming the spec."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from backbone_helpers import CAPTIONS, images_for, make_open_clip
from safetensors.torch import save_file

from dcar import builtin
from dcar.backbone import load_backbone, registry
from dcar.backbone.base import Backbone
from dcar.errors import ModelSpecError

ARCH = "dcar-test-tiny"


def _same_features(backbone: Backbone, model: torch.nn.Module, image_size: int = 32) -> None:
    ids = backbone.tokenize(CAPTIONS)
    images = images_for(image_size)
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_text(ids), model.encode_text(ids), rtol=0, atol=1e-6)
        torch.testing.assert_close(backbone.encode_image(images), model.encode_image(images), rtol=0, atol=1e-6)


def _assert_frozen(backbone: Backbone) -> None:
    assert all(not p.requires_grad for p in backbone.parameters())
    assert not any(m.training for m in backbone.modules())
    assert all(p.dtype == torch.float32 for p in backbone.parameters())


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def test_random_init_arch_is_frozen_eval_fp32():
    backbone = load_backbone(f"open_clip:{ARCH}")
    _assert_frozen(backbone)
    assert backbone.spec == f"open_clip:{ARCH}"
    assert backbone.info.text_width == 64 and backbone.info.vision_width == 64
    assert backbone.info.image_size == 32 and backbone.info.embed_dim == 32
    backbone.train()  # a method putting its modules in training mode must not un-freeze dropout
    assert not any(m.training for m in backbone.modules())


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_open_clip_arch_with_checkpoint_file(tmp_path, suffix):
    model = make_open_clip(ARCH, seed=7)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        save_file(_state_dict(model), str(path))
    else:
        torch.save(model.state_dict(), path)
    backbone = load_backbone(f"open_clip:{ARCH}:{path}")
    _assert_frozen(backbone)
    _same_features(backbone, model)
    # and not just a fresh random init of the same architecture
    other = make_open_clip(ARCH, seed=8)
    ids = backbone.tokenize(CAPTIONS[:1])
    with torch.no_grad():
        assert not torch.allclose(backbone.encode_text(ids), other.encode_text(ids))


def _write_local_dir(folder: Path, model: torch.nn.Module, cfg: dict) -> Path:
    folder.mkdir(parents=True)
    config = {"model_cfg": cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    save_file(_state_dict(model), str(folder / "open_clip_model.safetensors"))
    return folder


def test_open_clip_local_dir(tmp_path, tiny_open_clip_cfg):
    model = make_open_clip(ARCH, seed=3)
    folder = _write_local_dir(tmp_path / "tiny-dir", model, tiny_open_clip_cfg)
    backbone = load_backbone(f"open_clip:local-dir:{folder}")
    _assert_frozen(backbone)
    _same_features(backbone, model)
    # the folder's preprocess config is what image_transform uses
    normalize = backbone.image_transform().transforms[-1]
    assert list(normalize.mean) == [0.5, 0.5, 0.5] and list(normalize.std) == [0.25, 0.25, 0.25]


def test_builtin_resolves_inside_package_root(tmp_path, monkeypatch, tiny_open_clip_cfg):
    model = make_open_clip(ARCH, seed=4)
    _write_local_dir(tmp_path / "builtin" / "tiny-model", model, tiny_open_clip_cfg)
    (tmp_path / "builtin" / "not-a-model").mkdir()
    monkeypatch.setattr(builtin, "BUILTIN_ROOT", tmp_path / "builtin")
    assert builtin.builtin_names() == ["tiny-model"]
    backbone = load_backbone("builtin:tiny-model")
    assert backbone.spec == "builtin:tiny-model"
    _same_features(backbone, model)
    with pytest.raises(ModelSpecError, match=r"builtin:nope.*available: tiny-model"):
        load_backbone("builtin:nope")


def test_default_builtin_root_is_inside_the_package():
    import dcar

    assert builtin.BUILTIN_ROOT == Path(dcar.__file__).resolve().parent / "builtin"
    assert load_backbone(builtin.SYNTHETIC_SMALL_SPEC).spec == "builtin:synthetic-small"


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    pickled = tmp_path / "pickled.pt"
    with open(pickled, "wb") as f:
        pickle.dump({"visual.proj": _Evil()}, f, protocol=2)
    wrong_shape = tmp_path / "wide.safetensors"
    save_file(_state_dict(make_open_clip("dcar-test-wide")), str(wrong_shape))
    return {"garbage": garbage, "pickled": pickled, "wrong_shape": wrong_shape}


def test_bad_specs_raise_one_line_model_spec_error(tmp_path, capsys):
    files = _bad_files(tmp_path)
    bad = [
        "",
        "ViT-B-32",
        "nosuchprefix:ViT-B-32",
        "open_clip:",
        "open_clip:NoSuchArch-99",
        f"open_clip:{ARCH}:",
        f"open_clip:{ARCH}:{tmp_path / 'missing.safetensors'}",
        f"open_clip:{ARCH}:not-a-tag",
        f"open_clip:{ARCH}:{files['garbage']}",
        f"open_clip:{ARCH}:{files['pickled']}",
        f"open_clip:{ARCH}:{files['wrong_shape']}",
        f"open_clip:local-dir:{tmp_path / 'no-such-dir'}",
        "open_clip:local-dir:",
        "builtin:",
    ]
    for spec in bad:
        with pytest.raises(ModelSpecError) as info:
            load_backbone(spec)
        message = str(info.value)
        assert repr(spec) in message, message
        assert "\n" not in message, message
    assert "unpickled!" not in capsys.readouterr().out  # weights_only=True refused the object


def test_openai_looking_file_warns_about_quickgelu(tmp_path):
    path = tmp_path / "ViT-tiny-openai.safetensors"
    save_file(_state_dict(make_open_clip(ARCH)), str(path))
    with pytest.warns(UserWarning, match="QuickGELU"):
        load_backbone(f"open_clip:{ARCH}:{path}")
    plain = tmp_path / "tiny-laion.safetensors"
    path.rename(plain)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*QuickGELU.*")
        load_backbone(f"open_clip:{ARCH}:{plain}")


def test_register_loader_adds_a_source(monkeypatch):
    seen = {}

    def fake(rest, spec, device):
        seen["args"] = (rest, spec, device)
        return registry.load_open_clip(ARCH, spec, device)

    monkeypatch.setitem(registry.LOADERS, "mine", fake)
    backbone = load_backbone("mine:whatever:x", device="cpu")
    assert seen["args"] == ("whatever:x", "mine:whatever:x", torch.device("cpu"))
    assert backbone.spec == "mine:whatever:x"


def test_openai_weights_on_a_gelu_arch_warn_before_loading(tmp_path, monkeypatch):
    """OpenAI tags and files named like OpenAI weights warn, naming the -quickgelu spec; checked
    without downloading: open_clip's loader is replaced by one that fails, as offline it would."""
    import open_clip


    def offline(*args, **kwargs):
        raise RuntimeError("offline")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.warns(UserWarning, match="open_clip:ViT-B-32-quickgelu:openai"), pytest.raises(ModelSpecError, match="offline"):
        load_backbone("open_clip:ViT-B-32:openai")
    weights = tmp_path / "openai-vit-b-32.safetensors"
    weights.write_bytes(b"")
    with pytest.warns(UserWarning, match="QuickGELU"), pytest.raises(ModelSpecError):
        load_backbone(f"open_clip:ViT-B-32:{weights}")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*QuickGELU.*")
        for quiet in ("open_clip:ViT-B-32-quickgelu:openai", "open_clip:ViT-B-32:laion2b_s34b_b79k"):
            with pytest.raises(ModelSpecError, match="offline"):
                load_backbone(quiet)