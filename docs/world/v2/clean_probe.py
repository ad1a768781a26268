"""The cheap checks on a catalog with its pretraining look (no cast, blur or noise; pretraining
backgrounds): how much of a gap is the style shift, how much fine knowledge the model lacks.

    python docs/world/v2/clean_probe.py open_clip:local-dir:DIR
"""
import sys, torch
from dataclasses import replace
sys.path.insert(0, "experiments")
from calibrate_world import cheap_checks
from dcar.backbone import load_backbone
from dcar.world.domains import DOMAINS, Style, get_domain
torch.set_num_threads(1)
for base in ("meadow", "airshow"):
    d = get_domain(base)
    DOMAINS[base + "-clean"] = replace(d, name=base + "-clean", style=Style(), backgrounds=("white", "grass", "sand"))
bb = load_backbone(sys.argv[1])
for name in ("meadow-clean", "airshow-clean"):
    c = cheap_checks(bb, name)
    print(name, {k: round(v, 1) for k, v in c.items()})
