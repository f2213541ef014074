"""Renderers and file sinks, one module per native log format."""
