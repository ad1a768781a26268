import sys, time, torch
from open_clip.loss import ClipLoss
from dcar.pretrain.presets import clip_config, get_preset
from dcar.pretrain.data import WorldPairs, collate
from dcar.pretrain.model import build_model
from dcar.pretrain.train import make_optimizer, train_step
torch.set_num_threads(int(__import__("os").environ.get("THREADS", "2")))
B = 128
configs = {"v1-64p16-w192-L6 (pretrain v1)": (64, 16, 192, 6, 128, 4, "pretrain"),
           "96p16-w192-L6": (96, 16, 192, 6, 128, 4, "pretrain-v2"), "48p8-w192-L6": (48, 8, 192, 6, 128, 4, "pretrain-v2"),
           "96p16-w192-L4": (96, 16, 192, 4, 128, 4, "pretrain-v2")}
for name in sys.argv[1:] or configs:
    img, patch, vw, vl, tw, tl, dom = configs[name]
    cfg = clip_config(128, img, patch, vw, vl, tw, tl)
    p = get_preset("synthetic-small", model_cfg=cfg, image_size=img, domain=dom, corpus=200_000)
    m = build_model(cfg, 0); opt = make_optimizer(m, p); loss = ClipLoss()
    data = WorldPairs(dom, "train", 10_000, 0, img)
    t = time.process_time(); batches = [collate([data[i] for i in range(k * B, (k + 1) * B)]) for k in range(4)]
    rt = 4 * B / (time.process_time() - t)
    train_step(m, opt, loss, *batches[0][:2], 1e-4, p)
    t, c = time.time(), time.process_time()
    for b in batches[1:]: train_step(m, opt, loss, *b[:2], 1e-4, p)
    wall, cpu = time.time() - t, time.process_time() - c
    print(f"{name}: render+tokenize {rt:.0f}/CPU-s; train {3*B/wall:.1f} samples/s wall, {3*B/cpu*2:.1f} samples/s per 2 CPU-s "
          f"(util {cpu/wall:.2f} cores), params {sum(x.numel() for x in m.parameters())/1e6:.2f}M", flush=True)
