"""Inside the model: hook points, activation cache, logit lens, patching, probes, head ablation.

>>> from explainlm.internals import capture, lens, trace, probe, head_importance  # doctest: +SKIP
"""

from explainlm.internals.cache import ActivationCache, capture, iter_activations, load_cache
from explainlm.internals.export import export_tensorboard
from explainlm.internals.heads import HeadImportance, head_importance
from explainlm.internals.hooks import architecture, hooks, point_names
from explainlm.internals.lens import LensResult, lens
from explainlm.internals.neurons import top_examples
from explainlm.internals.patching import TraceResult, run_patches, trace
from explainlm.internals.probing import ProbeResult, probe, probe_model

__all__ = [
    "ActivationCache",
    "HeadImportance",
    "LensResult",
    "ProbeResult",
    "TraceResult",
    "architecture",
    "capture",
    "export_tensorboard",
    "head_importance",
    "hooks",
    "iter_activations",
    "lens",
    "load_cache",
    "point_names",
    "probe",
    "probe_model",
    "run_patches",
    "top_examples",
    "trace",
]
