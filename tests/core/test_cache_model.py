"""The client-side cache prediction, rule by rule (reference §1.3–§1.6)."""

from __future__ import annotations

from typing import Any

from tests.core.builders import agent_turns, request, text
from tokenomy.core.anatomy import Anatomy, anatomy
from tokenomy.core.cache_model import BreakpointPos, CacheModel, Prediction
from tokenomy.core.canonical import BlockRef
from tokenomy.core.usage import Usage
from tokenomy.data import builtin_table

SONNET = builtin_table().get("claude-sonnet-4-5")
M = SONNET.id


def an(req: dict[str, Any]) -> Anatomy:
    return anatomy(req, model=SONNET)


def idx(a: Anatomy, ref: BlockRef) -> int:
    i = a.chain.index_of(ref)
    assert i is not None
    return i


def send(
    cm: CacheModel,
    a: Anatomy,
    bps: list[BreakpointPos],
    now_s: float,
    *,
    call: str,
    usage: Usage | None = None,
    min_tokens: int = 1024,
) -> Prediction:
    """Predict, send, and report the predicted usage back as the server's (a faithful server)."""
    p = cm.predict(
        model=M, anatomy=a, breakpoints=bps, min_cacheable_tokens=min_tokens, now_s=now_s
    )
    cm.begin(p, a, call_id=call, now_s=now_s)
    cm.started(call)
    u = usage or Usage(
        input_tokens=p.uncached_tokens,
        cache_read_tokens=p.read_tokens,
        cache_write_5m_tokens=p.write_5m_tokens,
        cache_write_1h_tokens=p.write_1h_tokens,
        output_tokens=10,
    )
    cm.observe(p, a, u, call_id=call)
    return p


def test_first_call_writes_up_to_the_last_breakpoint_then_the_next_reads_it() -> None:
    cm = CacheModel()
    r1 = request(messages=agent_turns(1))
    a1 = an(r1)
    last1 = len(a1.chain) - 1
    p1 = send(cm, a1, [BreakpointPos(last1)], 0.0, call="c1")
    assert p1.read_tokens == 0 and p1.write_5m_tokens > 0
    r2 = request(messages=agent_turns(2))
    a2 = an(r2)
    p2 = send(cm, a2, [BreakpointPos(len(a2.chain) - 1)], 10.0, call="c2")
    assert p2.hit_index == last1
    assert p2.read_tokens == p1.write_5m_tokens  # calibrated: exactly what was written


def test_calibration_makes_the_read_exact_when_estimates_are_off() -> None:
    cm = CacheModel()
    a1 = an(request(messages=agent_turns(1)))
    last = len(a1.chain) - 1
    p1 = cm.predict(
        model=M, anatomy=a1, breakpoints=[BreakpointPos(last)], min_cacheable_tokens=1024, now_s=0
    )
    cm.begin(p1, a1, call_id="c1", now_s=0)
    real = Usage(input_tokens=3, cache_write_5m_tokens=5000, output_tokens=1)  # the server's count
    cm.observe(p1, a1, real, call_id="c1")
    a2 = an(request(messages=agent_turns(2)))
    p2 = cm.predict(
        model=M,
        anatomy=a2,
        breakpoints=[BreakpointPos(len(a2.chain) - 1)],
        min_cacheable_tokens=1024,
        now_s=5,
    )
    assert p2.read_tokens == 5000


def test_ttl_expires_five_minutes_after_the_request_started() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    send(cm, a, bp, 0.0, call="c1")
    p_ok = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=299.0)
    assert p_ok.hit_index is not None
    p_gone = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=300.0)
    assert p_gone.hit_index is None and p_gone.expired


def test_a_hit_refreshes_the_ttl() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    send(cm, a, bp, 0.0, call="c1")
    send(cm, a, bp, 250.0, call="c2")  # hit at 250 refreshes to 550
    p = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=500.0)
    assert p.hit_index is not None


def test_one_hour_entries_outlive_five_minutes() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1, "1h")]
    p1 = send(cm, a, bp, 0.0, call="c1")
    assert p1.write_1h_tokens > 0 and p1.write_5m_tokens == 0
    assert (
        cm.predict(
            model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=3000
        ).hit_index
        is not None
    )


def test_mixed_ttls_bill_a_b_c() -> None:
    """§1.6: reads up to A, 1h writes A..B, 5m writes B..C."""
    cm = CacheModel()
    a = an(request(messages=agent_turns(2)))
    tools_end = idx(a, BlockRef("tools", 2))
    sys_end = idx(a, BlockRef("system", 0))
    last = len(a.chain) - 1
    send(cm, a, [BreakpointPos(tools_end, "1h")], 0.0, call="c1")
    p = cm.predict(
        model=M,
        anatomy=a,
        breakpoints=[
            BreakpointPos(tools_end, "1h"),
            BreakpointPos(sys_end, "1h"),
            BreakpointPos(last, "5m"),
        ],
        min_cacheable_tokens=1024,
        now_s=10.0,
    )
    pos = p.positions
    assert p.read_tokens == pos[tools_end]
    assert p.write_1h_tokens == pos[sys_end] - pos[tools_end]
    assert p.write_5m_tokens == pos[last] - pos[sys_end]
    assert p.uncached_tokens == 0


def test_entries_are_unreadable_until_the_writing_response_starts() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    p1 = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=0)
    cm.begin(p1, a, call_id="c1", now_s=0)
    parallel = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=1)
    assert parallel.hit_index is None and parallel.unreadable
    cm.started("c1")
    assert (
        cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=2).hit_index
        is not None
    )


def test_an_aborted_request_writes_nothing() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    p1 = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=0)
    cm.begin(p1, a, call_id="c1", now_s=0)
    cm.abort("c1")
    assert not cm.entries


def test_lookback_stops_after_twenty_positions() -> None:
    """§1.3: 20 positions counting the breakpoint: an entry 20 behind is out of reach."""
    cm = CacheModel()
    a1 = an(request(messages=agent_turns(1, calls_per_turn=1)))
    end1 = len(a1.chain) - 1
    send(cm, a1, [BreakpointPos(end1)], 0.0, call="c1")
    a2 = an(
        request(messages=agent_turns(1, calls_per_turn=1) + agent_turns(10, calls_per_turn=1)[1:])
    )
    far = len(a2.chain) - 1
    assert far - end1 >= 20
    p = cm.predict(
        model=M, anatomy=a2, breakpoints=[BreakpointPos(far)], min_cacheable_tokens=1024, now_s=5
    )
    assert p.hit_index is None and p.out_of_lookback == (end1,)
    anchored = cm.predict(
        model=M,
        anatomy=a2,
        breakpoints=[BreakpointPos(end1), BreakpointPos(far)],
        min_cacheable_tokens=1024,
        now_s=5,
    )
    assert anchored.hit_index == end1


def test_exactly_nineteen_back_is_still_found() -> None:
    cm = CacheModel()
    a = an(request(messages=agent_turns(12, calls_per_turn=1)))
    target = len(a.chain) - 20
    send(cm, a, [BreakpointPos(target)], 0.0, call="c1")
    p = cm.predict(
        model=M,
        anatomy=a,
        breakpoints=[BreakpointPos(len(a.chain) - 1)],
        min_cacheable_tokens=1024,
        now_s=1,
    )
    assert p.hit_index == target


def test_below_minimum_neither_reads_nor_writes() -> None:
    cm = CacheModel()
    a = an(request(tools=0, system_chars=100))
    p = send(cm, a, [BreakpointPos(len(a.chain) - 1)], 0.0, call="c1", min_tokens=4096)
    assert p.write_tokens == 0 and p.read_tokens == 0 and p.below_minimum
    assert not cm.entries


def test_each_model_has_its_own_cache() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    send(cm, a, bp, 0.0, call="c1")
    p = cm.predict(
        model="claude-opus-4-8", anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=1
    )
    assert p.hit_index is None


def test_an_unpredicted_read_is_adopted() -> None:
    cm = CacheModel()
    a = an(request())
    bp = [BreakpointPos(len(a.chain) - 1)]
    p = cm.predict(model=M, anatomy=a, breakpoints=bp, min_cacheable_tokens=1024, now_s=0)
    cm.begin(p, a, call_id="c1", now_s=0)
    obs = cm.observe(p, a, Usage(input_tokens=5, cache_read_tokens=p.positions[-1]), call_id="c1")
    assert not obs.reads_agree and obs.note and "outside this pipeline" in obs.note


def test_positions_scale_with_the_observed_ratio() -> None:
    cm = CacheModel()
    a = an(request(tools=0, system_chars=4000, messages=[{"role": "user", "content": text(4000)}]))
    p = cm.predict(model=M, anatomy=a, breakpoints=[], min_cacheable_tokens=1024, now_s=0)
    cm.begin(p, a, call_id="c1", now_s=0)
    cm.observe(p, a, Usage(input_tokens=a.total_tokens * 2), call_id="c1")
    assert cm.positions(M, a)[-1] == a.total_tokens * 2
