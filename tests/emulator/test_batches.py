"""Message Batches through the official SDK (real HTTP), and the batch store's own rules."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from starlette.applications import Starlette

from tests.emulator.harness import TEST_KEY, Admin, EmulatorServer, serve_app
from tokenomy.emulator import ApiError, BatchLimits, BatchTiming
from tokenomy.emulator.batch_envelope import scan_requests
from tokenomy.emulator.batches import paginate

MODEL = "claude-sonnet-4-6"


def _params(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def _requests(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"req-{i}", "params": _params(f"question {i}", **extra)} for i in range(n)
    ]


@pytest.fixture
def batch_server(make_app: Callable[..., Starlette]) -> Iterator[EmulatorServer]:
    app = make_app(batch_timing=BatchTiming(seconds_per_request=1.0, min_seconds=10.0))
    with serve_app(app) as srv:
        yield srv


@pytest.fixture
def bsdk(batch_server: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=TEST_KEY, base_url=batch_server.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
def badmin(batch_server: EmulatorServer) -> Admin:
    return batch_server.admin()


def test_create_retrieve_results(bsdk: anthropic.Anthropic, badmin: Admin) -> None:
    reqs = _requests(3)
    reqs.append({"custom_id": "bad-one", "params": _params(max_tokens=0)})  # batches forbid it
    batch = bsdk.messages.batches.create(requests=reqs)  # type: ignore[arg-type]
    assert batch.id.startswith("msgbatch_01")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 4 and batch.results_url is None
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    badmin.advance(5)  # 4 requests at 1 s each are done, but a batch lasts ≥ 10 s
    assert bsdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    badmin.advance(5)
    done = bsdk.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    assert done.ended_at is not None and (done.ended_at - done.created_at).total_seconds() == 10
    counts = done.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (3, 1, 0)
    assert done.results_url is not None and done.results_url.endswith(f"/{batch.id}/results")
    results = {r.custom_id: r.result for r in bsdk.messages.batches.results(batch.id)}
    assert set(results) == {"req-0", "req-1", "req-2", "bad-one"}
    ok = results["req-1"]
    assert ok.type == "succeeded"
    assert ok.message.usage.service_tier == "batch"
    assert ok.message.content[0].type == "text"
    assert ok.message.content[0].text == "Echo: question 1"
    bad = results["bad-one"]
    assert bad.type == "errored"
    assert bad.error.error.type == "invalid_request_error"


def test_counts_always_sum_to_the_total(bsdk: anthropic.Anthropic, badmin: Admin) -> None:
    batch = bsdk.messages.batches.create(requests=_requests(30))  # type: ignore[arg-type]
    for _ in range(8):
        c = bsdk.messages.batches.retrieve(batch.id).request_counts
        assert c.processing + c.succeeded + c.errored + c.canceled + c.expired == 30
        badmin.advance(5)
    assert bsdk.messages.batches.retrieve(batch.id).request_counts.succeeded == 30


def test_cancel_then_end(bsdk: anthropic.Anthropic, badmin: Admin) -> None:
    batch = bsdk.messages.batches.create(requests=_requests(20))  # type: ignore[arg-type]
    badmin.advance(5.5)  # requests at t = 1..5 have run
    canceling = bsdk.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == 20
    with pytest.raises(anthropic.BadRequestError):  # still canceling: not deletable yet
        bsdk.messages.batches.delete(batch.id)
    badmin.advance(1)
    ended = bsdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (5, 15)
    kinds = [r.result.type for r in bsdk.messages.batches.results(batch.id)]
    assert kinds.count("canceled") == 15 and kinds.count("succeeded") == 5


def test_delete_only_after_end(bsdk: anthropic.Anthropic, badmin: Admin) -> None:
    batch = bsdk.messages.batches.create(requests=_requests(2))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        bsdk.messages.batches.delete(batch.id)
    badmin.advance(10)
    deleted = bsdk.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        bsdk.messages.batches.retrieve(batch.id)


def test_results_before_the_end_are_refused(bsdk: anthropic.Anthropic) -> None:
    batch = bsdk.messages.batches.create(requests=_requests(2))  # type: ignore[arg-type]
    with pytest.raises(anthropic.AnthropicError):  # the SDK refuses: no results_url yet
        bsdk.messages.batches.results(batch.id)
    with pytest.raises(anthropic.BadRequestError):  # the route itself refuses too
        bsdk.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)


def test_list_paginates_newest_first(bsdk: anthropic.Anthropic, badmin: Admin) -> None:
    ids = []
    for _ in range(5):
        ids.append(bsdk.messages.batches.create(requests=_requests(1)).id)  # type: ignore[arg-type]
        badmin.advance(1)
    newest_first = ids[::-1]
    page = bsdk.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more and page.first_id == newest_first[0] and page.last_id == newest_first[1]
    assert [b.id for b in bsdk.messages.batches.list(limit=2)] == newest_first  # auto-paging
    before = bsdk.messages.batches.list(limit=2, before_id=newest_first[3])
    assert [b.id for b in before.data] == newest_first[1:3]
    after = bsdk.messages.batches.list(limit=10, after_id=newest_first[2])
    assert [b.id for b in after.data] == newest_first[3:] and not after.has_more


def test_batches_are_scoped_to_the_key(
    bsdk: anthropic.Anthropic, batch_server: EmulatorServer
) -> None:
    batch = bsdk.messages.batches.create(requests=_requests(1))  # type: ignore[arg-type]
    with anthropic.Anthropic(
        api_key="sk-ant-someone-else", base_url=batch_server.base_url, max_retries=0
    ) as other:
        assert list(other.messages.batches.list()) == []
        with pytest.raises(anthropic.NotFoundError):
            other.messages.batches.retrieve(batch.id)


def test_unfinished_requests_expire_after_24h(make_app: Callable[..., Starlette]) -> None:
    app = make_app(batch_timing=BatchTiming(seconds_per_request=3600.0))
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        batch = sdk.messages.batches.create(requests=_requests(30))  # type: ignore[arg-type]
        srv.admin().advance(25 * 3600)
        ended = sdk.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended"
        assert ended.ended_at == ended.expires_at
        assert (ended.request_counts.succeeded, ended.request_counts.expired) == (24, 6)


def test_poll_auto_advance_finishes_a_batch(make_app: Callable[..., Starlette]) -> None:
    app = make_app(batch_timing=BatchTiming(poll_advance_s=4.0))
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        batch = sdk.messages.batches.create(requests=_requests(3))  # type: ignore[arg-type]
        statuses = [sdk.messages.batches.retrieve(batch.id).processing_status for _ in range(3)]
        assert statuses == ["in_progress", "in_progress", "ended"]


def test_results_come_shuffled_and_repeatably(make_app: Callable[..., Starlette]) -> None:
    orders = []
    for _ in range(2):
        with (
            serve_app(make_app(seed=3)) as srv,
            anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
        ):
            batch = sdk.messages.batches.create(requests=_requests(12))  # type: ignore[arg-type]
            srv.admin().advance(60)
            orders.append([r.custom_id for r in sdk.messages.batches.results(batch.id)])
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(f"req-{i}" for i in range(12))
    assert orders[0] != [f"req-{i}" for i in range(12)]


def test_batch_requests_share_the_prompt_cache(sdk: anthropic.Anthropic, admin: Admin) -> None:
    system = [
        {
            "type": "text",
            "text": "Reference manual. " + "The quick brown fox jumps over the lazy dog. " * 400,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    reqs = [{"custom_id": f"c{i}", "params": _params(f"q{i}", system=system)} for i in range(4)]
    batch = sdk.messages.batches.create(requests=reqs)  # type: ignore[arg-type]
    admin.advance(60)
    usages = [r.result.message.usage for r in sdk.messages.batches.results(batch.id)]  # type: ignore[union-attr]
    # requests run one after another: the first writes the prefix, the others read it
    assert usages[0].cache_creation_input_tokens and not usages[0].cache_read_input_tokens
    assert all(
        u.cache_read_input_tokens == usages[0].cache_creation_input_tokens for u in usages[1:]
    )
    assert all(u.service_tier == "batch" for u in usages)


# -- the envelope, checked at create time --------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ([], "at least 1 item"),
        ([{"custom_id": "has space", "params": _params()}], "custom_id"),
        ([{"custom_id": "x" * 65, "params": _params()}], "custom_id"),
        ([{"params": _params()}], "custom_id: Field required"),
        (
            [{"custom_id": "a", "params": _params()}, {"custom_id": "a", "params": _params()}],
            "unique",
        ),
        ([{"custom_id": "a", "params": "nope"}], "params"),
        ([{"custom_id": "a"}], "params: Field required"),
    ],
)
def test_bad_envelopes_are_rejected(
    bsdk: anthropic.Anthropic, requests: list[Any], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        bsdk.messages.batches.create(requests=requests)
    assert fragment in err.value.message


def test_too_many_requests_is_413(make_app: Callable[..., Starlette]) -> None:
    app = make_app(batch_limits=BatchLimits(max_requests=3))
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        sdk.messages.batches.create(requests=_requests(3))  # type: ignore[arg-type]
        with pytest.raises(anthropic.RequestTooLargeError):
            sdk.messages.batches.create(requests=_requests(4))  # type: ignore[arg-type]


def test_too_many_bytes_is_413(make_app: Callable[..., Starlette]) -> None:
    app = make_app(batch_limits=BatchLimits(max_body_bytes=4_000))
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
        pytest.raises(anthropic.RequestTooLargeError),
    ):
        sdk.messages.batches.create(requests=_requests(60))  # type: ignore[arg-type]


def test_spool_files_are_removed(make_app: Callable[..., Starlette], tmp_path: Path) -> None:
    app = make_app(spool_dir=tmp_path)
    with (
        serve_app(app) as srv,
        anthropic.Anthropic(api_key=TEST_KEY, base_url=srv.base_url, max_retries=0) as sdk,
    ):
        batch = sdk.messages.batches.create(requests=_requests(3))  # type: ignore[arg-type]
        assert len(list(tmp_path.iterdir())) == 2  # the spooled body and the results
        srv.admin().advance(60)
        sdk.messages.batches.retrieve(batch.id)
        assert len(list(tmp_path.iterdir())) == 1  # the body goes once every request ran
        sdk.messages.batches.delete(batch.id)
        assert list(tmp_path.iterdir()) == []


# -- the scanner and pagination, directly --------------------------------------------------


def _scan(tmp_path: Path, body: bytes, *, max_requests: int = 100) -> list[str]:
    path = tmp_path / "body.json"
    path.write_bytes(body)
    ids, (starts, ends) = scan_requests(path, max_requests=max_requests)
    for cid, s, e in zip(ids, starts, ends, strict=True):
        assert orjson.loads(body[s:e])["custom_id"] == cid
    return ids


def test_scanner_finds_each_request(tmp_path: Path) -> None:
    body = orjson.dumps(
        {
            "other": {"nested": ["]", "}", '"quoted\\" ]']},
            "requests": [
                {"custom_id": "a", "params": {"x": 'tricky " } ] \\ text', "y": [1, {"z": None}]}},
                {"custom_id": "b", "params": {}},
            ],
            "tail": 1.5e3,
        }
    )
    assert _scan(tmp_path, body) == ["a", "b"]
    pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    assert _scan(tmp_path, pretty) == ["a", "b"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"requests": [{"custom_id": "a", "params": {}}',
        b'{"requests": [{"custom_id": "a", "params": {}}]} trailing',
        b'{"requests": [{"custom_id": "a", "params": {"x": tru}}]}',
        b'{"requests": [{"custom_id": "a", "params": {}}], "x": nul}',
        b'{"requests": "nope"}',
        b'{"other": 1}',
        b'{"requests": [{"custom_id": "a", "params": {}} {"custom_id": "b", "params": {}}]}',
    ],
)
def test_scanner_rejects_malformed_bodies(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(ApiError) as err:
        _scan(tmp_path, body)
    assert err.value.status == 400


def test_scanner_enforces_the_request_cap(tmp_path: Path) -> None:
    body = orjson.dumps({"requests": [{"custom_id": f"r{i}", "params": {}} for i in range(5)]})
    with pytest.raises(ApiError) as err:
        _scan(tmp_path, body, max_requests=4)
    assert err.value.status == 413 and err.value.error_type == "request_too_large"


@pytest.mark.parametrize(
    ("after", "before", "limit", "expected"),
    [
        (None, None, 2, (0, 2, True)),
        (None, None, 9, (0, 5, False)),
        ("c", None, 2, (3, 5, False)),
        ("b", None, 2, (2, 4, True)),
        (None, "d", 2, (1, 3, True)),
        (None, "b", 5, (0, 1, False)),
        ("zz", None, 2, (0, 0, False)),
    ],
)
def test_paginate(
    after: str | None, before: str | None, limit: int, expected: tuple[int, int, bool]
) -> None:
    assert paginate(list("abcde"), limit=limit, after_id=after, before_id=before) == expected


def test_create_memory_stays_flat(make_app: Callable[..., Starlette], tmp_path: Path) -> None:
    """A 6 MB body of 2,000 requests (3 KB shared prefix each): Python holds far less."""
    prefix = "Shared instructions. " * 150
    reqs = [
        {"custom_id": f"r{i}", "params": _params(f"{prefix} question {i}")} for i in range(2_000)
    ]
    body = orjson.dumps({"requests": reqs})
    del reqs
    path = tmp_path / "body.json"
    path.write_bytes(body)
    size = len(body)
    del body
    tracemalloc.start()
    try:
        ids, _ = scan_requests(path, max_requests=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ids) == 2_000
    assert size > 6_000_000
    assert peak < size / 10, f"scanning a {size:,}-byte body peaked at {peak:,} bytes"
