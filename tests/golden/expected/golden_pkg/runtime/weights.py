"""Creating the timm model, with local or hub weights, and clear errors when loading fails."""

from typing import Tuple, Union

__all__ = ["CheckpointError", "create_timm_features"]


class CheckpointError(RuntimeError):
    """A weight file that is missing, corrupt or does not fit the model."""


def _summary(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def create_timm_features(
    cls, out_indices: Tuple[int, ...], pretrained: Union[bool, str], in_chans: int = 3
):
    """timm's ``features_only`` model for a generated backbone class.

    A local checkpoint is loaded through timm's own pretrained path
    (``pretrained_cfg_overlay=dict(file=...)``), before the features wrapper is applied,
    so timm's key filters for the architecture apply and classifier keys are dropped.
    timm loads it with ``weights_only=True``; ``.safetensors`` files are supported.
    """
    import timm

    kwargs = dict(getattr(cls, "CREATE_KWARGS", None) or {})
    kwargs.update(features_only=True, out_indices=tuple(out_indices), in_chans=in_chans)
    if pretrained is True:
        kwargs["pretrained"] = True
    elif pretrained:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained)))
    try:
        return timm.create_model(cls.TIMM_MODEL, **kwargs)
    except Exception as exc:
        if isinstance(pretrained, str):
            raise CheckpointError(
                f"cannot load {pretrained} into timm's {cls.TIMM_MODEL} "
                f"(MODEL.BACKBONE.CONFIG.PRETRAINED): {_summary(exc)}"
            ) from exc
        raise
