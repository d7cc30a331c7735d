"""Message streams and their storage: append-only segments on disk (Persistence.File) or in memory."""
