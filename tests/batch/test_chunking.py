"""Chunks stay within the API's limits, keep order and lose nothing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenomy.batch.chunking import pack
from tokenomy.batch.jobs import envelope_bytes, internal_id, parse_internal_id
from tokenomy.errors import BatchError


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=400), max_size=300),
    max_requests=st.integers(min_value=1, max_value=50),
    max_bytes=st.integers(min_value=420, max_value=5000),
)
def test_every_chunk_fits_and_every_request_is_in_exactly_one(
    sizes: list[int], max_requests: int, max_bytes: int
) -> None:
    items = list(enumerate(sizes))
    chunks = list(pack(items, max_requests=max_requests, max_bytes=max_bytes))
    assert [s for c in chunks for s in c] == [s for s, _ in items]  # all, once, in order
    for c in chunks:
        assert 1 <= len(c) <= max_requests
        assert envelope_bytes(sizes[s] for s in c) <= max_bytes
    # greedy: a chunk ends only when the next request would not fit
    for a, b in itertools.pairwise(chunks):
        full = len(a) == max_requests
        over = envelope_bytes([*(sizes[s] for s in a), sizes[b[0]]]) > max_bytes
        assert full or over


def test_the_envelope_size_is_exact() -> None:
    items = [b'{"custom_id":"a","params":{}}', b'{"custom_id":"bb","params":{}}']
    body = b'{"requests":[' + b",".join(items) + b"]}"
    assert envelope_bytes(len(i) for i in items) == len(body)


def test_a_request_larger_than_any_batch_is_refused_by_name() -> None:
    with pytest.raises(BatchError, match="request 3 is 9,000 bytes"):
        list(pack([(3, 9000)], max_requests=10, max_bytes=4096))


def test_internal_ids_round_trip_and_fit_the_api_pattern() -> None:
    cid = internal_id("job0123456789ab", 12, 99_999)
    assert cid == "job0123456789ab-000012-00099999"
    assert len(cid) <= 64
    assert parse_internal_id(cid) == ("job0123456789ab", 12, 99_999)
    assert parse_internal_id("q17") is None
    assert parse_internal_id("job1-x-2") is None
