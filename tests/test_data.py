"""Reading labelled-text files, and finding the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from explainlm.datasets import read_table, read_texts
from explainlm.errors import DataFormatError, UserError
from explainlm.paths import data_dir, dataset_path


def write(tmp_path: Path, name: str, content: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(content, encoding=encoding)
    return p


def assert_names(err: pytest.ExceptionInfo, path: Path, line: int) -> None:
    """The message names the file and the line; the exception carries them too."""
    msg = str(err.value)
    assert str(path) in msg
    assert f"line {line}" in msg
    assert err.value.path == path
    assert err.value.line == line


# ------------------------------------------------------------------------------ formats
def test_tsv(tmp_path: Path) -> None:
    p = write(tmp_path, "d.tsv", 'sentence\tlabel\ngood "film"\t1\n\n  bad film \t0\n')
    t = read_table(p, text_column="sentence", label_column="label")
    assert t.path == p
    assert t.texts == ['good "film"', "bad film"]  # no quoting in TSV; whitespace stripped
    assert t.labels == ["1", "0"]
    assert t.lines == [2, 4]  # the blank line 3 is skipped but counted
    assert len(t) == 2


def test_csv_with_quoted_fields(tmp_path: Path) -> None:
    content = 'id,text,label\n1,"hello, world",pos\n2,"two\nlines",neg\n3,plain,neg\n'
    p = write(tmp_path, "d.csv", content)
    t = read_table(p, label_column="label", extra_columns=("id",))
    assert t.texts == ["hello, world", "two\nlines", "plain"]
    assert t.labels == ["pos", "neg", "neg"]
    assert t.lines == [2, 3, 5]  # a row spanning lines 3-4 starts on line 3
    assert t.extra == {"id": ["1", "2", "3"]}


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    p = write(tmp_path, "excel.csv", "text,label\nfine,1\n", encoding="utf-8-sig")
    t = read_table(p, label_column="label")
    assert (t.texts, t.labels) == (["fine"], ["1"])


def test_jsonl_labels_become_strings(tmp_path: Path) -> None:
    content = (
        '{"text": "good", "label": 1, "meta": {"a": 1}}\n'
        "\n"
        '{"text": "bad", "label": 0, "meta": null}\n'
        '{"text": "so-so", "label": "neutral", "meta": [1]}\n'
    )
    p = write(tmp_path, "d.jsonl", content)
    t = read_table(p, label_column="label", extra_columns=("meta",))
    assert t.texts == ["good", "bad", "so-so"]
    assert t.labels == ["1", "0", "neutral"]
    assert all(isinstance(v, str) for v in t.labels)
    assert t.lines == [1, 3, 4]
    assert t.extra == {"meta": [{"a": 1}, None, [1]]}


def test_jsonl_without_labels(tmp_path: Path) -> None:
    p = write(tmp_path, "d.json", '{"review": "nice"}\n{"review": "meh"}\n')
    t = read_table(p, text_column="review")
    assert t.texts == ["nice", "meh"]
    assert t.labels is None


def test_txt_one_text_per_line(tmp_path: Path) -> None:
    p = write(tmp_path, "d.txt", "first text\r\nsecond text\n")
    t = read_table(p)
    assert t.texts == ["first text", "second text"]
    assert t.lines == [1, 2]
    assert read_texts(p) == ["first text", "second text"]


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    p = write(tmp_path, "data.dat", "text\tlabel\nx\ty\n")
    assert read_table(p, label_column="label", fmt="tsv").labels == ["y"]


def test_limit(tmp_path: Path) -> None:
    p = write(tmp_path, "d.tsv", "text\n" + "".join(f"t{i}\n" for i in range(10)))
    t = read_table(p, limit=3)
    assert t.texts == ["t0", "t1", "t2"]
    assert t.lines == [2, 3, 4]
    assert read_table(p, limit=100).texts == [f"t{i}" for i in range(10)]
    assert t.head(2).texts == ["t0", "t1"] and t.head(None) is t


def test_limit_stops_before_malformed_rows(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", "text,label\na,1\nb,0\nbroken,1,extra\n")
    assert read_table(p, label_column="label", limit=2).texts == ["a", "b"]
    with pytest.raises(DataFormatError) as err:
        read_table(p, label_column="label", limit=3)
    assert_names(err, p, 4)


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("d.tsv", "sentence\tlabel\nok\t1\n", 2),
        ("d.csv", "sentence,label\nok,1\n", 2),
        ("d.jsonl", '{"text": "ok", "label": 1}\n{"sentence": "x", "label": 0}\n', 2),
    ],
)
def test_missing_column_lists_available_columns(
    tmp_path: Path, name: str, content: str, line: int
) -> None:
    p = write(tmp_path, name, content)
    col = "text" if name.endswith(".jsonl") else "review"
    with pytest.raises(DataFormatError, match=f"no column '{col}'") as err:
        read_table(p, text_column=col, label_column="label")
    assert_names(err, p, line)
    assert "columns:" in str(err.value) and "label" in str(err.value)


def test_missing_label_column(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "y": 0}\n')
    with pytest.raises(DataFormatError, match=r"no column 'label' \(columns: text, y\)") as err:
        read_table(p, label_column="label")
    assert_names(err, p, 2)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("d.tsv", "text\tlabel\nfine\t1\n\t0\n", 3),
        ("d.tsv", "text\tlabel\nfine\t1\n   \t0\n", 3),
        ("d.csv", 'text,label\nfine,1\nok,0\n"  ",1\n', 4),
        ("d.jsonl", '{"text": "fine", "label": 1}\n{"text": "", "label": 0}\n', 2),
        ("d.jsonl", '{"text": "fine", "label": 1}\n{"text": 5, "label": 0}\n', 2),
        ("d.jsonl", '{"text": "fine", "label": 1}\n{"text": null, "label": 0}\n', 2),
    ],
)
def test_empty_text(tmp_path: Path, name: str, content: str, line: int) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataFormatError, match="empty or non-text value in column 'text'") as err:
        read_table(p, label_column="label")
    assert_names(err, p, line)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("d.tsv", "text\tlabel\nfine\t1\nno label\t\n", 3),
        ("d.csv", "text,label\nno label, \n", 2),
        ("d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": null}\n', 3),
        ("d.jsonl", '{"text": "a", "label": ""}\n', 1),
    ],
)
def test_empty_label(tmp_path: Path, name: str, content: str, line: int) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataFormatError, match="empty label in column 'label'") as err:
        read_table(p, label_column="label")
    assert_names(err, p, line)


def test_malformed_json_line(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n{"text": "c",\n')
    with pytest.raises(DataFormatError, match="invalid JSON") as err:
        read_table(p)
    assert_names(err, p, 3)


@pytest.mark.parametrize("line_text", ['["a", "b"]', '"just a string"', "42"])
def test_json_line_that_is_not_an_object(tmp_path: Path, line_text: str) -> None:
    p = write(tmp_path, "d.jsonl", '{"text": "a"}\n' + line_text + "\n")
    with pytest.raises(DataFormatError, match="must be a JSON object") as err:
        read_table(p)
    assert_names(err, p, 2)


@pytest.mark.parametrize(
    ("name", "content", "found"),
    [
        ("d.csv", "text,label\na,1\nb,0,extra\n", 3),
        ("d.csv", "text,label\na,1\nb\n", 1),
        ("d.tsv", "text\tlabel\na\t1\nb\t0\tx\n", 3),
    ],
)
def test_ragged_row(tmp_path: Path, name: str, content: str, found: int) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataFormatError, match=f"expected 2 fields .*found {found}") as err:
        read_table(p, label_column="label")
    assert_names(err, p, 3)
    assert "text, label" in str(err.value)


@pytest.mark.parametrize("name", ["d.tsv", "d.csv"])
def test_empty_table_file(tmp_path: Path, name: str) -> None:
    p = write(tmp_path, name, "")
    with pytest.raises(DataFormatError, match="empty") as err:
        read_table(p)
    assert_names(err, p, 1)


@pytest.mark.parametrize(
    ("name", "content"),
    [("d.jsonl", ""), ("d.jsonl", "\n\n"), ("d.txt", ""), ("d.tsv", "text\tlabel\n")],
)
def test_no_rows(tmp_path: Path, name: str, content: str) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataFormatError, match="no rows found") as err:
        read_table(p)
    assert str(p) in str(err.value)


def test_unknown_suffix(tmp_path: Path) -> None:
    p = write(tmp_path, "data.xlsx", "text\nx\n")
    with pytest.raises(
        UserError, match=r"unknown file type '\.xlsx'.*\.tsv, \.csv, \.jsonl"
    ) as err:
        read_table(p)
    assert str(p) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.tsv"
    with pytest.raises(UserError, match="file not found") as err:
        read_table(p)
    assert str(p) in str(err.value)
    with pytest.raises(UserError, match="is a folder, not a file"):
        read_table(tmp_path)  # a directory is not a file, and the message says so (issue 19)


# ------------------------------------------------------------------------- data directory
def test_data_dir_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLAINLM_DATA", str(tmp_path / "ignored"))
    (tmp_path / "mine").mkdir()
    assert data_dir(tmp_path / "mine") == (tmp_path / "mine").resolve()
    assert data_dir(str(tmp_path / "mine")) == (tmp_path / "mine").resolve()


def test_data_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "env-data").mkdir()
    monkeypatch.setenv("EXPLAINLM_DATA", str(tmp_path / "env-data"))
    assert data_dir() == (tmp_path / "env-data").resolve()


def test_missing_data_dir_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-data"
    with pytest.raises(UserError, match="data directory not found") as err:
        data_dir(missing)
    assert str(missing.resolve()) in str(err.value)
    assert "EXPLAINLM_DATA" in str(err.value)

    monkeypatch.setenv("EXPLAINLM_DATA", str(tmp_path / "env-missing"))
    with pytest.raises(UserError) as err:
        data_dir()
    assert str((tmp_path / "env-missing").resolve()) in str(err.value)
    assert data_dir(must_exist=False) == tmp_path / "env-missing"


def test_dataset_path(tmp_path: Path) -> None:
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "test.tsv").write_text("sentence\tlabel\n")
    assert dataset_path("sst2/test.tsv", tmp_path) == tmp_path.resolve() / "sst2" / "test.tsv"
    with pytest.raises(UserError, match="data file not found") as err:
        dataset_path("sst2/dev.tsv", tmp_path)
    assert str(tmp_path.resolve() / "sst2" / "dev.tsv") in str(err.value)


# ------------------------------------------------------------------------------ real data
@pytest.mark.data
def test_sst2_test_split(data_dir: Path) -> None:
    t = read_table(data_dir / "sst2" / "test.tsv", text_column="sentence", label_column="label")
    assert len(t) == 872
    assert set(t.labels) == {"0", "1"}
    assert all(text.strip() == text and text for text in t.texts)
    assert t.lines[0] == 2 and t.lines == sorted(t.lines)
