"""What the bad-input tests share (test_book_fuzz.py, test_book_scanner.py, test_book_bad_input.py):
one seeded byte mutator for the fuzzers and the check every rejection must pass (a ``FrameError``
and no book changed, by ``conftest.books_state``: everything a consumer can observe)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from conftest import books_state

from okxbook import Books, FrameError

# Bytes and tokens JSON parsers (and okxbook's scanner) trip on: structure, numbers, escapes,
# invalid UTF-8 (a lone byte, a truncated sequence, an encoded surrogate), literals.
TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b":",
    b"-",
    b".",
    b"0",
    b"9",
    b"e",
    b"\\",
    b"\\u",
    b"\\x",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"t",
    b"nan",
    b"null",
    b"-1",
    b'"0"',
    b"99999999999999999999",
    b" ",
]
JSON_BYTES = b'{}[]",:-.0123456789eE\\ '


def mutate(frame: bytes, rng: random.Random, *, edits: int = 3, cut: int = 16) -> bytes:
    """``frame`` after 1 to ``edits`` seeded edits, each one of: replace a byte, delete a run of
    up to ``cut`` bytes, insert a token, put a JSON structure byte, duplicate a slice elsewhere,
    truncate, change a digit for another (after websockets' fuzzing/fuzz_websocket_parser.py)."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, edits)):
        if not data:
            break
        op = rng.randrange(7)
        i = rng.randrange(len(data))
        if op == 0:
            data[i] = rng.randrange(256)
        elif op == 1:
            del data[i : i + rng.randint(1, cut)]
        elif op == 2:
            data[i:i] = rng.choice(TOKENS)
        elif op == 3:
            data[i] = rng.choice(JSON_BYTES)
        elif op == 4:
            j = rng.randrange(len(data))
            data[j:j] = data[i : i + rng.randint(1, 40)]
        elif op == 5:
            del data[i:]
        else:
            digits = [k for k, b in enumerate(data) if 48 <= b <= 57]
            if digits:
                k = rng.choice(digits)
                data[k] = 48 + (data[k] - 48 + rng.randint(1, 9)) % 10
    return bytes(data)


def assert_rejected(
    books: Books,
    frame: bytes | str,
    match: str | None = None,
    error: type[Exception] = FrameError,
    *,
    state: Callable[[Books], dict[Any, Any]] = books_state,
) -> Exception:
    """``books.apply(frame)`` raises ``error`` (its reason matching ``match``) and changes no book
    (nor adds one), as ``state`` sees them (``conftest.books_numbers``: the cheap check for a
    fuzzer's thousands of mutants); returns the exception."""
    before = state(books)
    with pytest.raises(error, match=match) as raised:
        books.apply(frame)
    assert state(books) == before, f"a rejected frame changed a book: {frame[:200]!r}"
    return raised.value
