"""``tokenomy lint``: the doctor's checks on requests before they are sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenomy.core.anatomy import anatomy
from tokenomy.core.cache_model import CacheModel
from tokenomy.core.cache_plan import caller_breakpoints
from tokenomy.core.canonical import chain
from tokenomy.core.doctor import LintFinding, PreviousCall, lint
from tokenomy.core.stabilize import find_volatile
from tokenomy.data.table import ModelTable
from tokenomy.errors import InputError

__all__ = ["lint_requests"]


def _check(request: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(request, Mapping) or not isinstance(request.get("messages"), list):
        raise InputError(f"{what} is not a Messages request (a JSON object with 'messages')")
    return request


def lint_requests(
    request: Any, *, previous: Any = None, table: ModelTable
) -> tuple[LintFinding, ...]:
    """Check ``request`` (and, with ``previous``, that it extends the previous request's
    cached prefix). A finding with ``buster=True`` would bust the cache."""
    req = _check(request, "the request")
    model_name = req.get("model") if isinstance(req.get("model"), str) else None
    info = table.find(model_name) if model_name else None
    ch = chain(req)
    an = anatomy(req, model=info, request_chain=ch)
    positions = CacheModel().positions(info.id if info else "?", an)
    prev_call: PreviousCall | None = None
    prev_chain = None
    if previous is not None:
        prev = _check(previous, "the previous request")
        prev_chain = chain(prev)
        prev_name = prev.get("model") if isinstance(prev.get("model"), str) else "?"
        prev_info = table.find(str(prev_name))
        prev_model = prev_info.id if prev_info else str(prev_name)
        prev_an = anatomy(prev, model=prev_info, request_chain=prev_chain)
        prev_call = PreviousCall(
            chain=prev_chain,
            request=prev,
            model=prev_model,
            breakpoints=tuple(caller_breakpoints(prev_chain)),
            positions=CacheModel().positions(prev_model, prev_an),
            started_s=0.0,
        )
    upto = max((i for i, link in enumerate(ch.links) if link.ref.segment != "messages"), default=-1)
    volatile = find_volatile(ch, upto=upto, previous=prev_chain) if upto >= 0 else ()
    return lint(
        req,
        chain=ch,
        anatomy_positions=positions,
        volatile=volatile,
        previous=prev_call,
        model=info.id if info else model_name,
        min_cacheable_tokens=info.min_cacheable_tokens if info else 0,
    )
