"""The files a dropper gives: watching inboxes, intake, audio, conversion, records and filing."""
