"""The built variant: what every variant builder returns (:func:`explainlm.compression.variants.
build_variant` for the torch variants, :func:`explainlm.compression.gguf_native.llamacpp_variant`
for llama.cpp), in a module of its own so that the builders need not import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explainlm.compression.spec import VariantSpec


@dataclass
class Variant:
    """A compressed variant: its spec, the task around the modified model, and what was done."""

    spec: VariantSpec
    task: Any
    info: dict[str, Any] = field(default_factory=dict)
    gradients: bool = True  # whether gradient methods can run (not through int8 kernels)

    @property
    def name(self) -> str:
        return str(self.spec)
