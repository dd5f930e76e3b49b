"""Reading a Prometheus exposition the way a scraper does."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of an exposition: (sample name, labels, value)."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of a sample's values over the series whose labels include `labels`."""
    return sum(
        value
        for sample, have, value in samples(text)
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def scrape(url: str) -> str:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.text
