"""Symbl.ai: the client of its Async API, the transport and proxies it goes through, exports."""
