"""Words for counts in messages: "1 request", "2 requests"."""


def plural(count: int, word: str, words: str = "") -> str:
    """The count and the word, singular for exactly one: plural(1, "request") is "1 request",
    plural(3, "request") is "3 requests"; give the plural for words not made with an -s."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
