"""Widgets shared by the settings pages and the first-run dialog."""
