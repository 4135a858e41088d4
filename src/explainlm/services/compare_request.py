"""The options of ``explainlm compare`` (:class:`CompareRequest`), validated before any model loads:
variant specs (:mod:`explainlm.compression.spec`), methods and their parameters, faithfulness
metrics. :mod:`explainlm.services.compare` runs the comparison.

>>> CompareRequest(reference="m", variants="int8", method_params=["lime.n_samples=200"],
...                methods="occlusion,lime").method_params
{'lime': {'n_samples': 200}}
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.services.base import ServiceRequest

DEFAULT_METHODS = ["occlusion", "integrated_gradients", "kernel_shap"]


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _params(value: Any) -> Any:
    """``["lime.n_samples=200"]`` (the CLI's ``--param``) → ``{"lime": {"n_samples": 200}}``."""
    if not isinstance(value, (list, tuple)):
        return value if value is not None else {}
    import json

    out: dict[str, dict[str, Any]] = {}
    for item in value:
        key, sep, raw = str(item).partition("=")
        method, dot, name = key.partition(".")
        if not (sep and dot and method and name):
            raise ValueError(f"a method parameter is METHOD.NAME=VALUE, got {item!r}")
        try:
            parsed: Any = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        out.setdefault(method, {})[name] = parsed
    return out


CsvList = Annotated[list[str], BeforeValidator(_csv)]
MethodParams = Annotated[dict[str, dict[str, Any]], BeforeValidator(_params)]


class CompareRequest(ServiceRequest):
    """Every option of ``explainlm compare``."""

    command: ClassVar[str] = "compare"

    reference: str = Field(description="Reference model: built-in name, directory or hub id.")
    variants: CsvList = Field(min_length=1, description="Variant specs, e.g. int8, rtn4:g32.")
    dataset: str = Field("sst2", description="Dataset name or labelled file.")
    split: str | None = None
    limit: int | None = Field(None, ge=1)
    data_dir: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    methods: CsvList = Field(default_factory=lambda: list(DEFAULT_METHODS))
    method_params: MethodParams = Field(default_factory=dict)
    metrics: CsvList = Field(default_factory=lambda: ["comprehensiveness", "sufficiency"])
    target_label: str = Field("reference", pattern="^(reference|gold|own)$")
    top_k: int = Field(5, ge=1)
    chunk_size: int = Field(16, ge=1)
    rounds: int = Field(5, ge=1)
    timing_texts: int = Field(32, ge=1)
    max_batch_tokens: int = Field(4096, ge=16)
    calibration_split: str | None = Field(
        None, description="Split whose texts score head importance (heads variants)."
    )
    task: str | None = None
    labels: CsvList | None = None
    template: str | None = None
    calibrate: bool | None = None
    device: str | None = None
    resume: str | None = None

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[str]) -> list[str]:
        from explainlm.compression.spec import parse_variant

        specs = [str(parse_variant(v)) for v in value]
        if len(set(specs)) != len(specs):
            raise ValueError("a variant is listed twice")
        return specs

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        from explainlm.methods import METHODS

        unknown = [m for m in value if m not in METHODS]
        if unknown or not value:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str]) -> list[str]:
        from explainlm.evaluation import METRICS

        bad = [m for m in value if m not in METRICS or METRICS[m].family != "faithfulness"]
        if bad:
            raise ValueError(f"not faithfulness metrics: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _check_params(self) -> CompareRequest:
        from explainlm.methods import get_method

        extra = set(self.method_params) - set(self.methods)
        if extra:
            raise ValueError(f"parameters for methods not requested: {', '.join(sorted(extra))}")
        for m in self.methods:
            try:
                get_method(m, **self.method_params.get(m, {}))
            except UserError as e:
                raise ValueError(str(e)) from None
        return self

    def task_options(self) -> dict[str, Any]:
        opts = {"labels": self.labels, "template": self.template, "calibrate": self.calibrate}
        return {k: v for k, v in opts.items() if v is not None}
