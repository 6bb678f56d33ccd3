"""What a stage may ask of the daemon that wires the stages together (``daemon.service``).

A stage owns its state and decides within it; what belongs to another stage (failing a file,
filing it, sending it again, freeing a slot) it asks for through this protocol, never by
reaching into that stage. The daemon implements it; unit tests may implement it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from daemon.config.model import Config, Inbox
    from daemon.journal import FileRecord, Journal
    from daemon.pipeline.conversations import Conversations, Decision
    from daemon.symbl.client import SymblClient, SymblError


class Shell(Protocol):
    @property
    def config(self) -> Config:
        """The configuration in force (a reload replaces it)."""

    @property
    def client(self) -> SymblClient:
        """The client for new work (a reload with new Symbl settings replaces it)."""

    @property
    def db(self) -> Journal: ...

    @property
    def conversations(self) -> Conversations:
        """Part order (once the journal is open)."""

    def pump(self) -> None:
        """Start as many uploads as the scheduler allows, at the end of this loop turn."""

    def webhooks_on(self) -> bool:
        """Whether Symbl is told to post status changes to our endpoint."""

    def has_room(self) -> bool:
        """Whether the journal can take writes now (False while the state folder is full)."""

    async def state_room(self) -> None:
        """Return once the journal can take writes (at once, unless the state folder is full)."""

    def api_answer(self, error: SymblError | None = None) -> None:
        """What a request to Symbl told about reachability and credentials."""

    def credentials_refused(self, error: SymblError) -> None:
        """Symbl refused the credentials: nothing is sent until they work."""

    async def fail(self, record: FileRecord, reason: str, message: str) -> None:
        """The file cannot go on: it goes to failed/ with ``reason``."""

    async def fail_http(self, record: FileRecord, reason: str, error: SymblError) -> None:
        """``fail``, keeping the API's status and body in the record."""

    async def file(self, record: FileRecord) -> None:
        """Move a file in a final state to done/ or failed/."""

    async def act(self, decisions: list[Decision]) -> None:
        """Carry out what the conversation order decided."""

    async def make_ready(self, record: FileRecord) -> None:
        """The file may be sent: queue it for a slot."""

    async def part_settled(self, record: FileRecord, *, accepted: bool) -> None:
        """A part was accepted or finally refused: the parts held behind it move on."""

    async def vanished(self, inbox: str, record_id: int) -> None:
        """The file is gone from its inbox before it was sent: forget it."""

    def retrack(self, record: FileRecord) -> None:
        """The file changed since it was checked: it settles and is admitted again."""

    def inbox(self, key: str) -> Inbox | None:
        """A configured inbox, or one removed by a reload whose files are still in flight."""

    def filed(self, record: FileRecord) -> None:
        """The file left its inbox (to done/ or failed/): it is no longer in flight."""
