"""Bundle sweep results for the trip back: small files in one tar, the best two models in chunks."""
import glob, json, os, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
scores = {}
for f in glob.glob(os.path.join(root, "*", "diagnose.json")):
    d = json.load(open(f))
    scores[os.path.basename(os.path.dirname(f))] = d["diagnose"]["pretrain_heldout"]["recall"]["i2t"]["R@1"]
print("pretrain held-out i2t R@1:", scores)
with tarfile.open(os.path.join(out, "results.tar.gz"), "w:gz") as tar:
    for f in glob.glob(os.path.join(root, "*.out")) + glob.glob(os.path.join(root, "*", "*.csv")) + \
            glob.glob(os.path.join(root, "*", "*.json")) + glob.glob(os.path.join(root, "*", "model", "*.json")):
        tar.add(f, arcname=os.path.relpath(f, root))
best = sorted(scores, key=scores.get, reverse=True)[:2]
for name in best:
    w = os.path.join(root, name, "model", "open_clip_model.safetensors")
    data = open(w, "rb").read()
    half = (len(data) + 1) // 2
    for i in range(2):
        open(os.path.join(out, f"{name}.part{i}"), "wb").write(data[i * half:(i + 1) * half])
print("models packed:", best)
