"""Voice control: Vosk on the daemon's `mic` port, restricted to the command vocabulary, activated by
push-to-talk (or a wake word, or always), recognised text handed to the intent parser.

The daemon builds `VoiceListener(session, config.voice, app.mic_ring, rate)` and starts it; it sets
itself as `session.voice`. Without a model the listener's `status()` says why and `listen()` refuses.
"""

from stemd.control.voice.listener import VoiceListener, VoiceResult, describe
from stemd.control.voice.models import VoiceUnavailable

__all__ = ["VoiceListener", "VoiceResult", "VoiceUnavailable", "describe"]
