"""Train the decoder shipped with the package on the first 100 scenes of ShapeWorld's train split, for the shipped
ShapeWorld model, into datasetdm_nb/weights/decoders/shapeworld (replacing what is there).

    python bench/decoder_ship.py [--epochs E] [--joint | --sequential]

--joint (default) trains one trunk and the semantic, depth, instance and keypoints heads together, then adds the
human-parsing head on the frozen trunk (so adding it changed none of the other heads' predictions); --sequential
trains semantic first (trunk + head) and adds every other head on the frozen trunk, as `datasetdm train-decoder` does
into an existing folder. Prints the training logs (time, held-out metrics on the next 50 train scenes)."""
import argparse, json, shutil

import torch

from datasetdm_nb.decoder import default_decoder_path
from datasetdm_nb.decoder_training import train_decoder
from datasetdm_nb.models import load_pipeline

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=None)
p.add_argument("--sequential", action="store_true")
p.add_argument("--out", default=str(default_decoder_path()))
p.add_argument("--threads", type=int, default=1)
p.add_argument("--no-augment", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
shutil.rmtree(a.out, ignore_errors=True)
pipe = load_pipeline("shapeworld")
plan = ["semantic", "depth", "instance", "keypoints", "parts"] if a.sequential else ["semantic,depth,instance,keypoints", "parts"]
for task in plan:
    _, log = train_decoder(task, n=100, epochs=a.epochs, out=a.out, pipe=pipe, augment=not a.no_augment, progress=False)
    log.pop("history")
    print(json.dumps(log), flush=True)
