"""The stages a file goes through, each the single owner of its state."""
