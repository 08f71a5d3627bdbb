"""How well a ShapeWorld CLIP reads captions: retrieval both ways and hard negatives among 500 test scenes
(`clip.clip_report`), the class names' text-state cosines prompted alone, and each class word's cosine with the
start-of-text state in its captions (`word_maps.sink_cosines`); one row appended to bench/clip_results.jsonl, which
01a_clip reads.

usage: python bench/clip_report.py [--clip shapeworld|FOLDER] --name NAME [--note TEXT] [--n 500]
FOLDER: written by `export_clip` (`datasetdm train-clip --export`)."""
import argparse, json, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from datasetdm_nb.clip import clip_report, load_clip, shapeworld_clip_path, text_tower
from datasetdm_nb.models import shipped_tokenizer
from datasetdm_nb.shapeworld import shapeworld
from datasetdm_nb.word_maps import class_name_cosines, sink_cosines

p = argparse.ArgumentParser()
p.add_argument("--clip", default="shapeworld")
p.add_argument("--name", required=True)
p.add_argument("--note", default="")
p.add_argument("--n", type=int, default=500, help="test scenes")
p.add_argument("--results", default=str(Path(__file__).resolve().parent / "clip_results.jsonl"))
a = p.parse_args()
torch.set_num_threads(1)
folder = shapeworld_clip_path() if a.clip == "shapeworld" else Path(a.clip)
clip = load_clip(a.clip)
scenes = shapeworld("test", a.n)
text = SimpleNamespace(tokenizer=shipped_tokenizer(), text_encoder=text_tower(clip))
cos = class_name_cosines(text)
row = dict(name=a.name, note=a.note, training=json.loads((folder / "training.json").read_text()),
           **clip_report(clip, scenes), class_name_cosine_max=round(float(cos[~np.eye(len(cos), dtype=bool)].max()), 4),
           sink_cosines=sink_cosines(text, [s.caption for s in scenes]), date=time.strftime("%Y-%m-%d"))
with open(a.results, "a") as f: f.write(json.dumps(row) + "\n")
print(json.dumps(row, indent=1))
