"""Do the words of a ShapeWorld model find their objects? Word heat-map IoU per class against the oracle map's, and the
class names' text-state cosines (`datasetdm_nb.word_maps.word_map_report`), appended as one row to
bench/word_maps.jsonl, which 02b_word_maps reads.

usage: python bench/word_maps.py [--model shapeworld|FOLDER] --name NAME [--shipped] [--note TEXT] [--n 200] [--tune 100]

--shipped marks the row as a model that was shipped (02b compares those); other rows are pilots. A row records the
UNet's and text encoder's fingerprints and, where the folder has one, its training.json step count."""
import argparse, json, time
from pathlib import Path

import torch

from datasetdm_nb.attention import model_fingerprint
from datasetdm_nb.models import load_pipeline, shapeworld_model_path
from datasetdm_nb.word_maps import word_map_report

p = argparse.ArgumentParser()
p.add_argument("--model", default="shapeworld")
p.add_argument("--name", required=True, help="what the row is called in tables")
p.add_argument("--shipped", action="store_true", help="the row is a shipped model (else a pilot)")
p.add_argument("--note", default="", help="the design, for the pilots table")
p.add_argument("--n", type=int, default=200, help="test scenes")
p.add_argument("--tune", type=int, default=100, help="train scenes for the thresholds")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--results", default=str(Path(__file__).resolve().parent / "word_maps.jsonl"))
a = p.parse_args()
torch.set_num_threads(a.threads)
t0 = time.time()
pipe = load_pipeline(a.model)
folder = shapeworld_model_path() if a.model == "shapeworld" else Path(a.model)
trained = json.loads((folder / "training.json").read_text()) if (folder / "training.json").exists() else {}
r = word_map_report(pipe, a.n, a.tune)
row = dict(name=a.name, shipped=True if a.shipped else None, note=a.note, step=trained.get("step"),
           frozen_text_encoder=trained.get("frozen_text_encoder", False),
           unet=model_fingerprint(pipe.unet), text_encoder=model_fingerprint(pipe.text_encoder), **r,
           seconds=round(time.time() - t0, 1), date=time.strftime("%Y-%m-%d"))
with open(a.results, "a") as f: f.write(json.dumps(row) + "\n")
print(f"{a.name}: threshold {r['threshold']} (oracle {r['oracle_threshold']}), {a.n} test scenes")
for c, v in r["classes"].items(): print(f"  {c:9s} word map {v['model']:.3f}  oracle {v['oracle']:.3f}  ratio {v['ratio']:.2f}  (n={v['n']})")
print(f"  class names' largest cosine {r['class_name_cosine_max']:.3f}; {time.time() - t0:.0f} s")
