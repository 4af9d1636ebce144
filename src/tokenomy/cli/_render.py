"""The only module that prints: tables, JSON, errors, warnings."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tokenomy.errors import TokenomyError

__all__ = [
    "error",
    "json_out",
    "line",
    "paragraph",
    "pct",
    "progress",
    "raw_lines",
    "run_app",
    "status",
    "table",
    "text_out",
    "usd",
    "warn",
]


def _console(*, stderr: bool) -> Console:
    c = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)
    if not c.is_terminal:  # piped or captured: never truncate columns to 80
        c = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False, width=240)
    return c


_out = _console(stderr=False)
_err = _console(stderr=True)


def run_app(app: typer.Typer, argv: list[str]) -> int:
    """Run the Typer app; turn tokenomy errors into one clear line and their exit code."""
    try:
        rv = app(args=argv, prog_name="tokenomy", standalone_mode=False)
    except TokenomyError as exc:
        error(str(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.TyperException as exc:  # typer's own click: usage errors, bad parameters
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            error(exc.format_message())
        return exc.exit_code
    except typer.Abort:
        error("aborted")
        return 130
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    return rv if isinstance(rv, int) else 0


def line(text: str = "") -> None:
    _out.print(text, markup=False)


def warn(text: str) -> None:
    _err.print(f"warning: {text}", markup=False, style="yellow")


def error(text: str) -> None:
    _err.print(f"error: {text}", markup=False, style="red")


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def json_out(data: Any) -> None:
    """Print ``data`` as indented JSON; Decimals become exact strings."""
    sys.stdout.write(
        orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    sys.stdout.flush()


def usd(value: Decimal | None, *, places: int = 4) -> str:
    """Money for display: rounded only here, at the edge."""
    if value is None:
        return "unpriced"
    q = Decimal(1).scaleb(-places)
    return f"${value.quantize(q):,}"


def pct(rate: float | Decimal | None) -> str:
    """A rate as a percentage with one decimal; empty for None."""
    return "" if rate is None else f"{rate:.1%}"


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Iterable[str] = (),
    caption: str | None = None,
) -> None:
    """A rich table; columns named in ``right`` are right-aligned (numbers)."""
    t = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    right_set = set(right)
    for c in columns:
        t.add_column(c, justify="right" if c in right_set else "left")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    _out.print(t)


def kv(rows: Mapping[str, Any]) -> None:
    """Aligned ``key  value`` lines."""
    width = max((len(k) for k in rows), default=0)
    for k, v in rows.items():
        line(f"{k.ljust(width)}  {v}")


@contextmanager
def status(text: str) -> Iterator[Callable[[str], None]]:
    """A one-line spinner on stderr (silent when stderr is not a terminal); yields an updater."""
    if not _err.is_terminal:
        yield lambda _msg: None
        return
    with _err.status(text) as s:
        yield lambda msg: s.update(f"{text} {msg}")


def paragraph(text: str) -> None:
    """Wrapped prose for explanations."""
    _out.print(text, markup=False, soft_wrap=False, width=min(_out.width, 100))


@contextmanager
def progress(description: str, *, total: int) -> Iterator[Callable[[int, str], None]]:
    """A progress bar on stderr: ``update(completed, info)`` moves it and sets its side text."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=_err, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(completed: int, info: str) -> None:
            bar.update(task, completed=completed, info=info)

        yield update


def text_out(text: str) -> None:
    """Text to stdout exactly as given (CSV): no markup, no emoji codes, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def raw_lines(lines: Iterable[bytes]) -> None:
    """Bytes lines to stdout as they come (JSONL output, never held in memory)."""
    out = sys.stdout.buffer
    for item in lines:
        out.write(item)
        out.write(b"\n")
    out.flush()
