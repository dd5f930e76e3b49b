"""The SLA report as CSV (one row per monitor) and as PDF (a cover page with the organization's
summary, then one page per monitor group).

PDF: fpdf2, pure Python, with its core Helvetica font (no font files to ship). Black text on
white with thin rules and no colour-only meaning, so a printed copy reads the same.
"""

from __future__ import annotations

import csv
import io

from fpdf import FPDF

CSV_COLUMNS = [
    ("monitor", lambda r: r["monitor"]["name"]),
    ("monitor_id", lambda r: r["monitor"]["id"]),
    ("group", lambda r: (r["monitor"]["tags"] or ["untagged"])[0]),
    ("availability_pct", lambda r: r["availability_pct"]),
    (
        "availability_excluding_dependencies_pct",
        lambda r: r["availability_excluding_dependencies_pct"],
    ),
    ("target_pct", lambda r: r["sla"]["target_pct"]),
    ("sla_met", lambda r: r["sla"]["met"]),
    ("checks_counted", lambda r: r["checks"]["counted"]),
    ("downtime_seconds", lambda r: r["downtime_seconds"]),
    ("dependency_downtime_seconds", lambda r: r["dependency_downtime_seconds"]),
    ("maintenance_seconds", lambda r: r["maintenance_seconds"]),
    ("avg_ms", lambda r: r["response_ms"]["avg"]),
    ("p50_ms", lambda r: r["response_ms"]["p50"]),
    ("p95_ms", lambda r: r["response_ms"]["p95"]),
    ("p99_ms", lambda r: r["response_ms"]["p99"]),
    ("error_rate_pct", lambda r: r["error_rate_pct"]),
    ("incidents", lambda r: r["incidents"]["count"]),
    ("mtta_seconds", lambda r: r["incidents"]["mtta_seconds"]),
    ("mttr_seconds", lambda r: r["incidents"]["mttr_seconds"]),
    ("longest_outage_seconds", lambda r: r["incidents"]["longest_outage_seconds"]),
    ("false_positive_rate_pct", lambda r: r["incidents"]["false_positive_rate_pct"]),
    ("error_budget_remaining_pct", lambda r: r["sla"]["error_budget"]["remaining_pct"]),
    ("burn_rate_1h", lambda r: r["sla"]["burn_rate_1h"]),
    ("burn_rate_6h", lambda r: r["sla"]["burn_rate_6h"]),
    ("violation_days", lambda r: " ".join(r["sla"]["violation_days"])),
    ("health_score", lambda r: r["health_score"]),
]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A monitor named "=HYPERLINK(...)" must stay text when the file is opened in a spreadsheet.
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def report_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([name for name, _ in CSV_COLUMNS])
    for row in report["monitors"]:
        writer.writerow([_cell(get(row)) for _, get in CSV_COLUMNS])
    return out.getvalue()


def _fmt(value, suffix: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "met" if value else "NOT MET"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") + suffix
    return f"{value}{suffix}"


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def _ascii(text: str) -> str:
    # The core fonts cover Latin-1 only; a monitor named with other characters still prints.
    return text.encode("latin-1", "replace").decode("latin-1")


class _Doc(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.title_text = _ascii(title)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_margins(12, 12, 12)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", size=8)
        self.cell(0, 5, f"{self.title_text}  -  page {self.page_no()}", align="C")


_SUMMARY_FIELDS = [
    ("Availability", lambda s: _fmt(s["availability_pct"], " %", 4)),
    ("SLA target", lambda s: _fmt(s["sla"]["target_pct"], " %")),
    ("SLA", lambda s: _fmt(s["sla"]["met"])),
    ("Monitors in violation", lambda s: _fmt(s["sla"]["monitors_in_violation"])),
    ("Error budget remaining", lambda s: _fmt(s["sla"]["error_budget_remaining_pct"], " %", 2)),
    (
        "Response avg / p50 / p95 / p99",
        lambda s: " / ".join(
            _fmt(s["response_ms"][k], " ms", 1) for k in ("avg", "p50", "p95", "p99")
        ),
    ),
    ("Error rate", lambda s: _fmt(s["error_rate_pct"], " %", 4)),
    ("Incidents", lambda s: _fmt(s["incidents"])),
    ("MTTA / MTTR", lambda s: f"{_duration(s['mtta_seconds'])} / {_duration(s['mttr_seconds'])}"),
    ("Longest outage", lambda s: _duration(s["longest_outage_seconds"])),
    ("Health score", lambda s: _fmt(s["health_score"], " / 100")),
]

_TABLE = [
    ("Monitor", 58, lambda r: r["monitor"]["name"]),
    ("Avail. %", 22, lambda r: _fmt(r["availability_pct"], "", 4)),
    ("SLA", 18, lambda r: _fmt(r["sla"]["met"])),
    ("Downtime", 20, lambda r: _duration(r["downtime_seconds"])),
    ("Dep. down", 20, lambda r: _duration(r["dependency_downtime_seconds"])),
    ("p50 ms", 17, lambda r: _fmt(r["response_ms"]["p50"], "", 1)),
    ("p95 ms", 17, lambda r: _fmt(r["response_ms"]["p95"], "", 1)),
    ("p99 ms", 17, lambda r: _fmt(r["response_ms"]["p99"], "", 1)),
    ("Err. %", 17, lambda r: _fmt(r["error_rate_pct"], "", 3)),
    ("Inc.", 11, lambda r: _fmt(r["incidents"]["count"])),
    ("MTTR", 18, lambda r: _duration(r["incidents"]["mttr_seconds"])),
    ("Budget left", 20, lambda r: _fmt(r["sla"]["error_budget"]["remaining_pct"], " %", 1)),
    ("Score", 13, lambda r: _fmt(r["health_score"])),
]


def _heading(pdf: _Doc, text: str, size: int = 16) -> None:
    pdf.set_font("Helvetica", "B", size)
    pdf.cell(0, 9, _ascii(text), new_x="LMARGIN", new_y="NEXT")


def _summary(pdf: _Doc, summary: dict) -> None:
    pdf.set_font("Helvetica", size=10)
    for label, get in _SUMMARY_FIELDS:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(70, 6, label)
        pdf.set_font("Helvetica", size=10)
        pdf.cell(0, 6, _ascii(get(summary)), new_x="LMARGIN", new_y="NEXT")


def _table(pdf: _Doc, rows: list[dict]) -> None:
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_draw_color(0)
    for title, width, _ in _TABLE:
        pdf.cell(width, 6, title, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=8)
    for row in rows:
        for _, width, get in _TABLE:
            text = _ascii(get(row))
            while pdf.get_string_width(text) > width - 1 and len(text) > 3:
                text = text[:-2] + "."
            pdf.cell(width, 5.5, text, border="B")
        pdf.ln()
    notes = [
        f"{r['monitor']['name']}: {r['sla']['warning'] or ''} {r['incidents']['tuning_hint'] or ''}"
        for r in rows
        if r["sla"]["warning"] or r["incidents"]["tuning_hint"]
    ]
    if notes:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(0, 5, "Notes", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=8)
        for note in notes:
            pdf.multi_cell(0, 4.5, _ascii(note.strip()), new_x="LMARGIN", new_y="NEXT")


def report_pdf(report: dict) -> bytes:
    period = report["period"]
    title = f"SLA report - {report['organization']} - {period['label']}"
    pdf = _Doc(title)
    pdf.set_title(title)
    pdf.add_page()
    _heading(pdf, title, 18)
    pdf.set_font("Helvetica", size=9)
    accounting = report["accounting"]
    pdf.multi_cell(
        0,
        5,
        _ascii(
            f"Period {period['start']} to {period['end']} ({report['timezone']}); plan "
            f"{report['plan']}. Maintenance "
            f"{'excluded' if accounting['exclude_maintenance'] else 'counted'}; degraded counted "
            f"as {'up' if accounting['degraded_counts_as_up'] else 'down'}; inconclusive results "
            "and time before a monitor's first check excluded. Generated "
            f"{report['generated_at']}."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    _summary(pdf, report["summary"])
    by_id = {r["monitor"]["id"]: r for r in report["monitors"]}
    for group in report["groups"]:
        pdf.add_page()
        _heading(pdf, f"Group: {group['name']}")
        _summary(pdf, group["summary"])
        pdf.ln(3)
        _table(pdf, [by_id[i] for i in group["monitors"]])
    return bytes(pdf.output())
