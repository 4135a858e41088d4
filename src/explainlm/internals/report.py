"""HTML heat maps (self-contained, every text escaped) and matplotlib figures for the internals.

>>> html = heatmap_table(["0", "1"], ["<a>", "b"], [[0.1, 0.9], [1.0, -0.2]], title="demo")
>>> "<a>" in html
False
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainlm.report.html import esc, page


def _colour(v: float, lo: float, hi: float) -> str:
    """White → blue for positive, white → red for negative (relative to the range)."""
    scale = max(abs(lo), abs(hi)) or 1.0
    a = min(abs(v) / scale, 1.0)
    r, g, b = (37, 99, 235) if v >= 0 else (220, 38, 38)
    mix = [int(255 - (255 - c) * a * 0.85) for c in (r, g, b)]
    return f"rgb({mix[0]},{mix[1]},{mix[2]})"


def heatmap_table(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    title: str = "",
    cell_text: Sequence[Sequence[str]] | None = None,
    tooltips: Sequence[Sequence[str]] | None = None,
    row_header: str = "layer",
    fmt: str = "{:.2f}",
) -> str:
    """An HTML table coloured by ``values`` (rows × cols); cells show ``cell_text`` or the value."""
    flat = [float(v) for r in values for v in r] or [0.0]
    lo, hi = min(flat), max(flat)
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for i, name in enumerate(rows):
        cells = []
        for j, v in enumerate(values[i]):
            text = cell_text[i][j] if cell_text is not None else fmt.format(v)
            tip = f" title='{esc(tooltips[i][j])}'" if tooltips is not None else ""
            cells.append(
                f"<td style='background:{_colour(float(v), lo, hi)}'{tip}>{esc(text)}</td>"
            )
        body.append(f"<tr><th>{esc(name)}</th>{''.join(cells)}</tr>")
    return (
        f"<h2>{esc(title)}</h2><div style='overflow-x:auto'><table class='heat'>"
        f"<tr><th>{esc(row_header)}</th>{head}</tr>{''.join(body)}</table></div>"
    )


HEAT_CSS = (
    "<style>table.heat td{font-family:ui-monospace,monospace;font-size:.75rem;white-space:pre;"
    "text-align:center;padding:.15rem .3rem}table.heat th{font-size:.75rem}</style>"
)


def lens_html(res: Any, meta: dict[str, Any] | None = None) -> str:
    """Layers × positions, each cell the top-1 token coloured by its probability."""
    sections = [
        HEAT_CSS,
        heatmap_table(
            [str(x) for x in res.layers],
            res.tokens,
            [[row[0] for row in layer] for layer in res.top_probs],
            title="Logit lens: top-1 next token per layer and position",
            cell_text=[[row[0] for row in layer] for layer in res.top_tokens],
            tooltips=[
                [
                    ", ".join(f"{t!r} {p:.3f}" for t, p in zip(ts, ps, strict=True))
                    for ts, ps in zip(tl, pl, strict=True)
                ]
                for tl, pl in zip(res.top_tokens, res.top_probs, strict=True)
            ],
        ),
    ]
    if res.target is not None:
        sections.append(
            heatmap_table(
                [str(x) for x in res.layers],
                res.tokens,
                res.target_probs,
                title=f"Probability of the target {res.target!r}",
                fmt="{:.3f}",
            )
        )
    return page("Logit lens", sections, meta)


def trace_html(res: Any, meta: dict[str, Any] | None = None) -> str:
    """Layers × positions of the restored fraction."""
    cols = [
        f"{res.tokens[j]}*" if j in res.corrupted_positions else res.tokens[j]
        for j in res.positions
    ]
    info = {
        **(meta or {}),
        "target": res.target,
        "metric": res.metric,
        "clean": f"{res.clean:.4f}",
        "corrupted": f"{res.corrupt:.4f}",
        "corruption": res.corruption,
    }
    title = f"Causal tracing ({res.component}): restored fraction, * = corrupted token"
    return page(
        "Activation patching",
        [HEAT_CSS, heatmap_table([str(x) for x in res.layers], cols, res.grid, title=title)],
        info,
    )


def heads_html(res: Any, meta: dict[str, Any] | None = None) -> str:
    """Layers × heads of the ablation effect."""
    cols = [str(h) for h in range(len(res.grid[0]))]
    title = f"Head ablation ({res.ablation}): change of {res.metric} (intact {res.base:.4f})"
    rows = [str(i) for i in range(len(res.grid))]
    return page(
        "Head importance", [HEAT_CSS, heatmap_table(rows, cols, res.grid, title=title)], meta
    )


def probe_html(res: Any, meta: dict[str, Any] | None = None) -> str:
    """A table of per-layer probe accuracy, CI, control and selectivity."""
    rows = "".join(
        f"<tr><td>{esc(r['layer'])}</td><td>{r['accuracy']:.3f}</td>"
        f"<td>[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]</td><td>{r['control']:.3f}</td>"
        f"<td>{r['selectivity']:+.3f}</td></tr>"
        for r in res.rows()
    )
    table = (
        "<h2>Linear probes per layer</h2><table><tr><th>point</th><th>accuracy</th>"
        "<th>95% CI</th><th>control</th><th>selectivity</th></tr>"
        f"{rows}</table>"
    )
    return page("Probing", [table], meta)


def activations_html(
    logdir: str,
    pooled: dict[str, Any],
    n: int,
    pool: str,
    probe: Any = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """What was exported: every hook point with its width and the mean L2 norm of its pooled vectors."""
    import numpy as np

    norms = {p: float(np.linalg.norm(v, axis=-1).mean()) for p, v in pooled.items()}
    top = max(norms.values(), default=0.0) or 1.0
    rows = "".join(
        f"<tr><td>{esc(p)}</td><td>{v.shape[-1]}</td><td>{norms[p]:.3f} "
        f'<span class="bar" style="width:{120 * norms[p] / top:.0f}px"></span></td></tr>'
        for p, v in pooled.items()
    )
    parts = [
        f"<div>{n} texts, {esc(pool)}-pooled, written to <code>{esc(logdir)}</code> "
        f"(browse with <code>tensorboard --logdir {esc(logdir)}</code>)</div>",
        "<table><tr><th>point</th><th>dims</th><th>mean L2 norm</th></tr>" + rows + "</table>",
    ]
    if probe is not None:
        parts.append(probe_html(probe).split("<body>", 1)[-1].split("</body>", 1)[0])
    return page("Exported activations", parts, meta)


def trace_figure(res: Any, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Save the tracing grid as a PNG or SVG (by the file suffix) with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.asarray(res.grid).T  # positions × layers, as in ROME's figures
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * grid.shape[1] + 2), 0.3 * grid.shape[0] + 1.4))
    im = ax.imshow(grid, cmap="Purples" if res.component == "resid" else "Greens", aspect="auto")
    labels = [
        f"{res.tokens[j]}*" if j in res.corrupted_positions else res.tokens[j]
        for j in res.positions
    ]
    ax.set_yticks(range(len(labels)), [repr(t)[1:-1] for t in labels], fontsize=8)
    ax.set_xlabel(f"layer ({res.component})")
    ax.set_title(title or f"restored fraction of p({res.target!r})", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
