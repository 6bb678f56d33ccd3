"""The ``symbl-inbox`` subcommands that have no module of their own elsewhere."""
