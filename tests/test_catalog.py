"""The catalog test: every architecture timm lists is either generated and passes, or is
listed in the manifest with the reason it is not.

For every generated model, detectron2's Mask R-CNN is built from its emitted
``<model>_fpn.yaml`` on the meta device (no memory, no weights, no compute). Images of
COCO's sizes go through the YAML's own test resize and the model's own
``preprocess_image``, and a DETR-style batch is padded only to its largest image; the maps
must be exactly what the YAML declares, for whatever size the client computed (see
:func:`tests.helpers.probe_catalog_model`). RetinaNet (P3-P7) and Panoptic FPN are built
from `d2timm-gen seed` YAMLs the same way, around the same bottom-up, their heads run on
the levels they read and the semantic map comes back at the image's size
(:func:`tests.helpers.probe_task_seed`), for one model of each signature: what the necks
and heads see of a backbone (:func:`tests.helpers.task_probe_signature`). Every model must
also run at the resolution detectors train at, or say why it cannot. pytest-xdist spreads
the models over the CI machine's cores.
"""

from __future__ import annotations

import pytest

from tests.helpers import (
    CATALOG_TASKS,
    MANIFEST,
    ROOT,
    config_test_size,
    load_json,
    probe_catalog_model,
    repo_models,
    task_probe_models,
)

MODELS = repo_models()
MANIFEST_DATA = load_json(MANIFEST)
EXCLUDED = MANIFEST_DATA["excluded"]
#: The share of timm's architectures the package must cover.
MIN_COVERAGE = 0.99
#: The share of the generated catalog that must run at detection resolution: a COCO image
#: of 427x640 has a long side of at least :data:`DETECTION_LONG_SIDE` after the YAML's
#: own test resize (detectron2's 800/1333 gives 1200, ViTDet's 1024 square 1024).
MIN_AT_DETECTION_RESOLUTION = 0.97
DETECTION_LONG_SIDE = 1024
COCO_IMAGE = (427, 640)


def test_every_timm_architecture_is_generated_or_excluded_with_a_reason():
    import timm

    listed = set(timm.list_models())
    generated, excluded = {name for name, _ in MODELS}, set(EXCLUDED)
    assert MANIFEST_DATA["versions"]["timm"] == timm.__version__, "regenerate: `make generate`"
    assert not generated & excluded
    assert listed - generated - excluded == set(), "neither generated nor excluded"
    assert (generated | excluded) - listed == set(), "not listed by the installed timm"
    assert len(generated) >= MIN_COVERAGE * len(listed), f"{len(generated)} of {len(listed)} generated"
    for name, entry in EXCLUDED.items():
        reason = entry["reason"]
        assert len(reason) > 20 and "unsupported" != reason.strip().lower(), (name, reason)


def test_the_support_matrix_has_one_row_per_architecture():
    rows = [line for line in (MANIFEST.parent / "SUPPORT.md").read_text().splitlines() if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert sorted(names) == sorted([name for name, _ in MODELS] + list(EXCLUDED))
    for row in rows:
        name = row.split("`")[1]
        status = "not generated" if name in EXCLUDED else "generated"
        assert row.split(" | ")[2] == status, row


def test_the_catalog_runs_at_detection_resolution():
    """After each FPN seed's own test resize, a 427x640 image reaches a long side of 1024
    or more for 97 % of the catalog; every model below that states why it cannot move."""
    from tests.helpers import generated_class, model_config

    low = {}
    for model, family in MODELS:
        cfg = model_config(model, family, register=False)
        long_side = max(config_test_size(cfg, COCO_IMAGE))
        if long_side < DETECTION_LONG_SIDE:
            low[model] = long_side
    share = 1 - len(low) / len(MODELS)
    assert share >= MIN_AT_DETECTION_RESOLUTION, f"{len(low)} of {len(MODELS)} below detection resolution: {low}"
    for model in low:
        reason = generated_class(model).FIXED_REASON
        assert len(reason) > 20, f"{model} runs at a long side of {low[model]} and does not say why"
        support = (ROOT / "generated" / "SUPPORT.md").read_text()
        assert reason in support.replace("\\|", "|"), model


TASKS = task_probe_models(MODELS)


def test_the_task_probes_cover_every_task_and_signature():
    from tests.helpers import task_probe_signature

    chosen = {(model, task) for model, tasks in TASKS.items() for task in tasks}
    signatures = {task_probe_signature(model, family, task) for model, family in MODELS for task in CATALOG_TASKS}
    assert len(chosen) == len(signatures) and {task for _, task in chosen} == set(CATALOG_TASKS)
    # channels are timm's side (checked for every model); strides and input rules the heads'
    same = [("resnet18", "resnet"), ("resnet50", "resnet")]
    other = [("resnet18", "resnet"), ("levit_128s", "levit"), ("deit_tiny_patch16_224", "deit")]
    for task in CATALOG_TASKS:
        assert len({task_probe_signature(m, f, task) for m, f in same}) == 1
        assert len({task_probe_signature(m, f, task) for m, f in other}) == len(other)


@pytest.mark.parametrize("model, family", MODELS, ids=[name for name, _ in MODELS])
def test_catalog_model(model, family):
    probe_catalog_model(model, family, tasks=TASKS[model])
