"""Model registry: ``arch`` name -> builder, with a family tag, the modalities it accepts and its preprocessing.

``build_model(arch, kwargs, input_info, num_classes)`` is the one entry point (like ``timm.create_model``).
``arch: timm:<name>`` builds any timm model with the task's classes and input channels (and, for models that take
one, the task's image size), so vision and speech (a 1-channel spectrogram image) get all of timm for free.

Importing this module (and finebench.models) imports neither torch nor timm: built-in architectures are *declared*
with the dotted path of their class (``declare``), resolved on first build, so a config check and Snakemake's DAG
stay light. ``register`` (a decorator) still adds an eager builder function.

The registry also holds each model's facts that consumers ask for instead of hard-coding them:
- :func:`preprocessing` — the mean/std/interpolation a model's inputs need: a pretrained timm model's own (its
  weights' ``pretrained_cfg`` via ``timm.data.resolve_model_data_config``), else the finebench default ([-1, 1]);
- :func:`param_groups` — weight-decay groups that honour a model's ``no_weight_decay()`` (as timm's optimizer
  factory does), besides biases and norm weights;
- :func:`check_options` — a config entry's builder options against the builder's signature, with did-you-mean.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from finebench.errors import ConfigError, FinebenchError, did_you_mean

if TYPE_CHECKING:  # torch is imported where a model is built, not with the registry
    import torch

TIMM_PREFIX = "timm:"
# Keys of a model's entry consumed by finebench itself, never passed to a builder.
LOADING_KEYS = ("pretrained_file",)
# Architectures whose name changed: the config check names the new one instead of failing with "unknown".
RENAMED = {"row_lstm": "column_rnn"}  # an RNN over columns/frames (LSTM or GRU), not PixelRNN's Row LSTM


@dataclass
class Arch:
    name: str
    family: str
    modalities: tuple[str, ...]
    target: str | Callable  # "module:Class" (resolved lazily) or a builder (input_info, num_classes, **kw) -> nn.Module
    description: str = ""
    task_type: str = "classification"  # the task type it solves (a registered one: finebench.tasks)

    @property
    def builder(self) -> Callable:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            builder: Callable = getattr(importlib.import_module(module), attr)
            self.target = builder
            return builder
        return self.target


ARCHS: dict[str, Arch] = {}


def declare(name: str, family: str, modalities: tuple[str, ...], target: str, description: str,
            task_type: str = "classification") -> None:
    """Add a built-in architecture by the dotted path of its class (``"finebench.models.text:TextCNN"``)."""
    if name in ARCHS:
        raise ValueError(f"architecture {name!r} registered twice")
    ARCHS[name] = Arch(name, family, modalities, target, description, task_type)


def register(name: str, family: str, modalities: tuple[str, ...], description: str = "",
             task_type: str = "classification"):
    def deco(fn):
        if name in ARCHS:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHS[name] = Arch(name, family, modalities, fn, description or (fn.__doc__ or "").strip().split("\n")[0],
                           task_type)
        return fn

    return deco


def default_family(arch: str) -> str | None:
    if arch.startswith("hf:"):  # pretrained Hugging Face Transformers (models/hf.py)
        return "transformer"
    return ARCHS[arch].family if arch in ARCHS else None


def known_archs(modality: str) -> list[str]:
    return sorted(n for n, a in ARCHS.items() if modality in a.modalities)


def arch_task_type(arch: str) -> str:
    """The task type an architecture is declared for: ``timm:`` models and unknown names are classifiers."""
    from finebench.tasks.registry import LEGACY

    return ARCHS[arch].task_type if arch in ARCHS else LEGACY


def solves(arch: str, task_type: str) -> bool:
    """Whether ``arch`` runs on tasks of ``task_type``: the task type says (finebench.tasks: ``TaskType.runs`` — the
    architectures declared for it or for the types it heads, and hf: models where models/hf.py heads them for it)."""
    from finebench.tasks import get

    return get(task_type).runs(arch, arch_task_type(arch))


def check_arch(arch: str, modality: str, key: str = "arch") -> None:
    """Raise ConfigError naming ``key`` if ``arch`` cannot be built for ``modality``."""
    if arch.startswith("hf:"):  # pretrained Hugging Face Transformers (models/hf.py)
        from finebench.models.hf import check_hf_arch

        return check_hf_arch(arch[3:], modality, key)
    if arch in RENAMED:
        raise ConfigError(f"{key}: architecture {arch!r} is now called {RENAMED[arch]!r} (same model and options); "
                          f"write `arch: {RENAMED[arch]}`")
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
        where = (f"for {modality}" if arch not in ARCHS
                 else f"for {modality} ({arch!r} is for {', '.join(ARCHS[arch].modalities)})")
        raise ConfigError(
            f"{key}: unknown architecture {arch!r} {where}{did_you_mean(arch, valid)}; "
            f"valid: {', '.join(valid)}, or 'timm:<any timm model name>'"
            + (" (vision/speech only)" if modality == "text" else "")
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


def builder_parameters(arch: str, input_info: dict) -> list[str] | None:
    """The option names the builder of ``arch`` accepts (None: it takes any keyword)."""
    if arch.startswith(TIMM_PREFIX):
        import torch

        with torch.device("meta"):  # no memory, no weights: just the class
            cls = type(_create_timm(arch[len(TIMM_PREFIX) :], {}, input_info, 2))
        fn = cls.__init__
    else:
        fn = ARCHS[arch].builder
        fn = fn.__init__ if inspect.isclass(fn) else fn
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name not in ("self", "input_info", "num_classes")]


def check_options(arch: str, kwargs: dict, input_info: dict, key: str, reserved=()) -> None:
    """Raise ConfigError naming ``key.<option>`` for an option the builder does not take (imports torch); the
    suggestions include the entry's ``reserved`` keys (``famly`` -> ``family``)."""
    if arch.startswith("hf:"):  # options of hf: models are checked against the checkpoint's config when it loads
        return
    options = {k: v for k, v in kwargs.items() if k not in LOADING_KEYS}
    if arch.startswith(TIMM_PREFIX):
        import torch

        try:
            with torch.device("meta"):  # builds no weights
                _create_timm(arch[len(TIMM_PREFIX) :], {**options, "pretrained": False}, input_info, 2)
            return
        except FinebenchError as exc:
            cause = exc.__cause__
        except TypeError as exc:
            cause = exc
        except Exception:  # shapes that only the task's real input size decides: left to the real build
            return
        if not isinstance(cause, TypeError):
            return
        known = builder_parameters(arch, input_info) or []
        bad = [k for k in options if f"'{k}'" in str(cause)] or list(options)
        raise ConfigError(f"{key}.{bad[0]}: not an option of {arch} ({cause})"
                          f"{did_you_mean(bad[0], [*known, *reserved])}") from None
    valid = builder_parameters(arch, input_info)
    if valid is None:
        return
    for opt in options:
        if opt not in valid:
            raise ConfigError(f"{key}.{opt}: not an option of architecture {arch!r}"
                              f"{did_you_mean(opt, [*valid, *reserved])}; its options: {', '.join(valid)}")


def pretrained_weights(kwargs: dict) -> str | None:
    """What a model starts from: None (from scratch), "hub" or the local file's name."""
    if kwargs.get("pretrained_file"):
        return Path(kwargs["pretrained_file"]).name
    return "hub" if kwargs.get("pretrained") else None


def preprocessing(arch: str, kwargs: dict, model) -> dict:
    """Mean / std / interpolation for image inputs: a pretrained timm model's own, else the finebench default."""
    from finebench.loader import DEFAULT_PREPROCESS

    if arch.startswith(TIMM_PREFIX) and pretrained_weights(kwargs):
        from timm.data import resolve_model_data_config

        cfg = resolve_model_data_config(model)
        return {"mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]), "interpolation": cfg["interpolation"],
                "source": f"timm pretrained_cfg ({getattr(model, 'pretrained_cfg', {}).get('tag') or 'default'})"}
    return {**DEFAULT_PREPROCESS, "source": "finebench default (trained from scratch)"}


def param_groups(model, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and the rest — biases, norm weights (any tensor with ndim <= 1) and the
    parameters the model exempts through ``no_weight_decay()`` (timm's convention: position embeddings, class
    tokens; names or fnmatch patterns, a module name covering its parameters)."""
    exempt = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()

    def exempted(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") or fnmatch.fnmatch(name, p) for p in exempt)

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") or exempted(name) else decay).append(p)
    if hasattr(model, "lr_scales"):  # per-parameter lr multipliers, e.g. layer-wise decay of hf: models (models/hf.py)
        return lr_scaled_groups(model.lr_scales(), decay, no_decay, weight_decay)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_scaled_groups(scales: dict, decay: list, no_decay: list, weight_decay: float) -> list[dict]:
    """The decay / no-decay split further split by lr multiplier (``lr_scale``: the trainer's lr times it)."""
    by_id = {id(p): s for p, s in scales.items()}
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}  # (weight decay, lr scale): parameters
    for params, wd in ((decay, weight_decay), (no_decay, 0.0)):
        for p in params:
            groups.setdefault((wd, by_id.get(id(p), 1.0)), []).append(p)
    # full-lr groups first: the trainer logs the first group's lr
    return [{"params": ps, "weight_decay": wd, "lr_scale": s}
            for (wd, s), ps in sorted(groups.items(), key=lambda kv: (-kv[0][1], -kv[0][0]))]


def _build_timm(name: str, kwargs: dict, input_info: dict, num_classes: int):
    pretrained_file = kwargs.pop("pretrained_file", None)
    if pretrained_file:
        model = _create_timm(name, {**kwargs, "pretrained": False}, input_info, num_classes)
        load_pretrained_file(model, pretrained_file)
        return model
    if kwargs.get("pretrained"):
        from finebench.prefetch import check_timm_offline, missing_hint  # offline jobs read the prefetched cache

        check_timm_offline(name)
        try:
            return _create_timm(name, kwargs, input_info, num_classes)
        except FinebenchError:
            raise
        except Exception as exc:  # hub unreachable, no weights for this name, ...
            raise FinebenchError(
                f"timm:{name}: could not fetch pretrained weights ({type(exc).__name__}: {exc}). {missing_hint()}"
                f"Offline? Download the "
                f"weights elsewhere (e.g. timm.create_model('{name}', pretrained=True) and "
                f"torch.save(model.state_dict(), '{name}.pth')) and set `pretrained_file: /path/to/{name}.pth` "
                f"(or .safetensors) in the model's entry"
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

        state: dict = load_file(str(p))
    else:
        import pickle

        try:
            state = torch.load(p, map_location="cpu", weights_only=True)  # a pickle could run any code
        except pickle.UnpicklingError as exc:
            raise FinebenchError(
                f"pretrained_file: {p} holds objects other than tensors and plain values, and finebench loads weights "
                f"only, so that a file cannot run code when it is read. Save the weights alone — "
                f"torch.save(model.state_dict(), '{p.name}') — or as .safetensors "
                f"({str(exc).splitlines()[-1][:200]})") from None
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
