"""The checkpoint file after a power cut: a NUL tail (the file's size reached the disk,
its data did not) is repaired like a torn line; a corrupt line with whole records after
it is never "repaired" away."""

from __future__ import annotations

import asyncio
import os
import tempfile

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmfast.checkpoint import Checkpoint, CheckpointError, Record
from tests.test_batch import record_strategy


def encode(records: list[Record]) -> bytes:
    return b"".join(msgspec.json.encode(record) + b"\n" for record in records)


def expected_of(records: list[Record]) -> dict[int, Record]:
    expected: dict[int, Record] = {}
    for record in records:  # a success is final, else the last record wins
        known = expected.get(record.index)
        if known is None or known.completion is None:
            expected[record.index] = record
    return expected


def open_and_check(path: str, records: list[Record]) -> None:
    """Open the file; it must hold exactly ``records`` and nothing after them."""
    checkpoint = Checkpoint(path, fsync=False)
    checkpoint.open()
    try:
        expected = expected_of(records)
        for index in range(52):
            want = expected.get(index)
            if want is None:
                assert checkpoint.find(index, "") is None
            else:
                assert checkpoint.find(index, want.hash) == want
        assert checkpoint.succeeded == sum(r.completion is not None for r in expected.values())
    finally:
        asyncio.run(checkpoint.close())
    assert os.path.getsize(path) == len(encode(records))  # the damaged tail is gone


def test_a_nul_tail_after_whole_records_is_truncated(tmp_path: object) -> None:
    records = [Record(i, f"h{i}") for i in range(3)]
    path = os.path.join(str(tmp_path), "run.jsonl")
    with open(path, "wb") as file:
        file.write(encode(records) + b"\0" * 4096)
    open_and_check(path, records)
    # The file is usable again: a new record goes right after the last whole one.
    checkpoint = Checkpoint(path, fsync=False)
    checkpoint.open()
    checkpoint.write(Record(3, "h3"))
    asyncio.run(checkpoint.close())
    open_and_check(path, [*records, Record(3, "h3")])


def test_a_torn_record_then_nul_bytes_is_truncated(tmp_path: object) -> None:
    records = [Record(i, f"h{i}") for i in range(3)]
    torn = msgspec.json.encode(Record(3, "h3"))[:9]
    path = os.path.join(str(tmp_path), "run.jsonl")
    for tail in (torn + b"\0" * 100, torn + b"\0" * 10 + b"\n\0\0", b"\0" * 3 + b"\n"):
        with open(path, "wb") as file:
            file.write(encode(records) + tail)
        open_and_check(path, records)


def test_a_file_of_nul_bytes_only_is_emptied(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "run.jsonl")
    with open(path, "wb") as file:
        file.write(b"\0" * 512)
    open_and_check(path, [])


def test_nul_bytes_with_whole_records_after_them_are_an_error(tmp_path: object) -> None:
    records = [Record(i, f"h{i}") for i in range(3)]
    path = os.path.join(str(tmp_path), "run.jsonl")
    content = encode(records[:1]) + b"\0" * 64 + b"\n" + encode(records[1:])
    with open(path, "wb") as file:
        file.write(content)
    with pytest.raises(CheckpointError, match=r"line 2 is damaged.*\(line 3\)"):
        Checkpoint(path, fsync=False).open()
    with open(path, "rb") as file:
        assert file.read() == content  # never modified


garbage = st.binary(max_size=64)


@settings(max_examples=80, deadline=None)
@given(records=st.lists(record_strategy, max_size=10), data=st.data())
def test_any_prefix_with_a_nul_tail_repairs_to_its_whole_records(
    records: list[Record], data: st.DataObject
) -> None:
    encoded = encode(records)
    cut = data.draw(st.integers(0, len(encoded)), label="cut")
    # What a power cut leaves: NUL bytes, then anything that never was a whole record.
    tail = b"\0" * data.draw(st.integers(1, 300), label="nuls") + data.draw(garbage, "garbage")
    kept = encoded[:cut].count(b"\n")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.jsonl")
        with open(path, "wb") as file:
            file.write(encoded[:cut] + tail)
        open_and_check(path, records[:kept])


@settings(max_examples=50, deadline=None)
@given(records=st.lists(record_strategy, min_size=2, max_size=10), data=st.data())
def test_a_corrupt_complete_middle_line_is_an_error_and_left_alone(
    records: list[Record], data: st.DataObject
) -> None:
    lines = [msgspec.json.encode(record) + b"\n" for record in records]
    where = data.draw(st.integers(0, len(lines) - 2), label="line")
    damage = data.draw(
        st.one_of(
            st.just(b"\0" * len(lines[where])),  # zeroed in place
            st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b),
        ),
        label="damage",
    )
    line = lines[where]
    position = data.draw(st.integers(0, len(line) - 2), label="position")
    broken = (line[:position] + damage).replace(b"\n", b" ")
    try:
        msgspec.json.decode(broken, type=Record)
    except msgspec.DecodeError:
        pass
    else:
        assume(False)  # the damage happened to leave a valid record
    lines[where] = broken + b"\n"
    content = b"".join(lines)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.jsonl")
        with open(path, "wb") as file:
            file.write(content)
        with pytest.raises(CheckpointError, match=f"line {where + 1} "):
            Checkpoint(path, fsync=False).open()
        with open(path, "rb") as file:
            assert file.read() == content
