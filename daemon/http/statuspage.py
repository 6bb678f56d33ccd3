"""The status page at ``/``: one server-rendered HTML page, readable on a phone, no scripts.

It shows what ``symbl-inbox status`` shows (the same ``StatusReport``): the stalls first, then
per inbox the files by state, the uploads with bytes sent of total, the jobs in flight with
their age, and the latest failures with reason and message. It refreshes itself every few
seconds (a meta refresh: nothing to build, nothing to run in the browser). Every name and
message is HTML-escaped, and control characters in file names are shown as escapes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from daemon.commands.status import COUNT_KEYS, StatusReport, human_age, human_size
from daemon.fsboundary import display

REFRESH_SECONDS = 5
_STATE_LABELS = {
    "waiting": "settling",
    "ready": "ready",
    "held": "held",
    "uploading": "uploading",
    "submitted": "processing",
    "completed": "completed",
    "failed": "failed",
    "filed_done": "done",
    "filed_failed": "in failed/",
}
_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.4rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.stall{background:#fde8e8;border-left:4px solid #c81e1e;padding:.5rem;margin:.4rem 0}
.ok{background:#e8f6ec;border-left:4px solid #1e7d3c;padding:.5rem}
.muted{color:#666;font-size:.9rem}progress{width:8rem}
code{word-break:break-all}
"""


def render_page(report: StatusReport, host: str, now_iso: str) -> str:
    """The whole page for ``report``."""
    body = [
        f"<h1>symbl-inbox on {_e(host)}</h1>",
        f'<p class="muted">As of {_e(now_iso)}; this page refreshes every {REFRESH_SECONDS} s.</p>',
        *_stalls(report.stalls),
        "<h2>Inboxes</h2>",
        *_inboxes(report.inboxes),
        *_polled(report.polled),
        f"<h2>Uploading ({len(report.uploads)})</h2>",
        *_uploads(report.uploads),
        f"<h2>Jobs in flight ({len(report.in_flight)})</h2>",
        *_jobs(report.in_flight),
        f"<h2>Latest failures ({len(report.failures)})</h2>",
        *_failures(report.failures),
    ]
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta http-equiv=refresh content="{REFRESH_SECONDS}">'
        f"<title>symbl-inbox: {_title(report)}</title><style>{_STYLE}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _e(value: Any) -> str:
    """Escaped for HTML, control characters shown as escapes."""
    return html.escape(display(str(value)), quote=True)


def _title(report: StatusReport) -> str:
    if report.stalls:
        return _e("stalled: " + ", ".join(sorted({s["kind"] for s in report.stalls})))
    return "working"


def _stalls(stalls: Sequence[dict[str, Any]]) -> list[str]:
    if not stalls:
        return ['<p class="ok" id="stalls">No stalls: work proceeds.</p>']
    items = [
        f'<div class="stall"><strong>{_e(s["kind"])}</strong> since {_e(s["since"])}'
        + (f" ({_e(s['subject'])})" if s.get("subject") else "")
        + f"<br>{_e(s['message'])}</div>"
        for s in stalls
    ]
    return ['<section id="stalls">', *items, "</section>"]


def _table(headers: Iterable[str], rows: Iterable[Sequence[str]], table_id: str) -> list[str]:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    lines = [f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>']
    lines.extend("<tr>" + "".join(row) + "</tr>" for row in rows)
    lines.append("</tbody></table></div>")
    return lines


def _inboxes(inboxes: Sequence[dict[str, Any]]) -> list[str]:
    rows = []
    for inbox in inboxes:
        name = _e(inbox["path"]) + ("" if inbox["configured"] else " (not configured)")
        cells = [f"<td><code>{name}</code></td>", f"<td>{_e(inbox['profile'] or '-')}</td>"]
        cells += [f'<td class="n">{inbox["counts"][key]}</td>' for key in COUNT_KEYS]
        rows.append(cells)
    return _table(["inbox", "profile", *(_STATE_LABELS[k] for k in COUNT_KEYS)], rows, "inboxes")


def _polled(polled: dict[str, str]) -> list[str]:
    if not polled:
        return []
    items = "".join(
        f"<li><code>{_e(inbox)}</code>: {_e(limit)} reached</li>"
        for inbox, limit in sorted(polled.items())
    )
    return [
        f'<div class="stall" id="polled">Polled instead of watched ({len(polled)}): the '
        f"kernel's inotify limit is reached.<ul>{items}</ul></div>"
    ]


def _uploads(uploads: Sequence[dict[str, Any]]) -> list[str]:
    if not uploads:
        return ['<p class="muted">No upload in progress.</p>']
    rows = []
    for upload in uploads:
        sent, total = int(upload["bytesSent"]), int(upload["bytesTotal"])
        share = f"{100 * sent / total:.0f} %" if total else "-"
        rows.append(
            [
                f"<td><code>{_e(upload['file'])}</code></td>",
                f'<td><progress max="{max(total, 1)}" value="{sent}"></progress> {share}</td>',
                f'<td class="n">{_e(human_size(sent))} of {_e(human_size(total))}</td>',
                f'<td class="n">{_e(human_age(upload["ageSeconds"]))}</td>',
            ]
        )
    return _table(["file", "progress", "bytes", "for"], rows, "uploads")


def _jobs(jobs: Sequence[dict[str, Any]]) -> list[str]:
    if not jobs:
        return ['<p class="muted">No job in flight.</p>']
    rows = [
        [
            f"<td><code>{_e(job['file'])}</code></td>",
            f"<td>{_e(job['jobStatus'] or '-')}</td>",
            f'<td class="n">{_e(human_age(job["ageSeconds"]))}</td>',
            f"<td><code>{_e(job['jobId'])}</code></td>",
        ]
        for job in jobs
    ]
    return _table(["file", "status", "age", "jobId"], rows, "jobs")


def _failures(failures: Sequence[dict[str, Any]]) -> list[str]:
    if not failures:
        return ['<p class="muted">No failures.</p>']
    rows = [
        [
            f"<td><code>{_e(failure['file'])}</code></td>",
            f"<td>{_e(failure['reason'])}</td>",
            f"<td>{_e(failure['message'] or '')}</td>",
            f"<td>{_e(failure['failedAt'] or '-')}</td>",
        ]
        for failure in failures
    ]
    return _table(["file", "reason", "message", "when"], rows, "failures")
