"""The requests of the ``global`` job kind (:mod:`explainlm.services.behaviour`): what every global
job reads (:class:`GlobalRequest`: the model and the texts) and each analysis's own options, all
validated before any model loads. ``resume_keys`` name the options a resumed run must agree on.

>>> ImportanceRequest(texts=["a fine film"], model="m").resume_keys[-3:]
('method', 'method_params', 'target')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from explainlm.services.base import ServiceRequest

OUTPUT_SUFFIXES = (".json", ".parquet", ".html", ".htm", ".png", ".svg")
PERTURBATION = {"occlusion", "lime", "kernel_shap"}


class GlobalRequest(ServiceRequest):
    """What every global job reads: the model and the texts (a dataset, a file, or given texts)."""

    model: str = "smollm2-135m"
    task: Literal["sequence_classifier", "zero_shot"] | None = None
    labels: list[str] | None = None
    template: str | None = None
    calibrate: bool | None = None
    chat: bool | None = None
    endpoint: dict[str, Any] = Field(default_factory=dict, description="Black-box options.")
    dataset: str | None = Field(None, description="Built-in dataset name or a TSV/CSV/JSONL file.")
    split: str | None = None
    data_dir: str | None = None
    text_column: str = "text"
    label_column: str | None = "label"
    texts: list[str] | None = None
    gold: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    device: str | None = None
    max_batch_tokens: int = Field(2048, ge=16)
    chunk_size: int = Field(32, ge=1)
    resume: str | None = None
    seed: int = 0
    n_boot: int = Field(1000, ge=1)
    outputs: list[str] = Field(default_factory=list)
    # options that decide what a stored item holds: a resumed run must agree on them
    resume_keys: ClassVar[tuple[str, ...]] = ("model", "dataset", "split", "limit", "texts")

    @model_validator(mode="after")
    def _one_source(self) -> GlobalRequest:
        if (self.dataset is None) == (self.texts is None):
            raise ValueError("give either a dataset or texts")
        if self.texts is not None and not all(t.strip() for t in self.texts):
            raise ValueError("texts must not be empty")
        if self.gold is not None and (self.texts is None or len(self.gold) != len(self.texts)):
            raise ValueError("gold needs one label per text")
        for out in self.outputs:
            if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
                raise ValueError(f"output {out!r}: use .json, .parquet, .html, .png or .svg")
        return self


class _Attributing(GlobalRequest):
    method: str = "occlusion"
    method_params: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None
    resume_keys: ClassVar[tuple[str, ...]] = (
        *GlobalRequest.resume_keys,
        "method",
        "method_params",
        "target",
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from explainlm.methods import METHODS

        if v not in METHODS:
            raise ValueError(f"unknown method {v!r}; known: {', '.join(METHODS)}")
        return v


class ImportanceRequest(_Attributing):
    command: ClassVar[str] = "global-importance"
    ngram_max: int = Field(1, ge=1, le=5)
    min_count: int = Field(5, ge=1)
    min_texts: int = Field(2, ge=1)
    group_by: Literal["explained", "gold", "none"] = "explained"
    rank: Literal["mean", "mean_abs", "total", "lower"] = "mean"
    top: int = Field(20, ge=1)
    check_faithfulness: int = Field(50, ge=0, description="Texts for the faithfulness check.")


class SurrogateRequest(_Attributing):
    command: ClassVar[str] = "global-surrogate"
    kinds: list[Literal["tree", "logistic"]] = Field(default_factory=lambda: ["tree", "logistic"])
    features: list[Literal["bow", "top_words"]] = Field(default_factory=lambda: ["bow"])
    top_k: int = Field(100, ge=1, description="Top attributed words used as features.")
    importance_run: str | None = None
    ngram_max: int = Field(1, ge=1, le=3)
    min_df: int = Field(2, ge=1)
    test_size: float = Field(0.3, gt=0, lt=1)
    tree_depth: int = Field(3, ge=1)
    max_depth: int = Field(8, ge=1)
    max_nonzero: int = Field(50, ge=1)


class SensitivityRequest(_Attributing):
    command: ClassVar[str] = "global-sensitivity"
    importance_run: str | None = None
    x: Literal["fraction", "count"] = "fraction"
    grid: list[float] | None = None
    n_random: int = Field(5, ge=1)
    replace: Literal["remove", "mask", "pad"] = "remove"
    resume_keys: ClassVar[tuple[str, ...]] = (
        *_Attributing.resume_keys,
        "x",
        "grid",
        "n_random",
        "replace",
        "seed",
    )


class LayersRequest(GlobalRequest):
    command: ClassVar[str] = "global-layers"
    points: list[str] = Field(default_factory=lambda: ["layers.*.resid_post"])
    method: Literal["grad_x_activation", "grad_cam", "integrated_gradients"] = "grad_x_activation"
    steps: int = Field(32, ge=1)
    baseline: Literal["pad", "mask", "zero"] = "pad"
    target: str | None = None
    limit: int | None = Field(None, ge=1, description="Default: 20 texts of a dataset.")
