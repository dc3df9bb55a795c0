"""Model registry: ``arch`` name -> builder, with a family tag and the modalities it accepts.

``build_model(arch, kwargs, input_info, num_classes)`` is the one entry point (like ``timm.create_model``).
``arch: timm:<name>`` builds any timm model with the task's classes and input channels (and, for models that take
one, the task's image size), so vision and speech (a 1-channel spectrogram image) get all of timm for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
    if arch.startswith("hf:"):  # pretrained Hugging Face Transformers (models/hf.py)
        return "transformer"
    return ARCHS[arch].family if arch in ARCHS else None


def known_archs(modality: str) -> list[str]:
    return sorted(n for n, a in ARCHS.items() if modality in a.modalities)


def check_arch(arch: str, modality: str, key: str = "arch") -> None:
    """Raise ConfigError naming ``key`` if ``arch`` cannot be built for ``modality``."""
    if arch.startswith("hf:"):  # pretrained Hugging Face Transformers (models/hf.py)
        from finebench.models.hf import check_hf_arch

        return check_hf_arch(arch[3:], modality, key)
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
    if arch.startswith("hf:"):  # pretrained Hugging Face Transformers (models/hf.py)
        from finebench.models.hf import build_hf

        return build_hf(arch[3:], dict(kwargs), input_info, num_classes)
    if arch.startswith(TIMM_PREFIX):
        return _build_timm(arch[len(TIMM_PREFIX) :], dict(kwargs), input_info, num_classes)
    try:
        return ARCHS[arch].builder(input_info, num_classes, **kwargs)
    except TypeError as exc:
        raise FinebenchError(f"architecture {arch!r}: bad option in the model's config entry: {exc}") from exc


def _build_timm(name: str, kwargs: dict, input_info: dict, num_classes: int):
    pretrained_file = kwargs.pop("pretrained_file", None)
    if pretrained_file:
        model = _create_timm(name, {**kwargs, "pretrained": False}, input_info, num_classes)
        load_pretrained_file(model, pretrained_file)
        return model
    if kwargs.get("pretrained"):
        try:
            return _create_timm(name, kwargs, input_info, num_classes)
        except FinebenchError:
            raise
        except Exception as exc:  # hub unreachable, no weights for this name, ...
            raise FinebenchError(
                f"timm:{name}: could not fetch pretrained weights ({type(exc).__name__}: {exc}). Offline? Download the "
                f"weights elsewhere (e.g. timm.create_model('{name}', pretrained=True) and torch.save(model.state_dict(), "
                f"'{name}.pth')) and set `pretrained_file: /path/to/{name}.pth` (or .safetensors) in the model's entry"
            ) from exc
    return _create_timm(name, kwargs, input_info, num_classes)


def load_pretrained_file(model, path: str) -> dict:
    """Load a local checkpoint (``weights_only=True``, or safetensors) into ``model``: tensors whose shape matches are
    copied, a first conv with a different number of input channels is adapted (timm's ``adapt_input_conv``), and the
    rest (typically the classifier for another number of classes) keeps its fresh initialisation."""
    import torch
    from timm.models import adapt_input_conv

    p = Path(path)
    if not p.is_file():
        raise FinebenchError(f"pretrained_file: {p} not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    own = model.state_dict()
    loaded, adapted, skipped = {}, [], []
    for k, v in state.items():
        if k not in own:
            skipped.append(k)
        elif own[k].shape == v.shape:
            loaded[k] = v
        elif v.ndim == 4 and own[k].shape[0] == v.shape[0] and own[k].shape[2:] == v.shape[2:]:
            loaded[k] = adapt_input_conv(own[k].shape[1], v)
            adapted.append(k)
        else:
            skipped.append(k)
    if not loaded:
        raise FinebenchError(f"pretrained_file: {p} shares no tensor with the model — wrong architecture?")
    model.load_state_dict(loaded, strict=False)
    return {"loaded": len(loaded), "adapted": adapted, "skipped": skipped}


def _create_timm(name: str, kwargs: dict, input_info: dict, num_classes: int):
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
