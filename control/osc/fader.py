"""The fader curve shared by OSC `/gain` and its feedback: position 0..1 <-> absolute gain in dB.

A linear-in-dB fader spends most of its travel on levels nobody uses, a linear-in-amplitude one
crams the useful range at the top. This is the usual console compromise:

- position 0.75 is unity (0 dB), so a fader at rest leaves room to push;
- below unity the gain in amplitude goes as the square of the travel, dB = 40·log10(pos / 0.75)
  (half of unity travel = -12 dB, a tenth = -40 dB); at or below -60 dB (pos ≈ 0.024) it is silence;
- above unity the dB rise linearly to the mixer's upper limit (`[mixer] max_gain_db`, +12 dB by
  default) at position 1.
"""

from __future__ import annotations

import math

from stemd.daemon.mixer import MIN_DB

UNITY = 0.75


def position_to_db(position: float, top_db: float) -> float:
    """dB for a fader position in [0, 1]; callers check the range first."""
    if position >= UNITY:
        return (position - UNITY) / (1.0 - UNITY) * top_db
    if position <= 0.0:
        return MIN_DB
    return max(MIN_DB, 40.0 * math.log10(position / UNITY))


def db_to_position(db: float, top_db: float) -> float:
    """Fader position showing `db`: the inverse of `position_to_db`, clamped to [0, 1]."""
    if db >= 0.0:
        return UNITY + (1.0 - UNITY) * min(db / top_db, 1.0) if top_db > 0 else UNITY
    if db <= MIN_DB:
        return 0.0
    return UNITY * 10.0 ** (db / 40.0)
