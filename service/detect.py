"""Service: language names and a small language detector over the loaded source languages.

The detector scores each candidate language by its common words and its special letters (or its
script). It only chooses among languages the service can translate from, which is all `auto`
needs; it is no general-purpose identifier.
"""

from __future__ import annotations

import re
import unicodedata

LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}

_STOPWORDS = {
    "en": "the a an and of to in is are was on with for at by this that it he she they from "
          "man woman people two dog while his her their",
    "de": "der die das und ist ein eine einer einem einen zu mit auf im in den dem des nicht "
          "sich von für sind zwei mann frau hund während",
    "fr": "le la les et est un une des du de en dans sur avec pour pas que qui il elle sont "
          "deux homme femme chien",
    "es": "el la los las y es un una de del en con por para que no se su son dos hombre mujer "
          "perro",
    "it": "il lo la gli le e è un una di del della in con per che non si sono due uomo donna cane",
    "pt": "o a os as e é um uma de do da em com por para que não se são dois homem mulher cão",
    "nl": "de het een en is van in op met voor niet zijn twee man vrouw hond die dat",
    "cs": "a je se na v ve s z do že to jsou dva muž žena pes",
}
_LETTERS = {
    "de": "äöüß", "fr": "éèêëàâçùûîïœ", "es": "ñ¿¡áíóú", "it": "àèéìòù", "pt": "ãõçáâêô",
    "nl": "ĳ", "cs": "ěščřžýůňťď", "pl": "ąćęłńśźż", "ro": "ăâîșț", "tr": "ğışç", "sv": "åäö",
    "da": "æøå", "hu": "őű", "vi": "ăâđêôơư",
}
# Languages told apart by script: a Unicode name prefix that their letters carry.
_SCRIPTS = {
    "ru": "CYRILLIC", "uk": "CYRILLIC", "el": "GREEK", "ar": "ARABIC", "he": "HEBREW",
    "hi": "DEVANAGARI", "zh": "CJK", "ja": "HIRAGANA", "ko": "HANGUL",
}
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_SETS = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def detect_language(text: str, candidates: list[str]) -> list[tuple[str, float]]:
    """Scores `candidates` for `text`; returns (code, confidence 0-100), best first."""
    if not candidates:
        return []
    words = [w.lower() for w in _WORD.findall(text)]
    letters = [c for c in text.lower() if c.isalpha()]
    script_counts: dict[str, int] = {}
    for c in letters:
        if ord(c) > 0x024F:  # beyond Latin
            name = unicodedata.name(c, "")
            for script in set(_SCRIPTS.values()):
                if name.startswith(script):
                    script_counts[script] = script_counts.get(script, 0) + 1
    scores = {}
    for lang in candidates:
        score = 2.0 * sum(w in _STOP_SETS.get(lang, ()) for w in words)
        score += sum(c in _LETTERS.get(lang, "") for c in letters)
        score += 3.0 * script_counts.get(_SCRIPTS.get(lang, "-"), 0)
        scores[lang] = score
    total = sum(scores.values())
    if total == 0:
        share = 100.0 / len(candidates)
        return [(lang, round(share, 1)) for lang in sorted(candidates)]
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(lang, round(100.0 * s / total, 1)) for lang, s in ranked]
