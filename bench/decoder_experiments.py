"""All decoder measurements on ShapeWorld, each configuration in its own process (bench/decoder_train.py),
appended to bench/decoder_results.jsonl (a configuration already measured on the same model weights is skipped, so
the script resumes; a retrained model is measured afresh beside the older rows).

    python bench/decoder_experiments.py [--model shapeworld] [--only main|curve|ablation] [--test-n 200]

main:     each task with 100 labelled scenes at default settings (quality and training time)
curve:    semantic with 25 / 50 / 100 / 200 labelled scenes (20 epochs: reduced)
ablation: semantic, 50 scenes, 20 epochs (reduced): which attention maps (caption / class prompt / both / none);
          UNet feature grids; without the VAE decoder's pixel-grid features; timestep; DDIM inversion
"""
import argparse, json, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
p = argparse.ArgumentParser()
p.add_argument("--model", default="shapeworld")
p.add_argument("--only", nargs="*", default=["main", "curve", "ablation"])
p.add_argument("--test-n", type=int, default=200)
p.add_argument("--results", default=str(HERE / "decoder_results.jsonl"))
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default=None, help="folder for the decoders of 'main' (one subfolder per task)")
a = p.parse_args()

runs = []
if "main" in a.only:
    for t in ("semantic", "depth", "instance", "keypoints"):
        runs.append((f"main/{t}", ["--task", t, "--n", "100", "--augment"] + (["--out", f"{a.out}/{t}"] if a.out else [])))
if "curve" in a.only:
    for t in ("semantic",):
        for n in (25, 50, 100, 200):
            runs.append((f"curve/{t}/{n}", ["--task", t, "--n", str(n), "--epochs", "20", "--augment"]))
if "ablation" in a.only:
    base = ["--task", "semantic", "--n", "50", "--epochs", "20", "--augment"]
    runs.append(("ablation/features + caption maps (default)", base))
    runs.append(("ablation/features + class-prompt maps", base + ["--attention", "class"]))
    runs.append(("ablation/features + both maps", base + ["--attention", "caption", "class"]))
    runs.append(("ablation/features alone", base + ["--no-attention"]))
    runs.append(("ablation/no VAE-decoder features", base + ["--vae-features"]))
    for res in (["16"], ["8", "4"]):
        runs.append((f"ablation/grids {'+'.join(res)}", base + ["--resolutions", *res]))
    for t in (1, 100):
        runs.append((f"ablation/timestep {t}", base + ["--timestep", str(t)]))
    runs.append(("ablation/ddim inversion", base + ["--method", "ddim"]))

from datasetdm_nb.attention import model_fingerprint
from datasetdm_nb.models import load_pipeline
weights = model_fingerprint(load_pipeline(a.model).unet)
path = Path(a.results)
rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
done = {r["tag"] for r in rows if r.get("model_hash") == weights}
for tag, args in runs:
    if tag in done: continue
    cmd = [sys.executable, str(HERE / "decoder_train.py"), "--model", a.model, "--test-n", str(a.test_n),
           "--threads", str(a.threads), "--tag", tag, "--cache", str(Path.home() / ".cache" / "datasetdm_nb" / "decoder_features"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if l.startswith("{")), None)
    if line is None: print(f"{tag}: failed\n{r.stderr[-2000:]}", file=sys.stderr); continue
    with path.open("a") as f: f.write(line + "\n")
    print(line, flush=True)
