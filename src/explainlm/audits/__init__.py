"""Fairness and social-bias audits (layer 4): group fairness, counterfactual identity fairness,
language-model social bias and Bias in Bios, each with confidence intervals and hypothesis tests.

See ``docs/audits.md`` for definitions and citations.
"""

from explainlm.audits.fairness import fairness_audit
from explainlm.audits.group import group_report
from explainlm.audits.stats import adjust_pvalues, binomial_p, paired_summary, wilson_ci

__all__ = [
    "adjust_pvalues",
    "binomial_p",
    "fairness_audit",
    "group_report",
    "paired_summary",
    "wilson_ci",
]
