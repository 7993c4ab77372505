"""Bad input: every class raises FrameError (or a subclass) with a useful reason and leaves every book
exactly as it was; a valid frame right after a rejected one applies as if the bad one never came."""

from __future__ import annotations

import json

import pytest
from bad_frames import assert_rejected

from okxbook import Books, FrameError, MissingSnapshotError, SequenceError, UnknownChannelError
from okxbook.capture import iter_frames

DELTA = ("books-l2-tbt", "ETH-USDT-SWAP")
GOOD = (
    b'{"arg":{"channel":"books-l2-tbt","instId":"ETH-USDT-SWAP"},"action":"update","data":'
    b'[{"asks":[["2001.5","3","0","2"]],"bids":[["1999.9","1","0","1"]],"ts":"1700000000001",'
    b'"checksum":0,"prevSeqId":100,"seqId":101}]}'
)


def base_books(mkframe) -> Books:
    """Several books in every state: live with seqId, live image, books-rpi, invalid, empty."""
    books = Books()
    books.apply(
        mkframe(
            *DELTA,
            [("1999.9", "5", "0", "3"), ("1999.8", "2")],
            [("2000.1", "1"), ("2000.5", "4")],
            action="snapshot",
            prevSeqId=-1,
            seqId=100,
            ts="1700000000000",
        )
    )
    books.apply(
        mkframe(
            "books5",
            "BTC-USDT",
            [("64073", "0.58849577", "0", "44")],
            [("64073.1", "1.07909367", "0", "8")],
            seqId=79706756139,
        )
    )
    books.apply(
        mkframe(
            "books-rpi",
            "OMI-USD",
            [("0.0001512", "2645502.645", "0", "1")],
            [("0.0001617", "12325166.992", "1000", "2")],
            action="snapshot",
            prevSeqId=-1,
            seqId=1082831226,
        )
    )
    books.apply(
        mkframe(
            "books",
            "SOL-USDT",
            [("150", "1")],
            [("151", "1")],
            action="snapshot",
            prevSeqId=-1,
            seqId=5,
        )
    )
    with pytest.raises(SequenceError):
        books.apply(mkframe("books", "SOL-USDT", [], [], action="update", prevSeqId=4, seqId=6))
    assert books["books", "SOL-USDT"].status == "invalid"
    books.book("books50-l2-tbt", "BTC-USDT")  # registered, still empty
    return books


def swap(old: bytes, new: bytes, frame: bytes = GOOD) -> bytes:
    assert frame.count(old) == 1, old
    return frame.replace(old, new)


LONG = b"9" * 20
# id -> (frame, exception class, substring of reason, text expected at the reported offset or None)
BAD = {
    # not JSON / not an object
    "empty": (b"", FrameError, "empty frame", None),
    "blank": (b"  \n\t", FrameError, "empty frame", None),
    "text": (b"hello", FrameError, "not a JSON object", b"hello"),
    "array": (b"[1,2]", FrameError, "not a JSON object", b"[1,2]"),
    "null": (b"null", FrameError, "not a JSON object", None),
    "empty-object": (b"{}", FrameError, "empty object", None),
    "bare-key": (b"{not json}", FrameError, "string", b"not json"),
    "single-quotes": (GOOD.replace(b'"', b"'"), FrameError, "string", None),
    "binary": (b"\xff\xfe\x00", FrameError, "not a JSON object", None),
    "ping": (b"ping", FrameError, "not a JSON object", None),
    # wrong types
    "asks-object": (
        swap(b'"asks":[["2001.5","3","0","2"]]', b'"asks":{}'),
        FrameError,
        "array",
        b"{}",
    ),
    "level-object": (
        swap(b'[["2001.5","3","0","2"]]', b'[{"px":"2001.5"}]'),
        FrameError,
        "level must be an array",
        None,
    ),
    "level-string": (
        swap(b'[["2001.5","3","0","2"]]', b'["2001.5"]'),
        FrameError,
        "level must be an array",
        None,
    ),
    "px-number": (swap(b'["2001.5","3"', b'[2001.5,"3"'), FrameError, "string", b"2001.5"),
    "sz-number": (swap(b'["2001.5","3"', b'["2001.5",3'), FrameError, "string", b"3,"),
    "orders-number": (swap(b'"0","2"]', b'"0",2]'), FrameError, "string", b"2]"),
    "seqId-string": (swap(b'"seqId":101', b'"seqId":"101"'), FrameError, "integer", b'"101"'),
    "prevSeqId-string": (
        swap(b'"prevSeqId":100', b'"prevSeqId":"100"'),
        FrameError,
        "integer",
        b'"100"',
    ),
    "seqId-float": (swap(b'"seqId":101', b'"seqId":101.0'), FrameError, "integer", None),
    "seqId-null": (swap(b'"seqId":101', b'"seqId":null'), FrameError, "integer", b"null"),
    "checksum-float": (swap(b'"checksum":0', b'"checksum":0.5'), FrameError, "integer", None),
    "checksum-exp": (swap(b'"checksum":0', b'"checksum":1e3'), FrameError, "integer", None),
    "checksum-string": (swap(b'"checksum":0', b'"checksum":"0"'), FrameError, "integer", b'"0"'),
    "ts-float": (
        swap(b'"ts":"1700000000001"', b'"ts":1700000000001.5'),
        FrameError,
        "integer",
        None,
    ),
    "ts-letters": (swap(b'"ts":"1700000000001"', b'"ts":"17000x"'), FrameError, "ts", b'"17000x"'),
    # 13 characters, the length a millisecond ts has: read in two 8-byte steps
    **{
        f"ts-13-{where}": (
            swap(b'"ts":"1700000000001"', b'"ts":"%s"' % ts),
            FrameError,
            "ts",
            b'"%s"' % ts,
        )
        for where, ts in (
            ("letter-head", b"17000x0000001"),
            ("letter-tail", b"17000000000x1"),
            ("minus", b"-700000000001"),
        )
    },
    "data-object": (
        swap(b'"data":[{', b'"data":{"x":[{').replace(b"}]}", b"}]}}"),
        FrameError,
        "data must be an array",
        None,
    ),
    "data-item-array": (
        swap(b'"data":[{', b'"data":[[{').replace(b"}]}", b"}]]}"),
        FrameError,
        "data item must be an object",
        None,
    ),
    "arg-string": (
        swap(b'"arg":{"channel":"books-l2-tbt","instId":"ETH-USDT-SWAP"}', b'"arg":"books-l2-tbt"'),
        FrameError,
        "arg must be an object",
        None,
    ),
    "channel-number": (
        swap(b'"channel":"books-l2-tbt"', b'"channel":5'),
        FrameError,
        "string",
        None,
    ),
    "instId-null": (
        swap(b'"instId":"ETH-USDT-SWAP"', b'"instId":null'),
        FrameError,
        "string",
        None,
    ),
    "action-number": (swap(b'"action":"update"', b'"action":2'), FrameError, "string", None),
    # malformed numbers in a level
    "px-1e5x": (swap(b'"2001.5"', b'"1e5x"'), FrameError, "malformed price", b'"1e5x"'),
    "px-1e5": (swap(b'"2001.5"', b'"1e5"'), FrameError, "malformed price", b'"1e5"'),
    "px-dot5": (swap(b'"2001.5"', b'".5"'), FrameError, "malformed price", b'".5"'),
    "px-5dot": (swap(b'"2001.5"', b'"5."'), FrameError, "malformed price", b'"5."'),
    "px-empty": (swap(b'"2001.5"', b'""'), FrameError, "malformed price", b'""'),
    "px-space": (swap(b'"2001.5"', b'" 2001.5"'), FrameError, "malformed price", None),
    "px-plus": (swap(b'"2001.5"', b'"+2001.5"'), FrameError, "malformed price", None),
    "px-two-dots": (swap(b'"2001.5"', b'"2001.5.1"'), FrameError, "malformed price", None),
    "px-comma": (swap(b'"2001.5"', b'"2001,5"'), FrameError, "malformed price", None),
    "px-hex": (swap(b'"2001.5"', b'"0x7D1"'), FrameError, "malformed price", None),
    "px-nan": (swap(b'"2001.5"', b'"NaN"'), FrameError, "malformed price", None),
    "px-inf": (swap(b'"2001.5"', b'"Infinity"'), FrameError, "malformed price", None),
    "px-minus-only": (swap(b'"2001.5"', b'"-"'), FrameError, "malformed price", None),
    "px-double-minus": (swap(b'"2001.5"', b'"--1"'), FrameError, "malformed price", None),
    "px-fullwidth-digit": (
        swap(b'"2001.5"', '"２００１"'.encode()),
        FrameError,
        "malformed price",
        None,
    ),
    "px-escaped": (swap(b'"2001.5"', b'"\\u0032001.5"'), FrameError, "malformed price", None),
    "px-control-char": (swap(b'"2001.5"', b'"2001\n.5"'), FrameError, "control character", None),
    "sz-negative": (swap(b'"2001.5","3"', b'"2001.5","-1"'), FrameError, "malformed size", b'"-1"'),
    "sz-negative-zero": (
        swap(b'"2001.5","3"', b'"2001.5","-0"'),
        FrameError,
        "malformed size",
        None,
    ),
    "sz-dot5": (swap(b'"2001.5","3"', b'"2001.5",".5"'), FrameError, "malformed size", None),
    "sz-5dot": (swap(b'"2001.5","3"', b'"2001.5","5."'), FrameError, "malformed size", None),
    "sz-empty": (swap(b'"2001.5","3"', b'"2001.5",""'), FrameError, "malformed size", None),
    "third-malformed": (swap(b'"3","0","2"', b'"3","x","2"'), FrameError, "third field", None),
    "orders-decimal": (swap(b'"3","0","2"', b'"3","0","2.5"'), FrameError, "order count", None),
    "orders-negative": (swap(b'"3","0","2"', b'"3","0","-2"'), FrameError, "order count", None),
    # levels with the wrong number of fields
    "level-0-fields": (swap(b'[["2001.5","3","0","2"]]', b"[[]]"), FrameError, "string", None),
    "level-1-field": (swap(b'["2001.5","3","0","2"]', b'["2001.5"]'), FrameError, "4 fields", None),
    "level-2-fields": (
        swap(b'["2001.5","3","0","2"]', b'["2001.5","3"]'),
        FrameError,
        "4 fields",
        None,
    ),
    "level-3-fields": (
        swap(b'["2001.5","3","0","2"]', b'["2001.5","3","2"]'),
        FrameError,
        "4 fields",
        None,
    ),
    "level-5-fields": (
        swap(b'["2001.5","3","0","2"]', b'["2001.5","3","0","2","9"]'),
        FrameError,
        "4 fields",
        None,
    ),
    # values that do not fit
    "px-int64-overflow": (
        swap(b'"2001.5"', b'"' + LONG + b'"'),
        FrameError,
        "price too long",
        None,
    ),
    "sz-int64-overflow": (
        swap(b'"2001.5","3"', b'"2001.5","' + LONG + b'"'),
        FrameError,
        "size too long",
        None,
    ),
    "orders-overflow": (
        swap(b'"3","0","2"', b'"3","0","' + LONG + b'"'),
        FrameError,
        "order count",
        None,
    ),
    "seqId-overflow": (swap(b'"seqId":101', b'"seqId":' + LONG), FrameError, "int64", None),
    "px-too-many-decimals": (
        swap(b'"2001.5"', b'"0.1234567890123456789"'),
        FrameError,
        "too precise",
        None,
    ),
    "sz-too-many-decimals": (
        swap(b'"2001.5","3"', b'"2001.5","0.0000000000000000001"'),
        FrameError,
        "too precise",
        None,
    ),
    "px-string-too-long": (
        swap(b'"2001.5"', b'"' + b"0" * 60 + b'1"'),
        FrameError,
        "too long",
        None,
    ),
    "px-and-sz-strings-too-long": (
        swap(b'"2001.5","3"', b'"' + b"0" * 30 + b'1","' + b"0" * 30 + b'1"'),
        FrameError,
        "too long",
        None,
    ),
    # the book would need more decimals than int64 can hold at its current prices
    "rescale-overflow": (swap(b'"2001.5"', b'"1.123456789012345678"'), FrameError, "int64", None),
    # two levels of one frame that cannot share one decimal scale
    "frame-scale-overflow": (
        swap(
            b'[["2001.5","3","0","2"]]',
            b'[["100000000","1","0","1"],["0.000000000001","1","0","1"]]',
        ),
        FrameError,
        "int64",
        None,
    ),
    "sz-scale-overflow": (
        swap(
            b'[["2001.5","3","0","2"]]',
            b'[["2001.5","99999999999","0","1"],["2002","0.00000001","0","1"]]',
        ),
        FrameError,
        "int64",
        None,
    ),
    # trailing garbage
    "trailing-x": (GOOD + b"x", FrameError, "after the end", b"x"),
    "trailing-brace": (GOOD + b"}", FrameError, "after the end", b"}"),
    "two-frames": (GOOD + GOOD, FrameError, "after the end", GOOD),
    "trailing-nul": (GOOD + b"\x00", FrameError, "after the end", None),
    # duplicate keys that the engine would otherwise read twice
    "dup-asks": (swap(b'"asks":[', b'"asks":[],"asks":['), FrameError, "duplicate asks", None),
    "dup-bids": (swap(b'"bids":[', b'"bids":[],"bids":['), FrameError, "duplicate bids", None),
    "dup-action": (
        swap(b'"action":"update"', b'"action":"update","action":"snapshot"'),
        FrameError,
        "duplicate action",
        None,
    ),
    "dup-arg": (
        swap(b'"action"', b'"arg":{"channel":"books","instId":"X"},"action"'),
        FrameError,
        "duplicate arg",
        None,
    ),
    "dup-data": (
        GOOD[:-1] + b',"data":[{"asks":[],"bids":[]}]}',
        FrameError,
        "duplicate data",
        None,
    ),
    # empty data
    "data-empty": (GOOD[: GOOD.index(b'"data":')] + b'"data":[]}', FrameError, "empty data", None),
    "data-item-empty": (
        GOOD[: GOOD.index(b'"data":')] + b'"data":[{}]}',
        FrameError,
        "empty data item",
        None,
    ),
    "item-without-bids": (
        swap(b',"bids":[["1999.9","1","0","1"]]', b""),
        FrameError,
        "without asks and bids",
        None,
    ),
    "too-many-items": (
        GOOD[: GOOD.index(b'"data":')]
        + b'"data":['
        + b",".join([b'{"asks":[],"bids":[]}'] * 9)
        + b"]}",
        FrameError,
        "too many",
        None,
    ),
    # unknown action / structure
    "action-partial": (
        swap(b'"action":"update"', b'"action":"partial"'),
        FrameError,
        "unknown action",
        None,
    ),
    "action-capitalised": (
        swap(b'"action":"update"', b'"action":"Snapshot"'),
        FrameError,
        "unknown action",
        None,
    ),
    "action-empty": (
        swap(b'"action":"update"', b'"action":""'),
        FrameError,
        "unknown action",
        None,
    ),
    "no-arg": (
        swap(b'"arg":{"channel":"books-l2-tbt","instId":"ETH-USDT-SWAP"},', b""),
        FrameError,
        "no arg",
        None,
    ),
    "no-channel": (swap(b'"channel":"books-l2-tbt",', b""), FrameError, "without channel", None),
    "no-instId": (swap(b',"instId":"ETH-USDT-SWAP"', b""), FrameError, "without instId", None),
    "no-data": (GOOD[: GOOD.index(b',"data":')] + b"}", FrameError, "no data", None),
    "delta-without-action": (swap(b'"action":"update",', b""), FrameError, "action", None),
    "image-with-update": (
        b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["1","1","0","1"]],"seqId":5}]}',
        FrameError,
        "image",
        None,
    ),
    # not a book channel
    "trades-push": (
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1","px":"64000","sz":"0.1","side":"buy","ts":"1"}]}',
        UnknownChannelError,
        "trades",
        None,
    ),
    "tickers-push": (
        b'{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1"}]}',
        UnknownChannelError,
        "tickers",
        None,
    ),
    "books-lookalike": (
        swap(b'"books-l2-tbt"', b'"books-l3-tbt"', GOOD.replace(b'"update"', b'"snapshot"')),
        UnknownChannelError,
        "books-l3-tbt",
        None,
    ),
    # updates before any snapshot
    "update-new-book": (
        swap(b'"ETH-USDT-SWAP"', b'"DOGE-USDT-SWAP"'),
        MissingSnapshotError,
        "snapshot",
        None,
    ),
    "update-registered-empty-book": (
        b'{"arg":{"channel":"books50-l2-tbt","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[["1","1","0","1"]],"prevSeqId":1,"seqId":2}]}',
        MissingSnapshotError,
        "snapshot",
        None,
    ),
}


@pytest.fixture
def base(mkframe):
    return base_books(mkframe)


@pytest.fixture
def reference_after_good(mkframe, state):
    books = base_books(mkframe)
    books.apply(GOOD)
    return state(books)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_frame_raises_and_leaves_every_book_unchanged(case, base, state, reference_after_good):
    frame, exc, reason, at_offset = BAD[case]
    before = state(base)
    keys = {(b.channel, b.inst_id) for b in base}
    with pytest.raises(exc) as ei:
        base.apply(frame)
    e = ei.value
    assert isinstance(e, FrameError) and isinstance(e, ValueError)
    assert reason in e.reason and e.reason in str(e)
    assert -1 <= e.offset <= len(frame)
    if at_offset is not None:
        assert frame[e.offset :].startswith(at_offset), (e.offset, frame[e.offset : e.offset + 20])
    assert state(base) == before
    assert {(b.channel, b.inst_id) for b in base} == keys
    # The next valid frame applies exactly as if the bad one had never come.
    assert base.apply(GOOD) is base[DELTA]
    assert state(base) == reference_after_good


def test_bad_frame_names_the_book_when_it_is_known():
    books = Books()
    with pytest.raises(FrameError) as ei:
        books.apply(swap(b'"2001.5"', b'"1e5x"'))
    assert (ei.value.channel, ei.value.inst_id) == DELTA
    with pytest.raises(UnknownChannelError) as ei:
        books.apply(BAD["trades-push"][0])
    assert (ei.value.channel, ei.value.inst_id) == ("trades", "BTC-USDT")


def _replay(frames) -> Books:
    books = Books()
    for frame in frames:
        try:
            books.apply(frame)
        except UnknownChannelError:
            pass
    return books


def _real_update(frames_dir):
    """The cryptofeed `books` capture up to a large BTC-USDT update (it carries a checksum)."""
    path = frames_dir / "bmoscon_cryptofeed/2022-05-13_books_3079107/OKX.ws.1.0"
    seen, have_snapshot = [], False
    for cf in iter_frames(path):
        msg = json.loads(cf.frame)
        inst = msg.get("arg", {}).get("instId")
        if msg.get("action") == "snapshot" and inst == "BTC-USDT":
            have_snapshot = True
        elif (
            msg.get("action") == "update"
            and inst == "BTC-USDT"
            and have_snapshot
            and len(cf.frame) > 1500
        ):
            return seen, cf.frame
        seen.append(cf.frame)
    raise AssertionError("no suitable update in the capture")


def test_every_truncation_of_a_real_update_is_rejected_without_a_trace(frames_dir, state):
    earlier, frame = _real_update(frames_dir)
    assert json.loads(frame)["data"][0]["checksum"] != 0
    books = _replay(earlier)
    before = state(books)
    reasons = set()
    for i in range(len(frame)):
        with pytest.raises(FrameError) as ei:
            books.apply(frame[:i])
        reasons.add(ei.value.reason)
        assert 0 <= ei.value.offset <= i
    assert reasons == {"empty frame", "truncated frame"}
    assert state(books) == before
    # The whole frame then applies (its checksum verifies) exactly as in a clean replay.
    book = books.apply(frame)
    assert book.is_valid
    assert book.stats()["checksum_ok"] == before[("books", "BTC-USDT")]["stats"]["checksum_ok"] + 1
    assert state(books) == state(_replay(earlier + [frame]))


def test_every_truncation_of_snapshots_and_events_is_rejected(mkframe, state):
    frames = [
        mkframe(
            "books",
            "NEW-USDT",
            [("1.5", "2")],
            [("1.6", "3")],
            action="snapshot",
            prevSeqId=-1,
            seqId=1,
            checksum=123,
        ),
        mkframe("books5", "NEW-USDT", [("1.5", "2")], [("1.6", "3")], seqId=1),
        b'{"id":"b1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}',
        b'{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}',
    ]
    books = base_books(mkframe)
    before = state(books)
    for frame in frames:
        for i in range(len(frame)):
            with pytest.raises(FrameError):
                books.apply(frame[:i])
    assert state(books) == before and len(books) == len(before)


# ------------------------------------------------------------------ bugs (see the report)


@pytest.mark.parametrize(
    "dup",
    [
        (b'"seqId":101', b'"seqId":101,"seqId":102'),
        (b'"prevSeqId":100', b'"prevSeqId":99,"prevSeqId":100'),
        (b'"checksum":0', b'"checksum":0,"checksum":0'),
        (b'"ts":"1700000000001"', b'"ts":"1","ts":"1700000000001"'),
        (b'"channel":"books-l2-tbt"', b'"channel":"trades","channel":"books-l2-tbt"'),
        (b'"instId":"ETH-USDT-SWAP"', b'"instId":"BTC-USDT","instId":"ETH-USDT-SWAP"'),
    ],
    ids=["seqId", "prevSeqId", "checksum", "ts", "channel", "instId"],
)
def test_duplicate_scalar_keys_are_rejected(dup, base):
    assert_rejected(base, swap(*dup))


@pytest.mark.parametrize(
    "frame",
    [
        # delta channel without action, but prevSeqId -1: the new book is created, then the frame rejected
        b'{"arg":{"channel":"books","instId":"NEW-USDT"},"data":[{"asks":[],"bids":[["1","1","0","1"]],"prevSeqId":-1,"seqId":1}]}',
        # image channel with action update for an instrument seen for the first time
        b'{"arg":{"channel":"books5","instId":"NEW-USDT"},"action":"update","data":[{"asks":[],"bids":[["1","1","0","1"]],"seqId":1}]}',
        # snapshot whose levels cannot share one int64 scale
        b'{"arg":{"channel":"books","instId":"NEW-USDT"},"action":"snapshot","data":[{"asks":[["100000000","1","0","1"]],"bids":[["0.000000000001","1","0","1"]],"prevSeqId":-1,"seqId":1}]}',
    ],
    ids=["no-action", "image-update", "scale-overflow"],
)
def test_rejected_first_frame_leaves_no_book_behind(frame, base):
    assert_rejected(base, frame)
    assert base.get(frame.split(b'"channel":"')[1].split(b'"')[0].decode(), "NEW-USDT") is None


def test_unknown_channel_detected_whatever_the_key_order(base):
    with pytest.raises(UnknownChannelError):
        base.apply(
            b'{"data":[{"instId":"BTC-USDT","tradeId":"1","px":"1","sz":"1"}],'
            b'"arg":{"channel":"trades","instId":"BTC-USDT"}}'
        )


def test_unencodable_str_frame_is_a_frame_error(base):
    assert_rejected(base, GOOD.decode().replace("ETH", "\ud800"))
