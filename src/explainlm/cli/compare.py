"""``explainlm compare REF VARIANT...``: what quantization and pruning do to accuracy and explanations."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from explainlm.cli.common import DeviceOpt, JsonOpt, console, emit_json, err_console
from explainlm.errors import UserError
from explainlm.store import open_store

VARIANTS_HELP = (
    "Variant specs: fp32, bf16, fp16, int8[:per_channel], rtnK[:gN][:sym|asym] (K = 2..8), "
    "magnitude:P[:global], random:P[:seed=N], heads:P[:calib=N], llamacpp."
)


def compare(
    reference: Annotated[
        str | None, typer.Argument(help="Reference model: built-in name or directory.")
    ] = None,
    variants: Annotated[list[str] | None, typer.Argument(help=VARIANTS_HELP)] = None,
    dataset: Annotated[str, typer.Option(help="Dataset name or labelled file.")] = "sst2",
    split: Annotated[str | None, typer.Option(help="Dataset split (default: test).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N examples.")] = None,
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods.")
    ] = "occlusion,integrated_gradients,kernel_shap",
    metrics: Annotated[
        str, typer.Option(help="Faithfulness metrics (empty: none).")
    ] = "comprehensiveness,sufficiency",
    param: Annotated[
        list[str] | None, typer.Option("--param", help="METHOD.KEY=VALUE (repeatable).")
    ] = None,
    target_label: Annotated[
        str, typer.Option(help="Label explained: reference (its prediction) | gold | own.")
    ] = "reference",
    top_k: Annotated[int, typer.Option(help="k of the top-k and sign agreement.")] = 5,
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds.")] = 5,
    timing_texts: Annotated[int, typer.Option(help="Texts per timing round.")] = 32,
    chunk_size: Annotated[int, typer.Option(help="Texts per stored chunk.")] = 16,
    calibration_split: Annotated[
        str | None, typer.Option(help="Split that scores head importance (heads variants).")
    ] = None,
    labels: Annotated[str | None, typer.Option(help="Zero-shot labels, comma-separated.")] = None,
    template: Annotated[str | None, typer.Option(help="Zero-shot prompt template.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory.")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of a file dataset.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of a file dataset.")] = "label",
    resume: Annotated[str | None, typer.Option(help="Resume an interrupted compare run.")] = None,
    show: Annotated[
        str | None, typer.Option(help="Render a finished compare run again (no models).")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="Folder for compare.json, drift.parquet/csv, report.html.")
    ] = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare a model with its quantized and pruned variants: accuracy, speed, size, and how far
    the explanations drift.

    Examples:

        explainlm compare /work/models/minilm-sst2 int8 rtn4:g32 magnitude:0.5 --limit 100

        explainlm compare smollm2-135m rtn3:g32 heads:0.25 --methods occlusion --limit 50

        explainlm compare smollm2-135m llamacpp --methods occlusion,kernel_shap --limit 20

        explainlm compare --show 20261201-120000-abc123 --output out/compare
    """
    from explainlm.services.compare import load_result

    options = dict(locals())
    result = load_result(open_store(), show) if show else _run(options)
    if output:
        written = result.write(output)
        err_console.print(f"wrote {', '.join(str(p) for p in written)}")
    if as_json:
        emit_json(result.to_json_doc())
        return
    _render(result.to_json_doc())


# Options passed to the request as they are (the others are parsed first, in _run).
AS_GIVEN = (
    "dataset", "split", "limit", "methods", "target_label", "top_k", "rounds", "timing_texts",
    "chunk_size", "calibration_split", "labels", "data_dir", "text_column", "label_column",
    "resume",
)  # fmt: skip


def _run(options: dict[str, Any]) -> Any:
    """Run the comparison the command's options (its ``locals()``) ask for."""
    from explainlm.progress import TerminalProgress
    from explainlm.services.base import LocalModels, ServiceContext, build_request
    from explainlm.services.compare import CompareRequest, run

    if options["reference"] is None:
        raise UserError("give the reference model (or --show RUN_ID)")
    template = options["template"]
    request = build_request(
        CompareRequest,
        reference=options["reference"],
        variants=list(options["variants"] or []),
        metrics=[m for m in options["metrics"].split(",") if m.strip()],
        method_params=list(options["param"] or []),
        template=template.replace("\\n", "\n") if template else None,
        **{k: options[k] for k in AS_GIVEN},
    )
    ctx = ServiceContext(
        store=open_store(),
        progress=TerminalProgress(),
        models=LocalModels(options["device"]),
        source="cli",
    )
    return run(request, ctx)


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    def ci(d: Any, key: str = "mean") -> str:
        if not d or d.get(key) is None:
            return "–"
        return f"{d[key]:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"

    ref = doc["reference"]
    console.print(
        f"reference {doc['reference_model']} on {doc['dataset']['name']} (n = {doc['dataset']['n']})"
        f", accuracy {ci(ref.get('accuracy'), 'value')}  run {doc.get('run_id')}"
    )
    t = Table("variant", "accuracy", "agreement", "McNemar p", "time ratio", "size MB")
    for v in doc["variants"]:
        p, s, info = v["predictions"], v.get("speed") or {}, v["info"]
        ratio = (s.get("batch_ratio") or {}).get("median")
        t.add_row(
            v["spec"],
            ci(p.get("accuracy"), "value"),
            ci(p.get("agreement"), "value"),
            f"{p['mcnemar_p']:.3g}" if p.get("mcnemar_p") is not None else "–",
            f"{ratio:.2f}" if ratio else "–",
            f"{info['packed_bytes'] / 1e6:.1f}" if info.get("packed_bytes") else "–",
        )
    console.print(t)
    d = Table("variant", *doc["methods"], title="Spearman ρ with the reference's attributions")
    for v in doc["variants"]:
        d.add_row(v["spec"], *[ci(v["drift"].get(m, {}).get("spearman")) for m in doc["methods"]])
    console.print(d)
    order = ", ".join(f"{r['method']} ({r['mean_rank']:.2f})" for r in doc["ranking"])
    console.print(f"most stable under compression (mean rank): {order}")


def register(app: typer.Typer) -> None:
    app.command()(compare)
