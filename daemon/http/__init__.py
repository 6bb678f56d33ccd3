"""The HTTP side: endpoint, metrics and status page, reading the daemon through ``view``."""
