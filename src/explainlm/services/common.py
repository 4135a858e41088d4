"""Request parts and option parsers shared by the services (and so by every front-end).

The option types accept what the CLI and the web API send: a list may be a JSON array or a
comma-separated string (``"occlusion,lime"``), method parameters a nested object or the CLI's
``METHOD.NAME=VALUE`` strings.

>>> parse_params(["integrated_gradients.steps=20", "lime.kernel_width=0.5"])
{'integrated_gradients': {'steps': 20}, 'lime': {'kernel_width': 0.5}}
>>> split_list("occlusion, lime")
['occlusion', 'lime']
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

DEFAULT_MODEL = "smollm2-135m"
TASKS = ("sequence_classifier", "zero_shot", "generator")


# ---------------------------------------------------------------------------------- parsers
def split_list(value: str | None) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]`` (None stays None; an empty list is an error)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UserError(f"expected a comma-separated list, got {value!r}")
    return items


def parse_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["integrated_gradients.steps=20"]`` → ``{"integrated_gradients": {"steps": 20}}``.

    Values are read as JSON when they parse (numbers, booleans, lists), else kept as strings.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method or not name:
            raise UserError(f"--param takes METHOD.NAME=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(method, {})[name] = value
    return out


def unescape(text: str | None) -> str | None:
    """A literal ``\\n`` typed on a command line becomes a newline (templates, prompts)."""
    return text.replace("\\n", "\n") if text is not None else None


def _as_list(value: Any) -> Any:
    return split_list(value) if isinstance(value, str) else value


def _as_params(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, (list, tuple)):
        return parse_params([str(v) for v in value])
    return value


def at_least_one(v: int | None) -> int | None:
    if v is not None and v < 1:
        raise UserError(f"--limit must be at least 1, got {v}")
    return v


CsvList = Annotated[list[str], BeforeValidator(_as_list)]
MethodParams = Annotated[dict[str, dict[str, Any]], BeforeValidator(_as_params)]
Limit = Annotated[int | None, AfterValidator(at_least_one)]


def check_output_file(value: str | None, option: str) -> str | None:
    """An output file that can be written: not a folder, its folder not a file (no model needed)."""
    if value is None:
        return None
    if not value.strip():
        raise UserError(f"{option} is empty: give a file name")
    path = Path(value).expanduser()
    if path.is_dir():
        raise UserError(f"{option} {value} is a folder: give the path of a file inside it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {value}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise UserError(f"{option} {value}: cannot write in {parent}")
            break
    return value


def check_target_options(target: str | None, contrast: str | None) -> None:
    """``--target`` and ``--contrast`` are not combined; a contrast names two different labels."""
    from explainlm.targets import parse_target

    if target is not None and contrast is not None:
        raise UserError(
            f"--target {target!r} and --contrast {contrast!r} conflict: a contrast is its own "
            "target (LABEL:FOIL); give one of them"
        )
    parsed = parse_target(target, contrast=contrast)  # syntax only; labels need the model
    if parsed.kind == "contrast" and parsed.label == parsed.foil:
        raise UserError(
            f"--contrast {contrast or target!r} compares a label with itself (every score "
            "would be 0); give two different labels, LABEL:FOIL"
        )


def check_methods(methods: Sequence[str], params: dict[str, dict[str, Any]]) -> None:
    """Known method names with valid parameters, each named once (no model needed)."""
    from explainlm.methods import get_method

    if not methods:
        raise UserError("no method given")
    if len(set(methods)) != len(methods):
        raise UserError(f"a method is listed twice: {', '.join(methods)}")
    unknown = set(params) - set(methods)
    if unknown:
        raise UserError(f"--param for a method not requested: {', '.join(sorted(unknown))}")
    for m in methods:
        try:
            get_method(m, **params.get(m, {}))
        except TypeError as e:
            raise UserError(f"bad parameters for {m}: {e}") from None


# --------------------------------------------------------------------------- request parts
class ModelOptions(BaseModel):
    """Which model, on which device."""

    model: str = Field(DEFAULT_MODEL, description="Built-in name, model directory or hub id.")
    device: str | None = Field(None, description="cpu, cuda, … (default: cuda when present).")


class TaskOptions(ModelOptions):
    """The model as a task: its own (default), zero-shot with labels and a template, a generator."""

    task: str | None = Field(
        None, description="sequence_classifier | zero_shot | generator (default: the model's own)."
    )
    labels: CsvList | None = Field(None, description="Zero-shot labels, e.g. negative,positive.")
    template: str | None = Field(None, description="Zero-shot prompt template with {text}.")
    calibrate: bool | None = Field(None, description="Contextual calibration of zero-shot scores.")
    chat: bool | None = Field(None, description="Wrap the prompt in the model's chat template.")

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str | None) -> str | None:
        if v is not None and v not in TASKS:
            raise UserError(f"unknown task {v!r}; known: {', '.join(TASKS)}")
        return v

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            v = [x.strip() for x in v]
            if duplicated := sorted({x for x in v if v.count(x) > 1}):
                raise UserError(f"duplicate label(s) in --labels: {', '.join(duplicated)}")
        return v

    def task_options(self) -> dict[str, Any]:
        """The keyword options of :func:`explainlm.models.make_task`."""
        return {
            "labels": self.labels,
            "template": self.template,
            "calibrate": self.calibrate,
            "chat": self.chat,
        }


class TextsInput(BaseModel):
    """Texts given inline and/or read from a file (TSV/CSV/JSONL/TXT)."""

    texts: list[str] = Field(default_factory=list, description="Texts (or use input).")
    input: str | None = Field(None, description="TSV/CSV/JSONL/TXT file of texts.")
    text_column: str = Field("text", description="Text column of the input file.")
    limit: Limit = Field(None, description="Only the first N texts.")
    encoding: str | None = Field(None, description="Text encoding of the input file (UTF-8).")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        from explainlm.datasets.tables import text_encoding

        return None if v is None else text_encoding(v)

    def read_texts(self) -> list[str]:
        """The texts to work on: inline ones, then the file's (cut to ``limit``); none empty."""
        return gather_texts(self.texts, self.input, self.text_column, self.limit, self.encoding)


class BudgetOptions(BaseModel):
    """The engine's token budget per forward pass."""

    max_batch_tokens: int = Field(
        DEFAULT_MAX_BATCH_TOKENS, ge=16, description="Token budget per pass (rows × padded length)."
    )


class PrecisionOptions(BaseModel):
    """Numeric precision of the model passes and their size (see docs/performance.md)."""

    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="auto (bf16/int8 where measured faster on this machine; the pass size too), "
        "fp32, bf16, or int8 (forward passes; gradients in fp32).",
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=16,
        description="Token budget per pass (rows × padded length); None: the size measured for "
        f"this machine under precision auto, else {DEFAULT_MAX_BATCH_TOKENS}.",
    )
    precision_plan: SkipJsonSchema[dict[str, Any] | None] = Field(
        None,
        description="The plan the run computes in, recorded when it starts (auto: what this "
        "machine's measurement chose); a resume reuses it. Not an option: set by the run.",
    )

    @field_validator("precision_plan")
    @classmethod
    def _known_plan(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        from explainlm.models.precision import PrecisionPlan

        try:
            return PrecisionPlan(**v).to_dict()
        except TypeError as e:
            raise UserError(f"precision_plan: not a precision plan ({e})") from None

    def pinned_precision(self) -> Any:
        """What the passes run in: the recorded plan (a
        :class:`~explainlm.models.precision.PrecisionPlan`) once the run has one, else
        ``precision`` (resolved when the run starts, see :mod:`explainlm.services.precision_plan`)."""
        if self.precision_plan is None:
            return self.precision
        from explainlm.models.precision import PrecisionPlan

        return PrecisionPlan(**self.precision_plan)


def gather_texts(
    texts: Sequence[str] | None,
    input_file: str | None,
    text_column: str = "text",
    limit: int | None = None,
    encoding: str | None = None,
) -> list[str]:
    """Texts from the command line and/or an input file (TSV/CSV/JSONL/TXT)."""
    from explainlm.datasets.tables import read_table

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    out = list(texts or [])
    if input_file:
        table = read_table(input_file, text_column=text_column, limit=limit, encoding=encoding)
        out += table.texts
    if not out:
        raise UserError("no text given: pass TEXT arguments or --input FILE")
    for i, t in enumerate(out):
        if not t.strip():
            raise UserError(f"text {i + 1} is empty: nothing to predict or explain")
    return out[:limit] if limit is not None else out
