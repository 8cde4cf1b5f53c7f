"""Creating the timm model, with local or hub weights, and clear errors when loading fails."""

from typing import Dict, Optional, Tuple, Union

import torch

from .resample import resample_state_dict

__all__ = ["CheckpointError", "create_timm_features", "resampled_state_dict"]


class CheckpointError(RuntimeError):
    """A weight file that is missing, corrupt or does not fit the model."""


def _summary(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _where(pretrained: Union[bool, str]) -> str:
    return "timm's hub weights" if pretrained is True else str(pretrained)


def _pretrained_kwargs(pretrained: Union[bool, str]) -> dict:
    """timm's own pretrained path: the hub, or a local file through
    ``pretrained_cfg_overlay=dict(file=...)`` (timm's key filters apply, classifier keys
    are dropped, ``weights_only=True``, ``.safetensors`` supported)."""
    if pretrained is True:
        return dict(pretrained=True)
    return dict(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained)))


def resampled_state_dict(
    cls, pretrained: Union[bool, str], img_size: int
) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint saved at the model's pretrained size (``cls.INPUT_SIZE``),
    resampled for the model built at ``img_size``.

    timm loads the checkpoint into the classifier at the pretrained size (so its own key
    conversions apply, as for any timm checkpoint); the parameters ``cls.GRID_PARAMS``
    names are then resampled to the shapes of the model at ``img_size``, built on the meta
    device for its shapes alone.
    """
    import timm

    kwargs = dict(getattr(cls, "CREATE_KWARGS", None) or {})
    try:
        source = timm.create_model(
            cls.TIMM_MODEL, img_size=cls.INPUT_SIZE[0], **kwargs, **_pretrained_kwargs(pretrained)
        )
    except Exception as exc:
        raise CheckpointError(
            f"cannot load {_where(pretrained)} into timm's {cls.TIMM_MODEL} at its pretrained size "
            f"{cls.INPUT_SIZE[0]}x{cls.INPUT_SIZE[1]} (MODEL.BACKBONE.CONFIG.PRETRAINED): {_summary(exc)}"
        ) from exc
    state_dict = source.state_dict()
    del source
    with torch.device("meta"):
        target = timm.create_model(cls.TIMM_MODEL, img_size=img_size, **kwargs)
    shapes = {key: tuple(value.shape) for key, value in target.state_dict().items()}
    what = f"{cls.TIMM_MODEL} built at {img_size}x{img_size} (MODEL.BACKBONE.CONFIG.IMG_SIZE)"
    try:
        return resample_state_dict(state_dict, shapes, cls.GRID_PARAMS, what)
    except ValueError as exc:
        raise CheckpointError(f"cannot load {_where(pretrained)}: {exc}") from None


def create_timm_features(
    cls,
    out_indices: Tuple[int, ...],
    pretrained: Union[bool, str],
    in_chans: int = 3,
    img_size: Optional[int] = None,
    output_stride: int = 0,
    drop_path_rate: float = 0.0,
):
    """timm's ``features_only`` model for a generated backbone class.

    Weights load through timm's own pretrained path, before the features wrapper is
    applied. Built at an ``img_size`` other than the pretrained one, the model gets the
    checkpoint resampled by :func:`resampled_state_dict`
    (``pretrained_cfg_overlay=dict(state_dict=...)``). A dilated ``output_stride`` changes
    no parameter: the checkpoint loads as it is.
    """
    import timm

    kwargs = dict(getattr(cls, "CREATE_KWARGS", None) or {})
    kwargs.update(features_only=True, out_indices=tuple(out_indices), in_chans=in_chans)
    if img_size:
        kwargs["img_size"] = img_size
    if output_stride:
        kwargs["output_stride"] = output_stride
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    if pretrained and img_size and img_size != cls.INPUT_SIZE[0] and cls.GRID_PARAMS:
        state_dict = resampled_state_dict(cls, pretrained, img_size)
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(state_dict=state_dict))
    elif pretrained:
        kwargs.update(_pretrained_kwargs(pretrained))
    try:
        return timm.create_model(cls.TIMM_MODEL, **kwargs)
    except TypeError as exc:
        if drop_path_rate and "drop_path_rate" in str(exc):
            raise ValueError(
                f"MODEL.BACKBONE.CONFIG.DROP_PATH_RATE: {drop_path_rate!r} is not valid for {cls.TIMM_MODEL}, "
                "whose timm model has no drop path (stochastic depth); valid: 0.0"
            ) from None
        raise
    except Exception as exc:
        if pretrained:
            raise CheckpointError(
                f"cannot load {_where(pretrained)} into timm's {cls.TIMM_MODEL} "
                f"(MODEL.BACKBONE.CONFIG.PRETRAINED): {_summary(exc)}"
            ) from exc
        raise
