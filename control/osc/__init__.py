"""OSC control surface: the UDP server, feedback to subscribers, client-side helpers.

The namespace is the one in docs/architecture.md; `server.OscServer` is what the daemon starts.
"""
