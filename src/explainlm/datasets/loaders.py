"""Loaders: SST-2 TSV, SST PTB trees, human-rationale CSVs, ERASER JSONL + docs, generic files.

Malformed input raises :class:`~explainlm.errors.DataFormatError` naming the file and the line;
a missing file or folder raises :class:`~explainlm.errors.UserError` with the path.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainlm.datasets.examples import RationaleExample, align_token_rationale
from explainlm.datasets.tables import read_table
from explainlm.errors import DataFormatError, UserError

SST2_LABELS = {"0": "negative", "1": "positive"}
ERASER_LABELS = {"POS": "positive", "NEG": "negative"}
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def _need_file(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    return path


# ------------------------------------------------------------------------------------- SST-2
def load_sst2(path: str | os.PathLike[str], *, limit: int | None = None) -> list[RationaleExample]:
    """GLUE SST-2 TSV (``sentence<TAB>label``, 1 = positive); no rationales."""
    p = _need_file(Path(path))
    table = read_table(p, text_column="sentence", label_column="label", limit=limit)
    out = []
    for text, label, line in zip(table.texts, table.labels or [], table.lines, strict=True):
        if label not in SST2_LABELS:
            raise DataFormatError(p, line, f"label must be 0 or 1, got {label!r}")
        out.append(
            RationaleExample(f"{p.stem}:{line}", text, SST2_LABELS[label], meta={"line": line})
        )
    return out


# ------------------------------------------------------------------------------------ SST trees
def parse_ptb(tree: str) -> tuple[int, list[tuple[int, str]]]:
    """``(3 (2 It) (4 works))`` → ``(3, [(2, "It"), (4, "works")])``: root label and leaves.

    Raises :class:`ValueError` on unbalanced brackets or a node without a 0–4 label.
    """
    tokens = tree.replace("(", " ( ").replace(")", " ) ").split()
    leaves: list[tuple[int, str]] = []
    stack: list[int] = []
    root: int | None = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "(":
            if i + 1 >= len(tokens) or not tokens[i + 1].isdigit():
                raise ValueError(f"a node must start with a label 0-4 (token {i + 1})")
            label = int(tokens[i + 1])
            if label > 4:
                raise ValueError(f"label {label} is outside 0-4")
            if root is None:
                root = label
            elif not stack:
                raise ValueError("more than one tree on the line")
            stack.append(label)
            i += 2
            # a leaf: (label word)
            if i + 1 < len(tokens) and tokens[i] not in "()" and tokens[i + 1] == ")":
                leaves.append((label, PTB_ESCAPES.get(tokens[i], tokens[i])))
                stack.pop()
                i += 2
            continue
        if t == ")":
            if not stack:
                raise ValueError("unbalanced ')'")
            stack.pop()
            i += 1
            continue
        raise ValueError(f"unexpected token {t!r}")
    if stack or root is None:
        raise ValueError("unbalanced '(' or empty tree")
    if not leaves:
        raise ValueError("tree without words")
    return root, leaves


def load_sst_trees(
    path: str | os.PathLike[str], *, limit: int | None = None
) -> list[RationaleExample]:
    """Stanford Sentiment Treebank PTB trees, binarised as SST-2 (root 2 = neutral is skipped).

    Labels: root 0–1 → ``negative``, 3–4 → ``positive``. Rationale: a word is in it when its leaf
    sentiment is non-neutral in the root's direction (0–1 for negative, 3–4 for positive).
    """
    p = _need_file(Path(path))
    out = []
    with open(p, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                root, leaves = parse_ptb(line)
            except ValueError as e:
                raise DataFormatError(p, line_no, f"malformed tree: {e}") from None
            if root == 2:
                continue
            positive = root > 2
            flags = [int(lab > 2) if positive else int(lab < 2) for lab, _ in leaves]
            out.append(
                RationaleExample.from_tokens(
                    f"{p.stem}:{line_no}",
                    [w for _, w in leaves],
                    "positive" if positive else "negative",
                    flags,
                    meta={"line": line_no, "root": root},
                )
            )
    return out


# ------------------------------------------------------------------------- rationale CSVs
def _parse_flags(value: object, path: Path, line: int, column: str) -> list[int]:
    if isinstance(value, list):
        raw = value
    else:
        s = str(value).strip()
        try:
            raw = json.loads(s) if s.startswith("[") else s.replace(",", " ").split()
        except json.JSONDecodeError as e:
            raise DataFormatError(
                path, line, f"column {column!r}: invalid list ({e.msg})"
            ) from None
    try:
        flags = [int(v) for v in raw]
    except (TypeError, ValueError):
        raise DataFormatError(path, line, f"column {column!r}: flags must be 0 or 1") from None
    if any(f not in (0, 1) for f in flags):
        raise DataFormatError(path, line, f"column {column!r}: flags must be 0 or 1")
    return flags


def rationale_groups(path: str | os.PathLike[str]) -> list[str]:
    """The annotator groups of a rationale CSV (``group_id`` column)."""
    t = read_table(_need_file(Path(path)), text_column="sentence", extra_columns=("group_id",))
    return sorted({str(g) for g in t.extra["group_id"]})


def load_rationale_csv(
    path: str | os.PathLike[str],
    *,
    group: str | None = None,
    limit: int | None = None,
    label_column: str = "original_label",
) -> list[RationaleExample]:
    """Human rationales of Thorn Jakobsen et al. (2023): one row per (sentence, annotator).

    ``rationale_binary`` flags the sentence's whitespace tokens. A token is in the aggregated
    rationale when more than half of the annotators marked it (strict majority). ``group=None``
    aggregates all annotators; ``group="BO"`` only that group's; ``group="*"`` yields one example
    per (sentence, group), sentence-major (the groups of a sentence are adjacent, so a prefix of
    the list covers every group), with :attr:`RationaleExample.group` set. ``meta["annotators"]`` counts
    the votes; ``meta["per_annotator"]`` keeps every annotator's own word rationale.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "sst.csv"
    p = _need_file(p)
    t = read_table(
        p,
        text_column="sentence",
        label_column=label_column,
        extra_columns=("rationale_binary", "group_id", "annotator_ID"),
    )
    votes: dict[tuple[str, str | None], dict[str, Any]] = {}
    order: list[tuple[str, str | None]] = []
    sentences: set[str] = set()
    for i, (text, label, line) in enumerate(zip(t.texts, t.labels or [], t.lines, strict=True)):
        g = str(t.extra["group_id"][i])
        if group not in (None, "*") and g != group:
            continue
        flags = _parse_flags(t.extra["rationale_binary"][i], p, line, "rationale_binary")
        try:
            words, _ = align_token_rationale(text, flags)
        except ValueError as e:
            raise DataFormatError(p, line, str(e)) from None
        key = (text, g if group == "*" else None)
        if key not in votes:
            if limit is not None and text not in sentences and len(sentences) >= limit:
                continue  # the limit counts sentences (all groups of a kept sentence stay)
            sentences.add(text)
            votes[key] = {"label": label, "rows": [], "line": line, "annotators": []}
            order.append(key)
        entry = votes[key]
        entry["rows"].append(words)
        entry["annotators"].append(str(t.extra["annotator_ID"][i]))
    if group not in (None, "*") and not order:
        raise UserError(
            f"{p}: no annotator group {group!r} (groups: {', '.join(rationale_groups(p))})"
        )
    first = {}
    for text, _ in order:
        first.setdefault(text, len(first))
    order.sort(key=lambda k: first[k[0]])  # sentence-major: every group of a sentence together
    out = []
    for key in order:
        text, g = key
        entry = votes[key]
        rows = entry["rows"]
        majority = [int(sum(col) * 2 > len(rows)) for col in zip(*rows, strict=True)]
        out.append(
            RationaleExample(
                f"{p.stem}:{first[text]}" + (f":{g}" if g else ""),
                text,
                entry["label"],
                majority,
                group=g if group == "*" else group,
                meta={
                    "line": entry["line"],
                    "annotators": len(rows),
                    "annotator_ids": entry["annotators"],
                    "per_annotator": rows,
                },
            )
        )
    return out


# ------------------------------------------------------------------------------------ ERASER
def _read_doc(docs: Path, docid: str, path: Path, line: int) -> list[str]:
    f = docs / docid
    if not f.is_file():
        raise DataFormatError(path, line, f"document {docid!r} not found in {docs}")
    return f.read_text(encoding="utf-8").split()


def load_eraser(
    folder: str | os.PathLike[str], split: str = "test", *, limit: int | None = None
) -> list[RationaleExample]:
    """ERASER layout: ``{split}.jsonl`` annotations and ``docs/<docid>`` tokenised documents.

    The document's tokens (whitespace-separated, sentences flattened) are joined by spaces; the
    rationale is the union of all evidence spans ``[start_token, end_token)`` of the document.
    Labels ``POS``/``NEG`` become ``positive``/``negative``; others are kept.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    p = _need_file(root / f"{split}.jsonl")
    docs = root / "docs"
    if not docs.is_dir():
        raise UserError(f"ERASER documents folder not found: {docs}")
    out = []
    with open(p, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                ann = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(p, line_no, f"invalid JSON ({e.msg})") from None
            try:
                aid = str(ann["annotation_id"])
                label = str(ann["classification"])
                evidences = ann.get("evidences") or []
            except (KeyError, TypeError):
                raise DataFormatError(
                    p, line_no, "an annotation needs annotation_id and classification"
                ) from None
            docids = ann.get("docids") or [aid]
            docid = str(docids[0])
            tokens = _read_doc(docs, docid, p, line_no)
            flags = [0] * len(tokens)
            for group in evidences:
                for ev in group or []:
                    if str(ev.get("docid", docid)) != docid:
                        continue
                    s, e = ev.get("start_token"), ev.get("end_token")
                    if (
                        not isinstance(s, int)
                        or not isinstance(e, int)
                        or not 0 <= s <= e <= len(tokens)
                    ):
                        raise DataFormatError(
                            p,
                            line_no,
                            f"evidence span {s}..{e} outside document {docid!r} ({len(tokens)} tokens)",
                        )
                    flags[s:e] = [1] * (e - s)
            if not tokens:
                raise DataFormatError(p, line_no, f"document {docid!r} is empty")
            out.append(
                RationaleExample.from_tokens(
                    aid,
                    tokens,
                    ERASER_LABELS.get(label, label),
                    flags,
                    meta={"line": line_no, "docid": docid},
                )
            )
    return out


# ----------------------------------------------------------------------------------- generic
def load_generic(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    rationale_column: str | None = "rationale",
    limit: int | None = None,
) -> list[RationaleExample]:
    """A CSV/TSV/JSONL file with text, label and (optional) rationale columns.

    The rationale is a list of 0/1 flags, one per whitespace token of the text (a JSON list, or a
    string ``"0 1 0"`` / ``"0,1,0"``); it is aligned to word units as for the other loaders. A file
    without the rationale column gives examples without rationales.
    """
    p = _need_file(Path(path))
    probe = read_table(p, text_column=text_column, label_column=label_column, limit=1)
    del probe
    has_rationale = False
    if rationale_column:
        try:
            read_table(p, text_column=text_column, extra_columns=(rationale_column,), limit=1)
            has_rationale = True
        except DataFormatError:
            has_rationale = False
    t = read_table(
        p,
        text_column=text_column,
        label_column=label_column,
        extra_columns=(rationale_column,) if has_rationale and rationale_column else (),
        limit=limit,
    )
    out = []
    for i, (text, label, line) in enumerate(zip(t.texts, t.labels or [], t.lines, strict=True)):
        rationale = None
        meta: dict[str, Any] = {"line": line}
        if has_rationale and rationale_column:
            value = t.extra[rationale_column][i]
            if value not in (None, ""):
                flags = _parse_flags(value, p, line, rationale_column)
                try:
                    rationale, notes = align_token_rationale(text, flags)
                except ValueError as e:
                    raise DataFormatError(p, line, str(e)) from None
                meta.update(notes)
        out.append(RationaleExample(f"{p.stem}:{line}", text, label, rationale, meta=meta))
    return out


def group_examples(
    examples: Sequence[RationaleExample],
) -> dict[str | None, list[RationaleExample]]:
    """Examples by annotator group."""
    out: dict[str | None, list[RationaleExample]] = defaultdict(list)
    for ex in examples:
        out[ex.group].append(ex)
    return dict(out)
