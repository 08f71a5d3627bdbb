"The `datasetdm` command end to end, as a user runs it from a shell."
import pytest


def one_line_error(proc):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("datasetdm: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_no_subcommand_prints_help(cli):
    proc = cli()
    assert proc.returncode == 2 and "SUBCOMMAND" in proc.stdout


@pytest.mark.parametrize("module", ["datasetdm_nb", "datasetdm_nb.cli"])
def test_python_m_runs_the_command(tmp_path, module):
    "`python -m datasetdm_nb ...` and `python -m datasetdm_nb.cli ...` are the `datasetdm` command, exit status included."
    import subprocess, sys
    run = lambda *args: subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, capture_output=True, text=True)
    shown = run("generate", "--help")
    assert shown.returncode == 0 and "--batch-size" in shown.stdout, shown.stderr
    assert "unrecognized arguments: --bogus" in one_line_error(run("generate", "--out", "x", "--bogus"))


def test_accelerate_launch_m_runs_the_command(tmp_path):
    "`accelerate launch -m datasetdm_nb ...` runs the command in each process it starts."
    import subprocess, sys
    from pathlib import Path
    accelerate = [str(Path(sys.executable).parent / "accelerate"), "launch", "--cpu", "--num_processes", "1",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "datasetdm_nb"]
    proc = subprocess.run([*accelerate, "shapeworld", "--out", "scenes", "--n", "2"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "wrote 2 test scenes" in proc.stdout, proc.stderr[-2000:]
    assert len(list((tmp_path / "scenes" / "images").glob("*.png"))) == 2


@pytest.mark.parametrize("args, message", [
    (["shapeworld", "--out", "x", "--n", "0"], "expected a positive number"),
    (["shapeworld", "--out", "x", "--layout", "kitti"], "invalid choice: 'kitti'"),
    (["shapeworld", "--n", "3"], "the following arguments are required: --out"),
    (["shapeworld", "--out", "x", "--start", "999999"], "outside split"),
    (["train-nothing"], "invalid choice"),
])
def test_bad_arguments_give_one_line(cli, args, message):
    assert message in one_line_error(cli(*args))


def test_unwritable_output_gives_one_line(cli, tmp_path):
    (tmp_path / "file").write_text("")
    one_line_error(cli("shapeworld", "--out", tmp_path / "file" / "sub", "--n", "2"))


def test_demo_runs_the_main_job(cli, tmp_path):
    """Integration: the shipped ShapeWorld model and decoder generate a labelled dataset, segmenters train on real and
    real + synthetic data, and the report says what came of it."""
    from datasetdm_nb.dataset_io import load_dataset
    proc = cli("demo", "--out", tmp_path / "demo", "--quick", "--n", 8, "--steps", 5)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "demo"
    assert (out / "contact_sheet.png").stat().st_size > 10_000 and str(out / "report.md") in proc.stdout
    assert (out / "downstream.png").stat().st_size > 5_000
    report = (out / "report.md").read_text()
    assert "| real (100 real scenes) |" in report and "| real+synthetic (100 real + 8 generated) |" in report
    assert "cannot tell" in report                      # one seed of a quick run: it says so
    ds = load_dataset(out / "dataset")
    assert len(ds) == 8
    for s in ds:
        assert s.semantic.shape == s.image.shape[:2] and s.depth.shape == s.image.shape[:2]
        assert s.caption and 0 <= s.meta["confidence"] <= 1


@pytest.mark.parametrize("layout", ["datasetdm", "coco", "voc"])
def test_shapeworld_export_loads_back(cli, tmp_path, layout):
    import numpy as np
    from datasetdm_nb.dataset_io import load_dataset
    from datasetdm_nb.shapeworld import shapeworld
    proc = cli("shapeworld", "--out", tmp_path / layout, "--split", "train", "--n", 6, "--start", 10, "--layout", layout)
    assert proc.returncode == 0, proc.stderr
    loaded, scenes = load_dataset(tmp_path / layout), shapeworld("train", 6, start=10)
    assert len(loaded) == 6
    for a, b in zip(loaded, scenes):
        assert np.array_equal(a.semantic, b.semantic)
        assert sorted(int(i.mask.sum()) for i in a.instances) == sorted(int(i.mask.sum()) for i in b.instances)
        if layout != "voc": assert np.array_equal(a.image, b.image) and a.caption == b.caption


def test_prompts_offline_are_reproducible(cli, tmp_path):
    import json
    for name in ("a.jsonl", "b.jsonl"):
        proc = cli("prompts", "--dataset", "voc", "--n", 20, "--seed", 3, "--out", tmp_path / name)
        assert proc.returncode == 0, proc.stderr
    rows = [json.loads(l) for l in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(r["prompt"] and "source" in r for r in rows)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_prompts_llm_without_key_gives_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = cli("prompts", "--llm", "--n", 3, "--out", tmp_path / "p.jsonl")
    assert proc.stderr.strip().splitlines()[-1].startswith("datasetdm: error: no API key")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not (tmp_path / "p.jsonl").exists()


def test_label_then_evaluate_with_the_shipped_decoder(cli, tmp_path):
    "Integration: label real ShapeWorld images from files, and evaluate the shipped decoder from the shell."
    from PIL import Image
    from datasetdm_nb.dataset_io import load_dataset
    from datasetdm_nb.shapeworld import shapeworld
    files = []
    for k, s in enumerate(shapeworld("test", 3)):
        files.append(tmp_path / f"photo{k}.png"); Image.fromarray(s.image).save(files[-1])
    proc = cli("label", *files, "--out", tmp_path / "labelled")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = load_dataset(tmp_path / "labelled")
    assert len(ds) == 3 and all(s.semantic.shape == (64, 64) and s.depth is not None for s in ds)
    assert all(s.caption.startswith("a photo of a circle") for s in ds)
    proc = cli("evaluate", "--n", 16)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mIoU" in proc.stdout and "AbsRel" in proc.stdout


def test_label_missing_image_gives_one_line(cli, tmp_path):
    proc = cli("label", tmp_path / "nope.png", "--out", tmp_path / "o")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"datasetdm: error: no image at {tmp_path / 'nope.png'}"


def test_attention_writes_a_sheet_row_per_word(cli, tmp_path):
    "`datasetdm attention` generates with the tiny random model and writes one row of heat maps per caption word."
    from PIL import Image
    proc = cli("attention", "a red star and a blue circle", "--out", tmp_path / "sheets" / "sheet.png", "--model", "tiny",
               "--steps", 3)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sheet = tmp_path / "sheets" / "sheet.png"
    assert str(sheet) in proc.stdout
    assert Image.open(sheet).height == 6 * 160    # 6 distinct words, 1.6 inches each at 100 dpi


def test_train_and_evaluate_downstream(cli, tmp_path):
    "A downstream segmenter trained on a mix of sources, evaluated on another; a finished run is not trained again."
    from datasetdm_nb.dataset_io import write_dataset
    from datasetdm_nb.shapeworld import shapeworld
    write_dataset(shapeworld("test", 4, start=600), tmp_path / "other")
    proc = cli("train-downstream", "--task", "semantic", "--data", "shapeworld:6", f"{tmp_path / 'other'}:3",
               "--steps", 3, "--train-batch-size", 4, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trained on 9 samples" in proc.stdout
    proc = cli("evaluate-downstream", tmp_path / "run", "--data", "shapeworld/test:4")
    assert proc.returncode == 0 and proc.stdout.startswith("mIoU "), proc.stderr[-2000:]
    assert "IoU [" not in proc.stdout
    again = cli("train-downstream", "--task", "semantic", "--data", "shapeworld:6", "--steps", 4, "--out", tmp_path / "run")
    assert again.returncode == 2 and "other settings" in again.stderr
    bad = cli("train-downstream", "--task", "colour", "--data", "shapeworld:6", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "unknown task 'colour'" in bad.stderr


def _bad_inputs(root):
    "The files a user may hand the command by mistake, written under `root`."
    import shutil
    from PIL import Image
    from datasetdm_nb.decoder import default_decoder_path
    from datasetdm_nb.shapeworld import shapeworld
    Image.fromarray(shapeworld("test", 1)[0].image).save(root / "photo.png")
    (root / "truncated.png").write_bytes((root / "photo.png").read_bytes()[:200])
    (root / "notes.txt").write_text("not an image\n")
    (root / "prompts.jsonl").write_text('{"prompt": "a red star"}\n{"prompt": \n')
    shipped = default_decoder_path()
    for name, config, weights in [("truncated_weights", None, lambda b: b[: len(b) // 3]),
                                  ("random_weights", None, lambda b: bytes(range(256)) * 64),
                                  ("cut_config", lambda t: t[: len(t) // 2], None),
                                  ("empty_config", lambda t: "", None), ("list_config", lambda t: "[1, 2]", None)]:
        d = root / name; d.mkdir()
        text = (shipped / "config.json").read_text()
        (d / "config.json").write_text(config(text) if config else text)
        data = (shipped / "diffusion_pytorch_model.safetensors").read_bytes()
        (d / "diffusion_pytorch_model.safetensors").write_bytes(weights(data) if weights else data)
    (root / "some_folder").mkdir()


def _snapshot(root):
    import hashlib
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


BAD_INPUTS = [   # (what the user tried, the command, what the one line must say)
    ("guidance not finite", ["generate", "--out", "o", "--guidance", "nan"], "argument --guidance: expected a finite number"),
    ("guidance infinite", ["attention", "a red star", "--out", "a.png", "--guidance", "inf"], "expected a finite number"),
    ("negative seed", ["generate", "--out", "o", "--seed", "-1"], "argument --seed: expected a number >= 0"),
    ("confidence above 1", ["generate", "--out", "o", "--min-confidence", "2"], "expected a number from 0 to 1"),
    ("negative held-out count", ["train-decoder", "--out", "o", "--val-n", "-5"], "argument --val-n"),
    ("learning rate infinite", ["train-downstream", "--out", "o", "--lr", "inf"], "argument --lr"),
    ("no CUDA here", ["generate", "--out", "o", "--device", "cuda"], "argument --device: this machine has no cuda device"),
    ("not a device", ["train-decoder", "--out", "o", "--device", "gpu0"], "is not a torch device"),
    ("model path that does not exist", ["generate", "--out", "o", "--model", "./no/such-model"], "no pipeline folder"),
    ("model folder that is not a pipeline", ["label", "photo.png", "--out", "o", "--model", "some_folder"],
     "not a diffusers pipeline folder"),
    ("prompts file missing", ["generate", "--out", "o", "--prompts", "nope.jsonl"], "argument --prompts: no file nope.jsonl"),
    ("prompts given a folder", ["generate", "--out", "o", "--prompts", "some_folder"], "is a folder, expected a file"),
    ("prompts file with a broken line", ["generate", "--out", "o", "--prompts", "prompts.jsonl"], "prompts.jsonl:2 is not JSON"),
    ("decoder folder missing", ["evaluate", "--decoder", "nope"], "no decoder folder nope"),
    ("decoder weights truncated", ["label", "photo.png", "--out", "o", "--decoder", "truncated_weights"],
     "truncated_weights/diffusion_pytorch_model.safetensors is not a decoder: not a whole safetensors file"),
    ("decoder weights random bytes", ["generate", "--out", "o", "--n", "1", "--decoder", "random_weights"],
     "random_weights/diffusion_pytorch_model.safetensors is not a decoder"),
    ("decoder config cut", ["evaluate", "--n", "2", "--decoder", "cut_config"], "cut_config/config.json is not a decoder: not JSON"),
    ("decoder config empty", ["label", "photo.png", "--out", "o", "--decoder", "empty_config"],
     "empty_config/config.json is not a decoder: not JSON"),
    ("decoder config not an object", ["generate", "--out", "o", "--n", "1", "--decoder", "list_config"],
     "list_config/config.json is not a decoder: it holds a JSON list"),
    ("truncated image", ["label", "truncated.png", "--out", "o"], "truncated.png is not a readable image"),
    ("a text file as an image", ["label", "notes.txt", "--out", "o"], "notes.txt is not a readable image"),
    ("a folder as an image", ["label", "some_folder", "--out", "o"], "some_folder is a folder, not an image"),
    ("empty prompt", ["attention", "", "--out", "a.png"], "argument prompt: the prompt is empty"),
    ("too many steps", ["attention", "a red star", "--out", "a.png", "--steps", "1000"], "steps must be from 1 to 999"),
    ("steps the decoder was not made for", ["generate", "--out", "o", "--n", "1", "--steps", "4"],
     "steps=4 ends at timestep 250, but the decoder was trained at timestep 40 (+-25): use steps from 16 to 68"),
    ("data folder missing", ["train-decoder", "--out", "o", "--data", "nowhere"], "no dataset folder nowhere"),
]


@pytest.mark.parametrize("argv, says", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gives_one_line_and_writes_nothing(cli, tmp_path, argv, says):
    "Each mistake ends in one line naming what is wrong (exit status 2, no traceback, no library noise); no file is made or changed."
    _bad_inputs(tmp_path)
    before = _snapshot(tmp_path)
    assert says in one_line_error(cli(*argv))
    assert _snapshot(tmp_path) == before


def test_full_disk_is_the_machines_failure(cli):
    "A full disk (Linux's /dev/full) ends in one line with exit status 1, not 2: the command was right, the machine was not."
    proc = cli("prompts", "--out", "/dev/full", "--n", 3)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == ["datasetdm: error: [Errno 28] No space left on device"]


def test_verbose_shows_the_traceback(cli, tmp_path):
    (tmp_path / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    proc = cli("label", "truncated.png", "--out", "o", "--verbose")
    assert proc.returncode == 2 and "Traceback" in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("datasetdm: error:")


def test_label_skips_a_bad_file_and_refuses_to_mix_runs(cli, tmp_path):
    """One unreadable file among good ones: the good ones are labelled, the bad one named on stderr, status 2. A second
    run with other files into the same folder is refused in one line, and the folder is left as it was."""
    from datasetdm_nb.dataset_io import load_dataset
    _bad_inputs(tmp_path)
    proc = cli("label", "photo.png", "truncated.png", "--out", "labelled")
    assert proc.returncode == 2 and "datasetdm: error: truncated.png is not a readable image" in proc.stderr
    assert "labelled 1 images" in proc.stdout and len(load_dataset(tmp_path / "labelled")) == 1
    before = _snapshot(tmp_path / "labelled")
    assert "made with other settings" in one_line_error(cli("label", "photo.png", "photo.png", "--out", "labelled"))
    assert _snapshot(tmp_path / "labelled") == before


@pytest.fixture(scope="module")
def training_inputs(tmp_path_factory):
    "What a user hands the training commands by mistake, made once: data of the wrong kind, finished and damaged runs."
    import shutil
    from dataclasses import replace
    import numpy as np
    from datasetdm_nb.dataset_io import VOC_CLASSES, write_dataset, write_voc
    from datasetdm_nb.decoder import default_decoder_path
    from datasetdm_nb.downstream import train_downstream
    from datasetdm_nb.shapeworld import shapeworld
    root = tmp_path_factory.mktemp("training_inputs")
    scenes = shapeworld("train", 4)
    write_dataset(scenes, root / "four")
    write_dataset([replace(s, semantic=np.full_like(s.semantic, 255)) for s in scenes], root / "ignored")
    write_voc(scenes, root / "voc_names", classes=VOC_CLASSES)       # ShapeWorld's ids under VOC's names; no depth
    (root / "empty").mkdir(); (root / "not_a_checkpoint").mkdir()
    train_downstream("semantic", "shapeworld:4", root / "run", steps=2, batch_size=2, progress=False)
    for name in ("corrupt_run", "run_without_model"): shutil.copytree(root / "run", root / name)
    (root / "corrupt_run" / "training.json").write_text("{")
    shutil.rmtree(root / "run_without_model" / "model")
    shutil.copytree(default_decoder_path(), root / "decoder")
    return root


_TD = ["train-downstream", "--out", "o", "--steps", "2"]
_EXP = ["experiment", "--out", "o", "--steps", "2", "--seeds", "1", "--real", "shapeworld:2", "--n", "2"]
TRAINING_MISTAKES = [   # (what the user tried, the command ({root}: the inputs above), what the one line must say)
    ("data folder missing", [*_TD, "--data", "nowhere:4"], "no dataset folder at nowhere"),
    ("data folder empty", [*_TD, "--data", "{root}/empty"], "no known dataset layout in"),
    ("a source of zero samples", [*_TD, "--data", "shapeworld:0"], "shapeworld:0: a source needs at least 1 sample"),
    ("ShapeWorld without a count", [*_TD, "--data", "shapeworld"], "say how many ShapeWorld scenes"),
    ("ShapeWorld beyond its split", [*_TD, "--data", "shapeworld:5@999999"], "outside split"),
    ("more samples than the folder holds", [*_TD, "--data", "{root}/four:10"], "holds 4 samples, fewer than the 10 asked for"),
    ("labels all 'ignore'", [*_TD, "--data", "{root}/ignored"], "has semantic labels (absent, or all 'ignore')"),
    ("a task the data has no labels for", [*_TD, "--task", "depth", "--data", "{root}/voc_names"], "has depth labels"),
    ("a size the model cannot take", [*_TD, "--task", "depth", "--data", "shapeworld:2", "--size", "240"],
     "cannot train on 240 x 240 images: use --size 224 or 256"),
    ("pretrained folder missing", [*_TD, "--data", "shapeworld:2", "--pretrained", "./no/checkpoint"],
     "argument --pretrained: no checkpoint folder ./no/checkpoint"),
    ("pretrained folder of no checkpoint", [*_TD, "--data", "shapeworld:2", "--pretrained", "{root}/not_a_checkpoint"],
     "is not a checkpoint folder (it has no config.json)"),
    ("pretrained hub id without a hub", [*_TD, "--data", "shapeworld:2", "--pretrained", "nvidia/mit-b0"],
     "cannot load the pretrained checkpoint 'nvidia/mit-b0'"),
    ("a finished run with other settings", ["train-downstream", "--out", "{root}/run", "--data", "shapeworld:4", "--steps", "3",
                                            "--train-batch-size", "2"], "holds a finished run with other settings (steps: 2 -> 3)"),
    ("run folder missing", ["evaluate-downstream", "nowhere"], "no run folder nowhere"),
    ("run with a corrupt training.json", ["evaluate-downstream", "{root}/corrupt_run"], "corrupt_run/training.json is not readable JSON"),
    ("run folder without its model", ["evaluate-downstream", "{root}/run_without_model"], "run_without_model has no model/"),
    ("test data of another label space", ["evaluate-downstream", "{root}/run", "--data", "{root}/voc_names"],
     "none of which the run was trained on"),
    ("synthetic folder missing", [*_EXP, "--synthetic", "nowhere"], "argument --synthetic: no dataset folder nowhere"),
    ("synthetic folder empty", [*_EXP, "--synthetic", "{root}/empty"], "no known dataset layout in"),
    ("N beyond the synthetic folder", [*_EXP[:-1], "10", "--synthetic", "{root}/four"], "holds 4 samples, fewer than the 10"),
    ("synthetic labels all 'ignore'", [*_EXP, "--synthetic", "{root}/ignored"], "ignored:2 has no semantic labels"),
    ("test source without the task's labels", [*_EXP, "--task", "depth", "--synthetic", "{root}/four", "--test", "{root}/voc_names"],
     "the test source {root}/voc_names has no depth labels"),
    ("decoder data with labels all 'ignore'", ["train-decoder", "--out", "o", "--data", "{root}/ignored", "--n", "2", "--val-n", "0"],
     "have no semantic labels (absent, or all 'ignore')"),
    ("decoder data too small", ["train-decoder", "--out", "o", "--data", "{root}/four", "--n", "10"], "holds 4 samples, fewer than n=10"),
    ("a decoder that has the head", ["train-decoder", "--out", "{root}/decoder", "--n", "2", "--val-n", "0"],
     "already has a semantic head: pass --finetune"),
]


@pytest.mark.parametrize("argv, says", [c[1:] for c in TRAINING_MISTAKES], ids=[c[0] for c in TRAINING_MISTAKES])
def test_training_mistakes_give_one_line_and_write_nothing(cli, tmp_path, training_inputs, monkeypatch, argv, says):
    """The training and downstream commands check everything before they create a folder: each mistake ends in one
    line naming the argument or file (exit status 2, no traceback), and nothing is made or changed."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")           # no hub here: say so at once, not after its retries
    root = training_inputs
    before = _snapshot(root), _snapshot(tmp_path)
    assert says.format(root=root) in one_line_error(cli(*[a.format(root=root) for a in argv]))
    assert (_snapshot(root), _snapshot(tmp_path)) == before


def test_non_finite_loss_stops_training(cli, tmp_path):
    "A loss that is not finite stops the run with one line naming the step and the samples, exit 2; no model is published."
    proc = cli("train-downstream", "--out", "o", "--data", "shapeworld:4", "--steps", 5, "--train-batch-size", 2, "--lr", "1e30")
    line = proc.stderr.strip().splitlines()[-1]         # after the progress bar, which it clears
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and line.startswith("datasetdm: error: "), proc.stderr
    assert "loss is not finite" in line and "at step 2 of 5" in line and "shapeworld:4 #" in line
    assert not (tmp_path / "o" / "model").exists() and not (tmp_path / "o" / "training.json").exists()
