"""What can be known about a topic regex without running it: its literal prefix.

Used to prove that two links cannot select the same topic. The analysis is
conservative: when unsure it returns a shorter prefix, which only makes two
patterns look more alike, never less.
"""

from dataclasses import dataclass

META = set(".^$*+?{}[]\\|()")
OPTIONAL_QUANTIFIERS = set("*?{")


@dataclass(frozen=True, slots=True)
class Prefix:
    text: str
    exact: bool  # the whole pattern is this literal text

    def disjoint(self, other: "Prefix") -> bool:
        """True when no string can match both patterns these prefixes come from."""
        if self.exact and other.exact:
            return self.text != other.text
        if self.exact:
            return not self.text.startswith(other.text)
        if other.exact:
            return not other.text.startswith(self.text)
        return not (self.text.startswith(other.text) or other.text.startswith(self.text))


def literal_prefix(pattern: str) -> Prefix:
    """The text every full match of `pattern` starts with."""
    if _has_alternation(pattern):
        return Prefix("", exact=False)
    chars: list[str] = []
    i = 1 if pattern.startswith("^") else 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1:i + 2]
            if not escaped or escaped.isalnum():
                break  # \d, \w, \A, ... are classes or anchors, not literals
            chars.append(escaped)
            i += 2
        elif char in META:
            return Prefix("".join(chars), exact=char == "$" and i == len(pattern) - 1)
        else:
            chars.append(char)
            i += 1
        if i < len(pattern) and pattern[i] in OPTIONAL_QUANTIFIERS:
            chars.pop()  # the literal just read may repeat zero times
            return Prefix("".join(chars), exact=False)
    return Prefix("".join(chars), exact=i == len(pattern))


def _has_alternation(pattern: str) -> bool:
    escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            return True
    return False
