"""Reading text datasets: generic TSV/CSV/JSONL files with text (and label) columns."""

from explainlm.data.tabular import TextTable, read_table, read_texts

__all__ = ["TextTable", "read_table", "read_texts"]
