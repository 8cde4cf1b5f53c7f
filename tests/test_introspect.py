"""generator.introspect's shortcuts: building without initialising meta tensors and
shape-only probe forwards give the facts a plain meta-device run gives, and the shape
errors that decide a model's input rule still happen."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

import generator.introspect as introspect
from generator.compat import meta_device, skip_meta_init

#: One model per hard case: plain CNN, ViT (dynamic size and padding), the odd-multiple
#: re-measure (mobilevitv2 needs 64), unpadded convolutions (inception), an omitted
#: resampled branch (crossvit), a token-mixing MLP that only takes its default size, a
#: fixed-size model moved to the detection size (levit), LSTMs over rows (sequencer2d).
MODELS = (
    ("resnet18", "resnet"),
    ("vit_tiny_patch16_224", "vision_transformer"),
    ("mobilevitv2_050", "mobilevit"),
    ("inception_v3", "inception_v3"),
    ("crossvit_tiny_240", "crossvit"),
    ("mixer_s16_224", "mlp_mixer"),
    ("levit_128s", "levit"),
    ("sequencer2d_s", "sequencer"),
)


@contextlib.contextmanager
def _plain_meta():
    """Creation on the meta device with initialisation, and forwards without shortcuts."""
    with torch.device("meta"):
        yield


@pytest.mark.parametrize("model, family", MODELS, ids=[m for m, _ in MODELS])
def test_shortcuts_measure_what_a_plain_meta_run_measures(model, family, monkeypatch):
    fast = introspect.introspect(model, family)
    monkeypatch.setattr(introspect, "_shape_only_mode", contextlib.nullcontext)
    monkeypatch.setattr("generator.compat.meta_device", _plain_meta)
    plain = introspect.introspect(model, family)
    assert fast == plain


def _probe(module: nn.Module, shape):
    with torch.no_grad():
        return module(torch.empty(*shape, device="meta"))


@pytest.mark.parametrize(
    "layers, shape",
    [
        (lambda: (nn.Conv2d(3, 8, 3), nn.BatchNorm2d(4)), (1, 3, 16, 16)),
        (lambda: (nn.Conv2d(3, 9, 3), nn.GroupNorm(2, 8)), (1, 3, 16, 16)),
        (lambda: (nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 6)), (1, 3, 16, 16)),
        (lambda: (nn.Flatten(), nn.LayerNorm(100)), (1, 1, 8, 8)),
        (lambda: (nn.Flatten(), nn.Linear(100, 4)), (1, 1, 8, 8)),
    ],
    ids=["batch_norm", "group_norm_groups", "group_norm_affine", "layer_norm", "linear"],
)
def test_shape_only_forwards_fail_where_real_ones_do(layers, shape):
    with torch.device("meta"):
        net = nn.Sequential(*layers()).eval()
    with pytest.raises(RuntimeError):
        _probe(net, shape)
    with pytest.raises(RuntimeError), introspect._shape_only_mode():
        _probe(net, shape)


def test_shape_only_forwards_give_real_shapes_and_memory_formats():
    with torch.device("meta"):
        net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.GELU(), nn.GroupNorm(2, 8), nn.Flatten(2),
            nn.LayerNorm(49), nn.Linear(49, 5), nn.Dropout(), nn.SiLU(),
        ).eval()  # fmt: skip
    x = torch.empty(2, 3, 16, 16, device="meta").to(memory_format=torch.channels_last)
    plain = _probe(net, x.shape)
    with introspect._shape_only_mode():
        fast = _probe(net, x.shape)
    assert fast.shape == plain.shape == (2, 8, 5) and fast.is_meta
    bn = nn.BatchNorm2d(3, device="meta").eval()
    with torch.no_grad(), introspect._shape_only_mode():
        assert bn(x).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_shape_only_lstm_gives_real_shapes_and_fails_where_the_real_one_does(bidirectional, batch_first):
    """sequencer2d runs an LSTM over every row and column: a meta LSTM costs a kernel per step."""
    lstm = nn.LSTM(12, 5, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    real_out, (real_h, real_c) = lstm(torch.randn(3, 7, 12))
    lstm = lstm.to("meta")
    with torch.no_grad(), introspect._shape_only_mode():
        out, (h, c) = lstm(torch.empty(3, 7, 12, device="meta"))
        assert (out.shape, h.shape, c.shape) == (real_out.shape, real_h.shape, real_c.shape) and out.is_meta
        with pytest.raises(RuntimeError):
            lstm(torch.empty(3, 7, 11, device="meta"))


def test_meta_init_is_skipped_only_on_meta_tensors():
    real = torch.zeros(4)
    meta = torch.empty(4, device="meta")
    with skip_meta_init():
        assert nn.init.normal_(meta) is meta
        assert meta.uniform_() is meta
        nn.init.constant_(real, 3.0)
        real.add_(1.0)
    assert real.tolist() == [4.0, 4.0, 4.0, 4.0]


def test_meta_device_builds_on_meta_and_computes_linspace_on_the_cpu():
    with meta_device():
        layer = nn.Linear(4, 2)
        rates = torch.linspace(0, 1, 3)
        positions = torch.linspace(0, 1, 3, device="meta")
    assert layer.weight.is_meta and layer.weight.shape == (2, 4)
    assert rates.tolist() == [0.0, 0.5, 1.0]
    assert positions.is_meta


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda: _meta(2, 3) + _meta(4),
        lambda: torch.mul(_meta(2, 3, 5), _meta(2, 1, 4)),
        lambda: nn.functional.scaled_dot_product_attention(_meta(1, 2, 5, 8), _meta(1, 2, 6, 4), _meta(1, 2, 6, 8)),
        lambda: nn.functional.scaled_dot_product_attention(_meta(1, 2, 5, 8), _meta(1, 2, 6, 8), _meta(1, 2, 7, 8)),
    ],
    ids=["add", "mul", "attention_qk", "attention_kv"],
)
def test_shape_only_arithmetic_fails_where_real_arithmetic_does(call):
    with pytest.raises(RuntimeError):
        call()
    with pytest.raises(RuntimeError), introspect._shape_only_mode():
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: _meta(2, 3, 4) + _meta(4),
        lambda: _meta(4) + _meta(2, 3, 4),
        lambda: _meta(2, 1, 4) * _meta(1, 3, 1),  # broadcast to a new shape: the real call
        lambda: 2.0 * _meta(2, 3),
        lambda: _meta(2, 3, dtype=torch.int64) + 0.5,  # promoted: the real call
        lambda: _meta(2, 3, dtype=torch.float16) + _meta(2, 3),  # promoted: the real call
        lambda: nn.functional.scaled_dot_product_attention(_meta(1, 2, 5, 8), _meta(1, 2, 6, 8), _meta(1, 2, 6, 3)),
        lambda: nn.functional.scaled_dot_product_attention(
            _meta(1, 2, 5, 8), _meta(1, 2, 6, 8), _meta(1, 2, 6, 8), attn_mask=_meta(5, 6)
        ),
    ],
    ids=["broadcast_right", "broadcast_left", "broadcast_both", "scalar", "int_scalar", "dtypes", "attention", "mask"],
)
def test_shape_only_arithmetic_gives_real_shapes_and_dtypes(call):
    real = call()
    with introspect._shape_only_mode():
        fast = call()
    assert (fast.shape, fast.dtype, fast.is_meta) == (real.shape, real.dtype, True)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scale_factor=2, mode="nearest"),
        dict(scale_factor=2.0, mode="bilinear", align_corners=False),
        dict(scale_factor=0.5, mode="bilinear"),
        dict(scale_factor=(1.5, 0.7), mode="bicubic", align_corners=True),
        dict(scale_factor=1 / 3, mode="nearest-exact"),
        dict(size=(25, 41), mode="bilinear", align_corners=False),
        dict(size=9, mode="nearest"),
        dict(size=(4, 4), mode="area"),  # not a shortcut: the real call
    ],
    ids=["nearest_2", "bilinear_2", "bilinear_half", "bicubic_anisotropic", "nearest_exact_third", "size", "size_int", "area"],
)
def test_shape_only_interpolate_gives_real_shapes(kwargs):
    """FPN's top-down path and the semantic head's upsampling: the meta kernel of bilinear
    upsampling is a decomposition that costs a tenth of a catalog probe."""
    for side in ((13, 20), (7, 33)):
        tokens = torch.zeros(2, 1 + side[0] * side[1], 3)  # CoaT's maps: tokens after a class token, strided
        for image in (torch.zeros(2, 3, *side), tokens[:, 1:].transpose(1, 2).reshape(2, 3, *side)):
            real = nn.functional.interpolate(image, **kwargs)
            meta = torch.empty_strided(image.shape, image.stride(), device="meta")
            with torch.no_grad(), introspect._shape_only_mode():
                fast = nn.functional.interpolate(meta, **kwargs)
            assert (fast.shape, fast.stride()) == (real.shape, real.stride()) and fast.is_meta, (side, kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [dict(size=(4, 4), scale_factor=2), dict(), dict(scale_factor=2, mode="nearest", align_corners=True), dict(size=(4, 4, 4))],
    ids=["both", "neither", "align_corners_nearest", "size_of_3"],
)
def test_shape_only_interpolate_fails_where_the_real_one_does(kwargs):
    with pytest.raises(ValueError):
        nn.functional.interpolate(torch.zeros(1, 2, 8, 8), **kwargs)
    with pytest.raises(ValueError), introspect._shape_only_mode():
        nn.functional.interpolate(_meta(1, 2, 8, 8), **kwargs)
