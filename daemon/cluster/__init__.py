"""Coordination of the daemons that share one journal (``base``): one host alone (``local``),
or several hosts on one PostgreSQL (``postgres``)."""

from daemon.cluster.base import Adopted, Coordinator, HostHolding, SlotAnswer, Wakeups
from daemon.cluster.local import LocalCoordinator

__all__ = ["Adopted", "Coordinator", "HostHolding", "LocalCoordinator", "SlotAnswer", "Wakeups"]
