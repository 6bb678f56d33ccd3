"""What the configuration tests share: a valid file to vary, and the outcome of a check."""

from __future__ import annotations

from dataclasses import dataclass

# Line numbers matter in these tests: keep this text and the comment below in step.
#  1 symbl:            5 profiles:         9 inboxes:
#  2   app_id          6   default:       10   - path: inbox
#  3   app_secret      7     params:      11     profile: default
#  4 state_dir         8       languageCode
VALID = """\
symbl:
  app_id: test-app
  app_secret: s3cret-value-for-tests
state_dir: state
profiles:
  default:
    params:
      languageCode: en-US
inboxes:
  - path: inbox
    profile: default
"""
SECRET = "s3cret-value-for-tests"


@dataclass(frozen=True)
class Outcome:
    """What ``symbl-inbox check-config`` did: exit code, stdout, and stderr split into lines."""

    code: int
    out: str
    errors: list[str]
