"""Compression and explanations: model variants (quantized, pruned) and how far they drift.

>>> from explainlm.compression import parse_variant
>>> parse_variant("rtn4").family
'quantization'

See ``docs/compression.md``.
"""

from __future__ import annotations

from explainlm.compression.compare import CompareConfig, model_pass, run_comparison
from explainlm.compression.drift import (
    DRIFT_METRICS,
    attribution_drift,
    mcnemar_exact,
    prediction_drift,
    wilson_interval,
)
from explainlm.compression.quantize import rtn_dequantize
from explainlm.compression.spec import VariantSpec, parse_variant
from explainlm.compression.summary import summarize
from explainlm.compression.variants import Variant, build_variant, model_fingerprint

__all__ = [
    "DRIFT_METRICS",
    "CompareConfig",
    "Variant",
    "VariantSpec",
    "attribution_drift",
    "build_variant",
    "mcnemar_exact",
    "model_fingerprint",
    "model_pass",
    "parse_variant",
    "prediction_drift",
    "rtn_dequantize",
    "run_comparison",
    "summarize",
    "wilson_interval",
]
