"""Tornado request handlers: thin HTTP adapters over the session service."""
