"""Plain words -> Commands: a deterministic grammar first, a semantic layer (CLAP, or a MiniLM
sentence model) for what the grammar does not know, and the stems' audio for instruments the model
has no stem for. `parse` is the grammar alone; `IntentParser` adds the other layers."""

from stemd.control.intent.parser import IntentParser, parse

__all__ = ["IntentParser", "parse"]
