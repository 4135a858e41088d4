"""Self-contained HTML reports (no CDN, works offline; all user text escaped)."""

from explainlm.report.html import page, predictions_section, write_report

__all__ = ["page", "predictions_section", "write_report"]
