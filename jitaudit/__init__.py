"""jitaudit: audit and replay just-in-time access of AI agents and other non-human identities."""

__version__ = "0.1.0"
