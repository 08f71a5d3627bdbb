"""What the notebooks store for their readers (the docs site shows it): the figures `make figures` made, and nothing a
reader should not see (stderr, progress bars, widget views that need a live kernel, errors)."""
import base64
import json
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
BUDGET = 4_000_000           # bytes for all of nbs/: notebooks and images
IMAGE_BUDGET = 250_000       # bytes for one stored PNG
FIGURES = ["00_shapeworld", "00a_dataset_io", "01_models", "02_attention", "02a_widgets", "02b_word_maps", "03_inversion",
           "04_decoder", "04a_tasks", "04b_decoder_training", "06_synthesis", "07_downstream"]
TEXT = ["01a_clip", "05_prompting", "08_cli"]    # printed outputs: the CLIP's tables, prompts, --help and runs


def outputs(name):
    cells = json.loads((NBS / f"{name}.ipynb").read_text())["cells"]
    return [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]


def images(name):
    return [base64.b64decode("".join(o["data"]["image/png"])) for o in outputs(name) if "image/png" in o.get("data", {})]


@pytest.mark.parametrize("name", FIGURES)
def test_figures_stored(name):
    assert images(name), f"{name} stores no figure: run `make figures NB={name}`"


@pytest.mark.parametrize("name", TEXT)
def test_outputs_stored(name):
    assert any(o["output_type"] in ("stream", "execute_result") for o in outputs(name)), f"{name} stores no output"


@pytest.mark.parametrize("name", sorted(p.stem for p in NBS.glob("*.ipynb")))
def test_nothing_a_reader_should_not_see(name):
    for o in outputs(name):
        assert o["output_type"] != "error", f"{name} stores an error"
        assert not (o["output_type"] == "stream" and o["name"] == "stderr"), f"{name} stores stderr: {o['text'][:80]}"
        assert "application/vnd.jupyter.widget-view+json" not in o.get("data", {}), f"{name} stores a widget view"
        assert o["output_type"] == "stream" or o.get("data"), f"{name} stores an empty output"


def test_size_budget():
    total = sum(p.stat().st_size for p in NBS.rglob("*") if p.is_file())
    assert total <= BUDGET, f"nbs/ holds {total / 1e6:.1f} MB, over its {BUDGET / 1e6:.0f} MB budget"
    for p in NBS.glob("*.ipynb"):
        for img in images(p.stem):
            assert len(img) <= IMAGE_BUDGET, f"{p.name} stores a {len(img) / 1e3:.0f} kB image"
