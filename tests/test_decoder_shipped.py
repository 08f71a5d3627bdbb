"Integration: the shipped ShapeWorld decoder on the shipped ShapeWorld model (skipped when they are not installed)."
import numpy as np
import pytest
import torch

from datasetdm_nb.decoder import check_pipeline, default_decoder_path, load_decoder, predict
from datasetdm_nb.decoder_training import evaluate_decoder, label_images
from datasetdm_nb.models import load_pipeline, shapeworld_model_path
from datasetdm_nb.shapeworld import CLASSES, shapeworld

pytestmark = pytest.mark.skipif(not (shapeworld_model_path() / "model_index.json").exists()
                                or not (default_decoder_path() / "config.json").exists(),
                                reason="the ShapeWorld model or its decoder is not installed")


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(2)
    return load_pipeline("shapeworld"), load_decoder("shapeworld")


def test_shipped_decoder_has_all_heads_and_matches_the_model(shipped):
    pipe, dec = shipped
    assert set(dec.tasks) == {"semantic", "depth", "instance", "keypoints", "parts"}
    assert tuple(dec.config.classes) == CLASSES
    check_pipeline(dec, pipe)   # trained on exactly the shipped model's weights


def test_shipped_decoder_quality_on_held_out_scenes(shipped):
    pipe, dec = shipped
    m = evaluate_decoder(dec, pipe, shapeworld("test", 60, start=500), progress=False)
    # floors well below the measured figures (see nbs/04_decoder.ipynb), so that a broken decoder fails
    assert m["mIoU"] > 0.45 and m["AbsRel"] < 0.1 and m["AP50"] > 25 and m["PCK@0.1"] > 0.35 and m["part mIoU"] > 0.35, m


def test_label_images_writes_a_loadable_dataset(shipped, tmp_path):
    from datasetdm_nb.dataset_io import load_dataset
    pipe, dec = shipped
    scenes = shapeworld("test", 4)
    label_images([s.image for s in scenes], tmp_path / "out", decoder=dec, pipe=pipe, progress=False)
    ds = load_dataset(tmp_path / "out")
    assert len(ds) == 4
    agree = np.mean([(ds[i].semantic == s.semantic).mean() for i, s in enumerate(scenes)])
    assert agree > 0.8, agree


def test_generated_image_labels_agree_with_labels_of_its_inversion(shipped):
    "The decoder's input from generation and from inverting the generated image are close, and so are the labels."
    from datasetdm_nb.attention import generate_with_bundles
    from datasetdm_nb.tasks import semantic_miou
    from datasetdm_nb.inversion import bundle_similarity, invert
    pipe, dec = shipped
    prompts = [s.caption for s in shapeworld("pool", 6, start=123)]
    vae_features = dec.config.provenance.get("vae_features", ())
    images, bundles = generate_with_bundles(pipe, prompts, steps=25, guidance_scale=5.0, classes=dec.config.classes,
                                            vae_features=vae_features)
    gen, images = bundles[-1], list(images)
    inv = invert(pipe, images, prompts, classes=dec.config.classes, timestep=int(gen.meta["timestep"]),
                 vae_features=vae_features)
    own, other = bundle_similarity(gen, inv), bundle_similarity(gen, inv[torch.tensor([1, 2, 3, 4, 5, 0])])
    assert min(own[k] - other[k] for k in own) > 0, (own, other)
    a = [p["semantic"] for p in predict(dec, gen, size=64)]
    b = [p["semantic"] for p in predict(dec, inv, size=64)]
    assert semantic_miou(a, b, len(dec.config.classes))["mIoU"] > 0.7


def test_shipped_decoder_predictions_are_the_stored_ones(shipped):
    "The task-object decoder predicts exactly what the decoder predicted before it (stored in tests/data)."
    from pathlib import Path
    from datasetdm_nb.decoder import decoder_features
    pipe, dec = shipped
    ref = np.load(Path(__file__).parent / "data" / "shipped_decoder_predictions.npz")
    preds = predict(dec, decoder_features(dec, pipe, shapeworld("test", 6, start=300), progress=False),
                    score_threshold=0.5, ignore_below=0.5)
    assert np.array_equal(np.stack([p["semantic"] for p in preds]), ref["semantic"])
    np.testing.assert_allclose([p["confidence"] for p in preds], ref["confidence"], rtol=1e-5)
    np.testing.assert_allclose(np.stack([p["depth"] for p in preds]), ref["depth"], rtol=1e-4)
    inst = [(i, c, s, m) for i, p in enumerate(preds) for c, s, m in p["instances"]]
    assert [(i, c) for i, c, _, _ in inst] == list(zip(ref["instance_image"], ref["instance_class"]))
    np.testing.assert_allclose([s for _, _, s, _ in inst], ref["instance_score"], rtol=1e-4)
    assert np.array_equal(np.stack([m for *_, m in inst]), ref["instance_mask"])
    kp = [(i, k) for i, p in enumerate(preds) for _, k in p["keypoints"]]
    assert [i for i, _ in kp] == list(ref["keypoint_image"])
    np.testing.assert_allclose(np.stack([k for _, k in kp]), ref["keypoints"], atol=1e-3)
