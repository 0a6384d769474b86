"""Markdown tables as the reports, benchmarks and docs write them."""

from __future__ import annotations


def table_head(*titles: str) -> list[str]:
    """The header line and the separator line of a Markdown table with these column titles."""
    return ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
