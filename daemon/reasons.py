"""The machine-readable ``reason`` of a failed file: the vocabulary of ``.error.json``.

Scripts match on these (and ``symbl-inbox retry --reason`` takes them), so they are a contract:
the README's table lists the same ones (a test keeps the two equal). A new reason goes here.
"""

from __future__ import annotations

FAILURE_REASONS: tuple[str, ...] = (
    "empty_file",
    "not_audio",
    "truncated_audio",
    "stereo_audio",
    "unsupported_format",
    "conversion_failed",
    "unreadable_file",
    "not_a_regular_file",
    "bad_sidecar",
    "bad_url_drop",
    "bad_parameters",
    "duplicate_part",
    "missing_part",
    "predecessor_rejected",
    "unknown_conversation",
    "rejected_by_api",
    "too_large",
    "job_failed",
    "unknown_job",
)
