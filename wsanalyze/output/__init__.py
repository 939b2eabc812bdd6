"""Turning records into tables, files and human text."""
