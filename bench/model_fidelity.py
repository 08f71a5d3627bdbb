"""Prompt fidelity of a ShapeWorld diffusion model, judged by a presence classifier.

Prints the classifier's accuracy on real held-out test scenes, then the share of generated images (one per held-out
test caption, 25 DPM-Solver steps, at each --guidance scale) in which every (colour, class) pair the caption names is judged present,
writes it all to bench/model_fidelity.json (which 01_models reads), and saves a grid of the first 50 generated images
with their captions and verdicts, and one with captions only for a person to judge before reading the classifier's verdicts (bench/human_verdicts.json holds two people's check of the shipped weights). The same
measure on the real scenes of these captions, and on their VAE reconstructions (encode, decode: what the best UNet
could hand to this VAE decoder), tells what the judge and the VAE allow.

usage: python bench/model_fidelity.py [--model shapeworld|FOLDER] [--n 200] [--guidance 4 10] [--classifier FILE]
                                     [--out DIR] [--train-more STEPS --more-scenes N --more-start I] [--reuse]

Each guidance scale is measured on the same captions and seeds (one grid and one images file per scale).

The classifier is bench/presence_classifier.safetensors (fp16), trained by this script when missing at
`train_presence_classifier()`'s defaults (about 40 minutes on one core), then `--train-more 12000` (another 40 minutes:
60,000 fresh scenes, learning rate 1e-3), then `--train-more 15000 --more-scenes 200000 --more-start 220000` (62 minutes
on one core: 200,000 fresh scenes, which closed the gap between its accuracy on training and on held-out scenes).
"""
import argparse, json, textwrap, time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from datasetdm_nb.models import (PresenceClassifier, caption_verdicts, load_pipeline, presence_accuracy, prompt_fidelity,
                                 shapeworld_model_path, train_presence_classifier)
from datasetdm_nb.shapeworld import caption_objects, shapeworld

p = argparse.ArgumentParser()
p.add_argument("--model", default="shapeworld")
p.add_argument("--n", type=int, default=200, help="held-out captions to generate from")
p.add_argument("--classifier", default=str(Path(__file__).resolve().parent / "presence_classifier.safetensors"),
               help="trained here (about 40 minutes) if missing")
p.add_argument("--out", default=str(Path.home() / ".cache" / "datasetdm_nb" / "fidelity"), help="folder for the grid PNGs and images")
p.add_argument("--results", default=str(Path(__file__).resolve().parent / "model_fidelity.json"),
               help="where the figures are written (01_models reads bench/model_fidelity.json)")
p.add_argument("--guidance", type=float, nargs="+", default=[4.0, 10.0], help="classifier-free guidance scales to measure")
p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
p.add_argument("--train-more", type=int, default=0,
               help="first go on training the classifier this many steps on --more-scenes fresh scenes, and save it")
p.add_argument("--more-scenes", type=int, default=60_000, help="train-split scenes for --train-more")
p.add_argument("--more-start", type=int, default=160_000, help="index of the first of them (past those already used)")
p.add_argument("--reuse", action="store_true", help="judge the images of an earlier run in --out instead of generating")
a = p.parse_args()
if a.threads: torch.set_num_threads(a.threads)
out = Path(a.out); out.mkdir(parents=True, exist_ok=True)

half = lambda m: {k: v.half() if v.is_floating_point() else v for k, v in m.state_dict().items()}   # stored in fp16
clf = PresenceClassifier()
if Path(a.classifier).exists(): clf.load_state_dict(load_file(a.classifier))
else:
    t0 = time.time(); clf = train_presence_classifier()
    save_file(half(clf), a.classifier); print(f"classifier trained in {time.time() - t0:.0f} s -> {a.classifier}")
if a.train_more:
    t0 = time.time()
    clf = train_presence_classifier(n=a.more_scenes, steps=a.train_more, lr=1e-3, seed=1, model=clf, start=a.more_start)
    save_file(half(clf), a.classifier); print(f"classifier trained {a.train_more} more steps in {time.time() - t0:.0f} s -> {a.classifier}")
clf.eval()
held_out = shapeworld("test", 2000, start=10_000)
acc = presence_accuracy(clf, held_out)
print(f"presence classifier on {acc['n']} real held-out test scenes: per-image {acc['per_image']:.2%}, per-pair {acc['per_pair']:.2%}")
FRAGMENT = 48   # visible pixels: the classifier's misses on real scenes are fragments of 24 to 60 pixels
big = presence_accuracy(clf, held_out, min_pixels=FRAGMENT)
print(f"... counting pairs with fewer than {FRAGMENT} visible pixels as undecided (fragments): per-image {big['per_image']:.2%}")

pipe = load_pipeline(a.model)
test = shapeworld("test", a.n)            # seeds 1,000,000+: never in the diffusion model's pool
captions = [s.caption for s in test]
nobj = np.array([len(caption_objects(c)) for c in captions])
judge = lambda images: caption_verdicts(clf.predict(images), captions)
human = json.loads((Path(__file__).resolve().parent / "human_verdicts.json").read_text())
trained = json.loads((shapeworld_model_path() / "training.json").read_text()) if a.model == "shapeworld" else {}
human_applies = all(trained.get(k) == v for k, v in human["model"].items())   # the people judged these very images
by_guidance = {}
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
for g in a.guidance:
    t0 = time.time()
    if a.reuse: images = np.load(out / f"images_g{g:g}.npy")[:a.n]; ok = judge(images)
    else: images, ok = prompt_fidelity(pipe, captions, clf, guidance_scale=g)
    dt = time.time() - t0
    print(f"fidelity (every named object present) on n={len(ok)} held-out captions at guidance {g:g}: {ok.mean():.1%}  ({dt:.0f} s)")
    for k in sorted(set(nobj)): print(f"  {k} object(s): {ok[nobj == k].mean():.1%} of {(nobj == k).sum()}")
    people = [np.array(v[f"{g:g}"]) for v in human["verdicts"] if f"{g:g}" in v] if human_applies else []
    if people:
        m = len(people[0])
        print(f"  people's verdicts on the first {m} (bench/human_verdicts.json): "
              f"{' and '.join(f'{v.mean():.0%}' for v in people)} judged faithful, the classifier {ok[:m].mean():.0%}; "
              f"it agrees with them on {' and '.join(str((v == ok[:m]).sum()) for v in people)} of {m}, "
              f"they agree with each other on {(people[0] == people[-1]).sum()}")
    by_guidance[g] = dict(fidelity=float(ok.mean()), by_objects={int(k): float(ok[nobj == k].mean()) for k in sorted(set(nobj))},
                          verdicts=ok.tolist())
    for name, show in (("grid", True), ("blind", False)):      # blind: captions only, for a person's check
        fig, axes = plt.subplots(5, 10, figsize=(20, 12))
        for j, ax in enumerate(axes.flat):
            ax.imshow(images[j], interpolation="nearest"); ax.axis("off")
            head = f"{j} {'OK' if ok[j] else 'MISS'}" if show else f"{j}"
            ax.set_title(head + "\n" + textwrap.fill(captions[j], 28), fontsize=6, color="r" if show and not ok[j] else "k")
        fig.tight_layout(); fig.savefig(out / f"{name}_g{g:g}.png", dpi=80); plt.close(fig)
    np.save(out / f"images_g{g:g}.npy", images)
real_fid = judge(np.stack([s.image for s in test])).mean()
print(f"the same measure on the real scenes of these captions: {real_fid:.1%}")
from datasetdm_nb.inversion import encode_images
with torch.no_grad():
    lat = encode_images(pipe, [s.image for s in test])
    rec = pipe.vae.decode(lat / pipe.vae.config.scaling_factor).sample.clamp(-1, 1)
rec = ((rec + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
rec_fid = judge(rec).mean()
print(f"... and on their VAE reconstructions (encoded and decoded): {rec_fid:.1%}")

Path(a.results).write_text(json.dumps(dict(model=a.model, weights={k: trained.get(k) for k in human["model"]},
    classifier=acc, classifier_min_fragment=big, fragment_pixels=FRAGMENT, n=a.n,
    guidance={f"{g:g}": r for g, r in by_guidance.items()}, real_fidelity=float(real_fid),
    reconstruction_fidelity=float(rec_fid), captions=captions), indent=1))
