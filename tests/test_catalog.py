"""The catalog test: every architecture timm lists is either generated and passes, or is
listed in the manifest with the reason it is not.

For every generated model, the FPN backbone is built through detectron2's registry from
its emitted ``<model>_fpn.yaml`` on the meta device (no memory, no weights, no compute)
and forwarded at two non-square sizes the model declares it takes; the FPN maps and the
maps of the plain backbone inside it must be exactly what the YAML and the class
constants declare (see :func:`tests.helpers.probe_catalog_model`). pytest-xdist spreads
the models over the CI machine's cores.
"""

from __future__ import annotations

import pytest

from tests.helpers import MANIFEST, load_json, probe_catalog_model, repo_models

MODELS = repo_models()
MANIFEST_DATA = load_json(MANIFEST)
EXCLUDED = MANIFEST_DATA["excluded"]
#: The share of timm's architectures the package must cover.
MIN_COVERAGE = 0.99


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


@pytest.mark.parametrize("model, family", MODELS, ids=[name for name, _ in MODELS])
def test_catalog_model(model, family):
    probe_catalog_model(model, family)
