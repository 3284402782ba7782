"""Durable storage for the real server: SQLite stores and a blob directory."""
