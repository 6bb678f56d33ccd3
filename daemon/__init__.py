"""symbl-inbox: watch inbox folders and feed their audio to the Symbl.ai Async Audio API."""

__version__ = "0.1.0"
