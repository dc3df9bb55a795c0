"""Model registry: ``arch`` name -> builder, with a family tag and the modalities it accepts.

``build_model(arch, kwargs, input_info, num_classes)`` is the one entry point (like ``timm.create_model``).
``arch: timm:<name>`` builds any timm model with the task's classes and input channels (and, for models that take
one, the task's image size), so vision and speech (a 1-channel spectrogram image) get all of timm for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from finebench.config import did_you_mean
from finebench.errors import ConfigError, FinebenchError

TIMM_PREFIX = "timm:"


@dataclass
class Arch:
    name: str
    family: str
    modalities: tuple[str, ...]
    builder: Callable  # (input_info: dict, num_classes: int, **kwargs) -> nn.Module
    description: str = ""


ARCHS: dict[str, Arch] = {}


def register(name: str, family: str, modalities: tuple[str, ...], description: str = ""):
    def deco(fn):
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHS[name] = Arch(name, family, modalities, fn, description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return deco


def default_family(arch: str) -> str | None:
    return ARCHS[arch].family if arch in ARCHS else None


def known_archs(modality: str) -> list[str]:
    return sorted(n for n, a in ARCHS.items() if modality in a.modalities)


def check_arch(arch: str, modality: str, key: str = "arch") -> None:
    """Raise ConfigError naming ``key`` if ``arch`` cannot be built for ``modality``."""
    if arch.startswith(TIMM_PREFIX):
        import timm

        name = arch[len(TIMM_PREFIX) :]
        if modality == "text":
            raise ConfigError(f"{key}: timm models take images/spectrograms, not token sequences ({arch!r} on text)")
        if not timm.is_model(name):
            raise ConfigError(
                f"{key}: unknown timm architecture {name!r}{did_you_mean(name, timm.list_models())}; "
                f"any name from timm.list_models() works after 'timm:' ({len(timm.list_models())} known)"
            )
        return
    if arch not in ARCHS or modality not in ARCHS[arch].modalities:
        valid = known_archs(modality)
        where = f"for {modality}" if arch not in ARCHS else f"for {modality} ({arch!r} is for {', '.join(ARCHS[arch].modalities)})"
        raise ConfigError(
            f"{key}: unknown architecture {arch!r} {where}{did_you_mean(arch, valid)}; "
            f"valid: {', '.join(valid)}, or 'timm:<any timm model name>'" + (" (vision/speech only)" if modality == "text" else "")
        )


def build_model(arch: str, kwargs: dict, input_info: dict, num_classes: int):
    """Build an untrained model for a task with ``input_info`` (the prepared manifest's ``input``)."""
    if arch.startswith(TIMM_PREFIX):
        return _build_timm(arch[len(TIMM_PREFIX) :], dict(kwargs), input_info, num_classes)
    try:
        return ARCHS[arch].builder(input_info, num_classes, **kwargs)
    except TypeError as exc:
        raise FinebenchError(f"architecture {arch!r}: bad option in the model's config entry: {exc}") from exc


def _build_timm(name: str, kwargs: dict, input_info: dict, num_classes: int):
    import timm

    kwargs.setdefault("pretrained", False)
    kwargs["num_classes"] = num_classes
    kwargs["in_chans"] = input_info.get("channels", 1)
    hw = image_hw(input_info)
    if "img_size" not in kwargs:
        # Models with a fixed token grid (ViT, DeiT, Swin...) take the task's size; CNNs don't accept the kwarg.
        try:
            return timm.create_model(name, img_size=hw, **kwargs)
        except TypeError:
            pass
    try:
        return timm.create_model(name, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise FinebenchError(f"timm:{name}: could not build with {kwargs}: {exc}") from exc


def image_hw(input_info: dict) -> tuple[int, int]:
    if input_info["kind"] == "image":
        return (input_info["height"], input_info["width"])
    if input_info["kind"] == "spectrogram":
        return (input_info["n_mels"], input_info["frames"])
    raise FinebenchError(f"input kind {input_info['kind']!r} is not an image")
