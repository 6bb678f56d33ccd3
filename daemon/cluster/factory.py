"""The coordinator a configuration asks for: one host alone, or hosts on one PostgreSQL."""

from __future__ import annotations

from daemon.cluster.base import Coordinator
from daemon.cluster.local import LocalCoordinator
from daemon.config.model import Config


def coordinator_for(config: Config) -> Coordinator:
    """SQLite in ``state_dir``: this host alone. ``journal.url``: the cluster on PostgreSQL."""
    if config.journal is None:
        return LocalCoordinator(config.cluster.host_id)
    from daemon.cluster.postgres import PostgresCoordinator, account_key
    from daemon.journal.pgconnect import connection_kwargs
    from daemon.journal.postgres import application_name

    # Named as the host's journal connections are: an administrator sees (and cuts) them all.
    name = application_name(config.cluster.host_id)
    return PostgresCoordinator(
        config.journal.url,
        connect=connection_kwargs(
            config.journal, name, idle_transaction_seconds=config.cluster.lease_seconds
        ),
        host_id=config.cluster.host_id,
        lease_seconds=config.cluster.lease_seconds,
        heartbeat_seconds=config.cluster.heartbeat_seconds,
        account=account_key(config.symbl.base_url, config.symbl.app_id),
        max_jobs=config.symbl.max_concurrent_jobs,
    )
