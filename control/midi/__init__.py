"""MIDI control: controller mappings, LED feedback, MIDI learn and MIDI clock (see controller.py).

Importing this package loads neither JACK nor rtmidi, so the config schema can validate mappings
without either library.
"""
