"""A pretraining checkpoint written before the checkpoint module was unified still resumes."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from dcar.checkpoint import load_checkpoint


def test_the_earlier_pretrain_layout_loads(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    # the layout dcar.pretrain.checkpoint wrote: optimiser tensors as optim.IDX.NAME, param groups apart
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    for idx, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = (value if torch.is_tensor(value) else torch.tensor(value)).clone()
    meta = {"step": "7", "info": json.dumps({"preset": "x"}),
            "param_groups": json.dumps(opt.state_dict()["param_groups"])}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)

    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    step, info = load_checkpoint(tmp_path / "old.safetensors", fresh, fresh_opt)
    assert step == 7 and info == {"preset": "x"}
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
