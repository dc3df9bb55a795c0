"""Model registry. Importing this package registers every built-in architecture."""

from finebench.models.registry import (ARCHS, TIMM_PREFIX, arch_task_type, build_model, check_arch, default_family,
                                       known_archs, register)
from finebench.models import superres, text, vision  # noqa: F401  (registers)

__all__ = ["ARCHS", "TIMM_PREFIX", "arch_task_type", "build_model", "check_arch", "default_family", "known_archs", "register"]
