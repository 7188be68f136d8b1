"""The words the grammar knows, each mapped to a token kind and value.

Kept as plain tables so the voice helper can build a restricted Vosk grammar from exactly these words
(`IntentParser.vocabulary()`), and so an engineer can read what "bring it all back" means without
reading the parser. Multi-word phrases are matched longest first, before single words.

Token kinds:
  verb      strong action word: its value is the action the clause performs
  weak      action word that counts only when the clause has no strong verb ("just", "add", "in")
  stem      a vocabulary stem;   instrument: an instrument that may not be a model stem (routed later)
  part      a drum part (kick/snare/hats), which only loop/unloop can address
  all       the whole mix;       it: "it" (the mix for gain verbs, ambiguous otherwise)
  except    "everything except X";  to: marks an absolute level ("set X to -6 dB")
  unit      db / beat / bar / bpm;  mod: step multiplier ("a bit", "a lot")
  slow      "slowly", "gradually": turns a mute into a fade out, an unmute into a fade in
  sep       splits a sentence into clauses ("and", "then");  reverb / bleed / refiner: refine objects
  special   a whole command by itself ("instrumental", "acapella", "bring it all back")
  ambiguous a phrase known to mean two things; the clause is rejected with the value as reason
  question  "what", "how" ... (and "is"/"are"/"did" first): a question, not a command
  filler    politeness, articles, hesitations: ignored
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    kind: str
    value: object = None


# Instruments the vocabulary has no stem for on every model: name -> the vocabulary stem Demucs
# puts that sound in when the model has no stem of that name (its "home").
INSTRUMENT_HOME = {
    "piano": "piano",
    "guitar": "guitar",
    "strings": "other",
    "horns": "other",
    "organ": "other",
    "pads": "other",
    "saxophone": "other",
    "trumpet": "other",
    "flute": "other",
    "violin": "other",
    "choir": "vocals",
}

_STEM_WORDS = {
    "vocals": (
        "vocals", "vocal", "vocal's", "vox", "voice", "voices", "singer", "singers", "singing",
        "lead vocal", "lead vocals", "lead vox", "backing vocals", "lyrics", "focals", "vocalist",
        "vocalists", "rapper", "rap", "mc", "the vocal track", "words",
    ),
    "drums": (
        "drums", "drum", "drum kit", "drumkit", "kit", "percussion", "perc", "percs", "beat",
        "groove", "drum track", "drums track", "trums", "drumbs",
    ),
    "bass": (
        "bass", "base", "bassline", "bass line", "baseline", "base line", "low end", "lowend",
        "sub", "subs", "sub bass", "bottom end", "bass guitar", "the lows", "lows",
    ),
    "other": (
        "other", "others", "other stem", "synth", "synths", "synthesizer", "synthesizers", "melody",
        "melodies", "chords", "harmony", "instruments", "other instruments",
    ),
}

_INSTRUMENT_WORDS = {
    "piano": ("piano", "pianos", "keys", "keyboard", "keyboards", "rhodes", "electric piano"),
    "guitar": (
        "guitar", "guitars", "electric guitar", "acoustic guitar", "lead guitar", "rhythm guitar",
        "geetar",
    ),
    "strings": ("strings", "string section", "string", "violins", "cello", "cellos"),
    "horns": ("horns", "horn", "horn section", "brass", "trumpets"),
    "organ": ("organ", "organs", "hammond"),
    "pads": ("pads", "pad"),
    "saxophone": ("sax", "saxophone", "saxophones"),
    "trumpet": ("trumpet",),
    "flute": ("flute", "flutes"),
    "violin": ("violin", "fiddle"),
    "choir": ("choir", "chorus"),
}

_PART_WORDS = {
    "kick": ("kick", "kicks", "kick drum", "bass drum", "kik", "the four on the floor"),
    "snare": ("snare", "snares", "snare drum", "snair", "clap", "claps"),
    "hats": (
        "hats", "hat", "hi hat", "hi hats", "hihat", "hihats", "high hat", "high hats", "hi-hat",
        "hi-hats", "cymbals", "hi hat pattern",
    ),
}

_VERBS = {
    "mute": (
        "mute", "mutes", "muted", "moot", "kill", "cut", "cut out", "drop", "drop out", "lose",
        "pull", "pull out", "remove", "silence", "take out", "take away", "get rid of", "on mute",
        "shut off", "no more", "stop", "switch off", "turn off", "knock out", "without",
    ),
    "unmute": (
        "unmute", "un mute", "unmuted", "unmutes", "bring in", "bring back", "bring on", "turn on",
        "switch on", "off mute", "restore", "return", "let in", "bring back in",
    ),
    "solo": ("solo", "solos", "soloed", "so low", "isolate", "isolated", "nothing but", "only"),
    "unsolo": (
        "unsolo", "un solo", "stop soloing", "release the solo", "drop the solo", "cancel the solo",
        "end the solo", "stop the solo", "no more solo", "unsoloed", "clear the solo", "clear solo",
        "unsolo everything", "kill the solo",
    ),
    "up": (
        "up", "louder", "raise", "boost", "push", "crank", "bump", "more", "increase", "lift",
        "turn up", "pump up", "bring up", "pump", "louder please",
    ),
    "down": (
        "down", "quieter", "softer", "lower", "reduce", "less", "duck", "turn down", "bring down",
        "pull back", "back off", "decrease", "tame", "dip",
    ),
    "fade_in": ("fade in", "fade it in", "fades in", "faded in", "fade up", "swell in"),
    "fade_out": ("fade out", "fade it out", "fades out", "faded out", "fade away", "fade down"),
    "fade": ("fade", "fades"),
    "loop": ("loop", "loops", "looping", "lube", "loup", "repeat", "freeze", "on repeat", "on a loop"),
    "unloop": (
        "unloop", "un loop", "release", "stop looping", "stop the loop", "release the loop",
        "end the loop", "kill the loop", "unfreeze", "stop repeating", "cancel the loop",
        "drop the loop", "let go", "let go of", "exit the loop", "loop off",
    ),
    "clean": ("clean", "clean up", "cleanup", "declutter", "tidy up", "tidy"),
    "dereverb": ("dereverb", "de reverb", "de-reverb", "dry up", "dry"),
    "refine_off": ("stop cleaning", "raw", "unprocessed", "no cleanup", "no cleaning", "refiner off"),
    "reset": (
        "reset", "reset everything", "reset the mix", "start over", "full mix", "original mix",
        "back to normal", "back to the full mix", "back to the original", "the whole track back",
        "bring it all back", "bring everything back", "bring back everything", "everything back",
        "bring the whole thing back", "all back", "back to the top",
        "reset all", "restore everything", "clear everything", "everything back in",
        "return to normal", "go back to normal", "everything back to normal", "restore to normal",
    ),
    "cancel": (
        "cancel", "never mind", "nevermind", "cancel that", "cancel it", "forget it", "forget that",
        "scratch that", "abort", "belay that", "cancel the pending", "cancel pending", "not yet",
        "hold on", "hold that", "don't", "do not", "wait no", "cancel everything pending",
        "cancel the pending commands", "cancel pending commands", "cancel what's pending", "clear the queue",
        "cancel the queue", "clear pending", "forget about it", "forget about that",
    ),
    "tempo": ("tempo", "set the tempo", "set tempo", "bpm is", "the tempo is", "tempo is"),
    "set": ("set",),
}

_WEAK = {
    "solo": ("just", "only just", "keep only", "leave only", "leave just"),
    "unmute": ("add", "keep", "play", "give me", "in", "back", "on", "back in"),
    "mute": ("out", "off", "no", "away"),
}

_SPECIAL = {
    "instrumental": (
        "instrumental", "instrumentals", "karaoke", "karaoke mode", "no vocals", "no vox",
        "the instrumental", "instrumental version", "instrumental mode",
    ),
    "acapella": (
        "acapella", "a capella", "a cappella", "acappella", "accapella", "a capela", "acapela",
        "a cap", "vocals only", "vocal only", "just the vocals", "only the vocals",
    ),
}

_AMBIGUOUS = {
    "drop the beat": "\"drop the beat\" can mean start the drums or cut them; say mute or bring in",
    "the drop": "\"the drop\" is a moment in the song, not a stem",
    "drop it": "\"drop it\" does not say which stem; name one (vocals, drums, bass, other)",
    "kill it": "\"kill it\" does not say which stem; name one",
    "take it out": "\"take it out\" does not say which stem; name one",
    "higher": "\"higher\" can mean pitch or level; say louder or up",
    "make it higher": "\"higher\" can mean pitch or level; say louder or up",
}

_OTHER = {
    Entry("all"): (
        "everything", "all", "all stems", "all the stems", "the whole mix", "whole mix", "the mix",
        "whole thing", "the whole thing", "master", "the master", "the track", "the song",
        "the music", "everybody", "every stem", "all of it", "it all", "everything all",
    ),
    Entry("it"): ("it", "this", "that", "them", "those", "these", "they"),
    Entry("question"): (
        "what", "what's", "whats", "where", "where's", "why", "who", "who's", "how", "which", "when",
    ),
    Entry("sep"): ("and", "then", "and then", "also", "and also", "after that", "plus", "and plus"),
    Entry("except"): (
        "except", "except for", "but", "apart from", "other than", "besides", "aside from",
        "excluding",
    ),
    Entry("to"): ("to", "at"),
    Entry("unit", "db"): ("db", "dbs", "d b", "decibel", "decibels", "db's", "dB", "deebee"),
    Entry("unit", "beat"): ("beats", "beat count", "counts", "count"),
    Entry("unit", "bar"): ("bar", "bars", "measure", "measures"),
    Entry("unit", "bpm"): ("bpm", "beats per minute", "b p m"),
    Entry("mod", 2.0): ("a lot", "lots", "much", "way", "loads", "a ton", "heaps"),
    Entry("mod", 1.0): ("a notch", "a step", "a click"),
    Entry("slow"): ("slowly", "gradually", "smoothly", "bit by bit", "little by little"),
    Entry("mod", 0.5): (
        "a bit", "a little", "a little bit", "a tad", "a touch", "slightly", "little", "bit",
        "tad", "touch", "a hair", "a smidge", "gently",
    ),
    Entry("reverb"): ("reverb", "the reverb", "echo", "room", "verb", "reverberation", "the room"),
    Entry("bleed"): ("bleed", "bleeding", "spill", "crosstalk", "artifacts", "artefacts", "noise", "mud"),
    Entry("refiner"): ("refiner", "refine", "refinement", "cleaning", "processing", "the cleanup"),
    Entry("unity"): ("unity", "zero level", "nominal"),
    Entry("filler"): (
        "please", "pls", "plz", "could", "can", "would", "will", "you", "u", "ya", "me", "us",
        "i", "we", "id", "i'd", "want", "wanna", "like", "need", "to", "the", "a", "an", "some",
        "my", "our", "your", "now", "right", "right now", "okay", "ok", "hey", "yo", "so", "lets",
        "let's", "go", "ahead", "thanks", "thank", "thank you", "cheers", "yeah", "yes", "um",
        "uh", "er", "erm", "hmm", "quickly", "maybe", "of", "on", "with", "there", "stem",
        "stems", "channel", "channels", "part", "level", "volume", "for", "over", "across",
        "by", "about", "around", "from", "in the mix", "mix", "the mix now", "stemd", "again",
        "too", "as well", "real quick", "for me", "mate", "man", "dude", "kindly", "just a",
        "get", "make", "turn", "bring", "take", "go ahead and", "last", "the last", "for the next", "next",
        "of the", "track", "sound", "sounds", "section", "immediately", "instantly", "nice and",
        "is", "be", "are", "too much", "their", "its", "it's", "his",
        "her", "he", "she", "ones", "line", "lines", "please and thank you", "okay so",
        "alright", "all right", "well", "actually", "just do", "do", "would you", "oh", "ah",
        "switch", "leave", "let's have", "have", "hear", "listen", "pattern", "put", "let",
    ),
}


def _build() -> dict[str, Entry]:
    table: dict[str, Entry] = {}

    def add(words, entry: Entry) -> None:
        for w in words:
            table.setdefault(w.lower(), entry)

    # Order matters where a phrase appears twice: the first table to claim it wins.
    for value, words in _SPECIAL.items():
        add(words, Entry("special", value))
    for phrase, reason in _AMBIGUOUS.items():
        add((phrase,), Entry("ambiguous", reason))
    for value, words in _VERBS.items():
        add(words, Entry("verb", value))
    for value, words in _WEAK.items():
        add(words, Entry("weak", value))
    for value, words in _STEM_WORDS.items():
        add(words, Entry("stem", value))
    for value, words in _INSTRUMENT_WORDS.items():
        add(words, Entry("instrument", value))
    for value, words in _PART_WORDS.items():
        add(words, Entry("part", value))
    for entry, words in _OTHER.items():
        add(words, entry)
    return table


LEXICON: dict[str, Entry] = _build()
MAX_PHRASE = max(len(k.split()) for k in LEXICON)
