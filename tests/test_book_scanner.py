"""The scanner is a strict JSON reader (issue 14 item 8): every frame a strict JSON parser
(orjson) rejects is a FrameError and changes no book, including values the scanner only skips,
escapes inside strings, invalid UTF-8, leading zeros, and member names it compares."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from bad_frames import assert_rejected, mutate
from conftest import books_numbers

import okxbook
from okxbook import BookError, Books
from okxbook.capture import iter_frames

CAPTURE = Path(okxbook.__file__).parent / "data" / "okx-books-2022-05-13.cryptofeed.gz"

GOOD = (
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":'
    b'[{"asks":[["101","3","0","2"]],"bids":[["99","1","0","1"]],"ts":"1700000000001",'
    b'"checksum":0,"prevSeqId":100,"seqId":101}]}'
)
SNAPSHOT = (
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":'
    b'[{"asks":[["100.5","1","0","1"]],"bids":[["100","1","0","1"]],"ts":"1700000000000",'
    b'"checksum":0,"prevSeqId":-1,"seqId":100}]}'
)

# Values a strict parser rejects, placed where the scanner only skips.
BAD_VALUES = {
    "tru": b"tru",
    "tRue": b"tRue",
    "truex": b"truex",
    "nul": b"nul",
    "nan": b"nan",
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "1e5x": b"1e5x",
    "1e": b"1e",
    "1e+": b"1e+",
    "1.": b"1.",
    ".5": b".5",
    "+1": b"+1",
    "--5": b"--5",
    "-": b"-",
    "0x1f": b"0x1f",
    "01": b"01",
    "-01": b"-01",
    "1e400": b"1e400",
    "big-int": b"1" + b"0" * 400,
    "array-no-commas": b"[1 2 3]",
    "array-commas": b"[,,]",
    "array-trailing-comma": b"[1,]",
    "array-leading-comma": b"[,1]",
    "object-colon": b"{:}",
    "object-no-value": b'{"a"}',
    "object-number-key": b"{1:2}",
    "object-trailing-comma": b'{"a":1,}',
    "object-no-colon": b'{"a" 1}',
    "mismatched": b"[1}",
    "escape-x": b'"\\x"',
    "escape-u-short": b'"\\u12"',
    "escape-u-nonhex": b'"\\u12g4"',
    "escape-U": b'"\\U0041"',
    "lone-high-surrogate": b'"\\ud800"',
    "lone-low-surrogate": b'"\\udc00"',
    "high-then-not-low": b'"\\ud800\\u0041"',
    "raw-ff-fe": b'"\xff\xfe"',
    "raw-surrogate": b'"\xed\xa0\x80"',
    "overlong": b'"\xc0\xaf"',
    "control-char": b'"a\x01b"',
    "single-quotes": b"'a'",
    "empty": b"",
}

# Valid JSON in the same places: still accepted.
GOOD_VALUES = [
    b"true",
    b"false",
    b"null",
    b"0",
    b"-0",
    b"-0.5e-3",
    b"1E+5",
    b"123456789012345678901234567890",
    b'"\\u00e9\\n\\/\\"\\\\ \\ud83d\\ude00"',
    '"é€😀"'.encode(),
    b'[1, -2.5, true, false, null, "x", {"a": [[], {}]}]',
    b' { "a" : 1 , "b" : [ ] } ',
]

PLACES = {
    "top": (b'"action":"update"', b'"x":%s,"action":"update"'),
    "arg": (b'"instId":"BTC-USDT"', b'"instId":"BTC-USDT","x":%s'),
    "item": (b'"ts":"1700000000001"', b'"x":%s,"ts":"1700000000001"'),
}


def fresh() -> Books:
    books = Books()
    books.apply(SNAPSHOT)
    return books


def place(where: str, value: bytes, frame: bytes = GOOD) -> bytes:
    old, new = PLACES[where]
    assert frame.count(old) == 1
    return frame.replace(old, new.replace(b"%s", value))


@pytest.mark.parametrize("where", list(PLACES))
@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_invalid_json_where_the_scanner_skips_is_a_frame_error(case, where):
    frame = place(where, BAD_VALUES[case])
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(frame)
    books = fresh()
    assert_rejected(books, frame)
    assert books.apply(GOOD).seq_id == 101  # and the next good frame applies


@pytest.mark.parametrize("where", list(PLACES))
@pytest.mark.parametrize("value", GOOD_VALUES)
def test_valid_json_where_the_scanner_skips_is_accepted(value, where):
    frame = place(where, value)
    orjson.loads(frame)
    book = fresh().apply(frame)
    assert book.seq_id == 101 and book.is_valid


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"seqId":101', b'"seqId":0101'),
        (b'"prevSeqId":100', b'"prevSeqId":0100'),
        (b'"checksum":0', b'"checksum":00'),
        (b'"checksum":0', b'"checksum":-00'),
        (b'"checksum":0', b'"checksum":01527627767'),
    ],
    ids=["seqId", "prevSeqId", "checksum-00", "checksum-minus-00", "checksum"],
)
def test_leading_zeros_in_integers_are_frame_errors(old, new):
    frame = GOOD.replace(old, new)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(frame)
    assert_rejected(fresh(), frame, match="leading zero")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"seqId":101', b'"s\\u0065qId":101'),
        (b'"checksum":0', b'"checksu\\u006d":0'),
        (b'"asks":', b'"\\u0061sks":'),
        (b'"instId":', b'"inst\\u0049d":'),
        (b'"action":', b'"\\u0061ction":'),
        (b'"seqId":101', b'"x\\"":1,"seqId":101'),
    ],
    ids=["seqId", "checksum", "asks", "instId", "action", "quote-in-name"],
)
def test_a_member_name_with_an_escape_is_rejected(old, new):
    """``"s\\u0065qId"`` is ``"seqId"`` in JSON: compared raw it was an unknown key, so the seqId
    (or checksum, or a side) was silently not read. Any escape in a name is now a FrameError."""
    frame = GOOD.replace(old, new)
    orjson.loads(frame)  # valid JSON: rejected because okxbook cannot compare it raw
    assert_rejected(fresh(), frame, match="escape in a member name")


def test_a_byte_error_in_a_key_cannot_turn_the_checksum_off():
    """The issue's ``"checksu\\xff":-1527627767`` was applied with no checksum check."""
    frame = GOOD.replace(b'"checksum":0', b'"checksu\xff":-1527627767')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(frame)
    assert_rejected(fresh(), frame, match="UTF-8")


@pytest.mark.parametrize("side", [b"bids", b"asks"])
def test_a_duplicated_side_is_a_frame_error(side):
    frame = GOOD.replace(b'"%s":[' % side, b'"%s":[],"%s":[' % (side, side))
    assert_rejected(fresh(), frame, match="duplicate " + side.decode())


# ------------------------------------------------------------------ differential fuzz


def test_differential_fuzz_against_a_strict_json_parser():
    """Mutants of every frame of a real capture (books, tickers, events): whenever orjson rejects
    a mutant, ``apply`` raises FrameError and no book changes. Seeded; the real frame is then
    applied, so the books follow the capture all along."""
    rng = random.Random(14)
    books = Books()
    rejected = 0
    for cf in iter_frames(CAPTURE):
        for _ in range(40):
            mutant = mutate(cf.frame, rng, edits=2, cut=3)
            try:
                orjson.loads(mutant)
            except orjson.JSONDecodeError:
                pass
            else:
                continue
            if mutant.strip() == b"pong":
                continue  # OKX's text pong is not JSON and is recognised on purpose
            rejected += 1
            assert_rejected(books, mutant, state=books_numbers)
        try:
            books.apply(cf.frame)
        except BookError:
            pass  # e.g. the capture's tickers pushes (UnknownChannelError)
    assert rejected > 5000
    assert any(b.is_valid for b in books)
