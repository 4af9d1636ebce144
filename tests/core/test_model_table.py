# ruff: noqa: E501  (the reference price table below is pasted verbatim)
"""The packaged model table against the reference sheet, and user models files.

Expected values are copied from ``../shared/reference/anthropic-api.md`` (§1.5, §2.1–2.5), not
from ``models.toml``: the table must agree with the sheet, not with itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from tokenomy.data import builtin_table, load_table
from tokenomy.data.table import ModelInfo, parse_table
from tokenomy.errors import ConfigError, InputError, UnknownModelError

TABLE = builtin_table()


# Reference §2.1, pasted verbatim: | Model | API ID (alias) | Input | Output | 5m write | 1h write |
# Cache read | Batch in | Batch out |, USD per million tokens.
REFERENCE_21 = """
| Opus 4.1 | claude-opus-4-1-20250805 (claude-opus-4-1) | 15 | 75 | 18.75 | 30 | 1.50 | 7.50 | 37.50 |
| Opus 4 | claude-opus-4-20250514 (claude-opus-4-0) | 15 | 75 | 18.75 | 30 | 1.50 | 7.50 | 37.50 |
| Opus 4.5 | claude-opus-4-5-20251101 (claude-opus-4-5) | 5 | 25 | 6.25 | 10 | 0.50 | 2.50 | 12.50 |
| Opus 4.6 | claude-opus-4-6 (dateless, pinned) | 5 | 25 | 6.25 | 10 | 0.50 | 2.50 | 12.50 |
| Opus 4.7 | claude-opus-4-7 | 5 | 25 | 6.25 | 10 | 0.50 | 2.50 | 12.50 |
| Opus 4.8 | claude-opus-4-8 | 5 | 25 | 6.25 | 10 | 0.50 | 2.50 | 12.50 |
| Opus 5 | claude-opus-5 | 5 | 25 | 6.25 | 10 | 0.50 | 2.50 | 12.50 |
| Sonnet 3.7 | claude-3-7-sonnet-20250219 (claude-3-7-sonnet-latest) | 3 | 15 | 3.75 | 6 | 0.30 | 1.50 | 7.50 |
| Sonnet 4 | claude-sonnet-4-20250514 (claude-sonnet-4-0) | 3 | 15 | 3.75 | 6 | 0.30 | 1.50 | 7.50 |
| Sonnet 4.5 | claude-sonnet-4-5-20250929 (claude-sonnet-4-5) | 3 | 15 | 3.75 | 6 | 0.30 | 1.50 | 7.50 |
| Sonnet 4.6 | claude-sonnet-4-6 | 3 | 15 | 3.75 | 6 | 0.30 | 1.50 | 7.50 |
| Sonnet 5 | claude-sonnet-5 | 2 | 10 | 2.50 | 4 | 0.20 | 1 | 5 |
| Haiku 3 | claude-3-haiku-20240307 | 0.25 | 1.25 | 0.30 | 0.50 | 0.03 | 0.125 | 0.625 |
| Haiku 3.5 | claude-3-5-haiku-20241022 (claude-3-5-haiku-latest) | 0.80 | 4 | 1 | 1.60 | 0.08 | 0.40 | 2 |
| Haiku 4.5 | claude-haiku-4-5-20251001 (claude-haiku-4-5) | 1 | 5 | 1.25 | 2 | 0.10 | 0.50 | 2.50 |
| Fable 5 / Mythos 5 | claude-fable-5 / claude-mythos-5 | 10 | 50 | 12.50 | 20 | 1 | 5 | 25 |
"""


@dataclass(frozen=True)
class Row:
    id: str
    aliases: tuple[str, ...]
    prices: tuple[D, ...]  # input, output, 5m write, 1h write, read, batch in, batch out


def _rows(text: str) -> list[Row]:
    out = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        ids, prices = cells[1], tuple(D(c) for c in cells[2:])
        for one in ids.split(" / "):  # "claude-fable-5 / claude-mythos-5" share a row
            name, _, alias = one.partition(" (")
            aliases = () if not alias or " " in alias.rstrip(")") else (alias.rstrip(")"),)
            out.append(Row(name, aliases, prices))
    return out


PRICE_ROWS = _rows(REFERENCE_21)


# The later, unconfirmed rows (§2.1 last note): input/output given, reads where stated.
LATER_ROWS = {
    "claude-opus-5-5": ("4", "20", "0.20"),  # reads 0.05x input
    "claude-sonnet-5-5": ("2", "10", None),
    "claude-haiku-5-5": ("0.10", "0.50", None),  # up to 100k-token prompts
    "claude-fable-5-1": ("10", "50", "0.25"),  # footnoted $0.25 read on $10 input
}


def test_packaged_table_parses_and_is_dated() -> None:
    assert TABLE.checked_on == date(2026, 8, 21)
    assert TABLE.batch_multiplier == D("0.5")
    assert TABLE.geo_us_multiplier == D("1.1")
    assert len(TABLE.models) >= len(PRICE_ROWS) + len(LATER_ROWS)


@pytest.mark.parametrize("row", PRICE_ROWS, ids=[r.id for r in PRICE_ROWS])
def test_every_reference_model_has_the_exact_prices(row: Row) -> None:
    m = TABLE.get(row.id)
    assert m.id == row.id
    assert m.confidence == "documented"
    for alias in row.aliases:
        assert alias in m.aliases
        assert TABLE.get(alias) is m
    p = m.prices
    assert p is not None
    got = (
        p.input,
        p.output,
        p.cache_write_5m,
        p.cache_write_1h,
        p.cache_read,
        p.batch_input,
        p.batch_output,
    )
    assert got == row.prices


@pytest.mark.parametrize("model_id", sorted(LATER_ROWS))
def test_later_unconfirmed_models_are_marked(model_id: str) -> None:
    m = TABLE.get(model_id)
    assert m.confidence == "unconfirmed"
    assert m.prices is not None
    inp, out, read = LATER_ROWS[model_id]
    assert (m.prices.input, m.prices.output) == (D(inp), D(out))
    if read is not None:
        assert m.prices.cache_read == D(read)


@pytest.mark.parametrize("m", [m for m in TABLE if m.prices], ids=lambda m: m.id)
def test_batch_is_half_and_writes_follow_the_documented_multipliers(m: ModelInfo) -> None:
    p = m.prices
    assert p is not None
    assert p.batch_input == p.input * D("0.5")
    assert p.batch_output == p.output * D("0.5")
    # §1.8: 5m write 1.25x, 1h write 2x (Haiku 3's published 0.30 is the one rounded row).
    if m.id != "claude-3-haiku-20240307":
        assert p.cache_write_5m == p.input * D("1.25")
    assert p.cache_write_1h == p.input * 2


def test_read_price_is_per_model_not_a_fixed_tenth() -> None:
    reads = {m.id: m.prices.cache_read / m.prices.input for m in TABLE if m.prices}
    assert reads["claude-opus-5-5"] == D("0.05")
    assert reads["claude-fable-5-1"] == D("0.025")
    assert reads["claude-opus-5"] == D("0.1")
    assert reads["claude-3-haiku-20240307"] == D("0.12")  # $0.03 on $0.25


# §1.5, the current column (2026-08-21), plus the older models it no longer lists.
MIN_CACHEABLE = {
    "claude-opus-5": 512,
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    "claude-opus-4-8": 1024,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4-0": 1024,
    "claude-sonnet-4-0": 1024,
    "claude-mythos-preview": 2048,
    "claude-opus-4-7": 2048,
    "claude-3-5-haiku-20241022": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
    # 2026-03-13 docs, for the retired models
    "claude-3-7-sonnet-20250219": 1024,
    "claude-3-haiku-20240307": 2048,
}


@pytest.mark.parametrize(("model", "tokens"), sorted(MIN_CACHEABLE.items()))
def test_minimum_cacheable_length(model: str, tokens: int) -> None:
    assert TABLE.get(model).min_cacheable_tokens == tokens


# §2.3: (context window, max output)
LIMITS = {
    "claude-opus-4-6": (1_000_000, 128_000),
    "claude-sonnet-4-6": (1_000_000, 64_000),
    "claude-haiku-4-5": (200_000, 64_000),
    "claude-opus-4-5": (200_000, 64_000),
    "claude-opus-4-1": (200_000, 32_000),
    "claude-opus-4-0": (200_000, 32_000),
    "claude-sonnet-4-5": (200_000, 64_000),
    "claude-sonnet-4-0": (200_000, 64_000),
    "claude-opus-5": (1_000_000, 128_000),
    "claude-sonnet-5": (1_000_000, 128_000),
    "claude-fable-5": (1_000_000, 128_000),
}


@pytest.mark.parametrize(("model", "limits"), sorted(LIMITS.items()))
def test_context_window_and_max_output(model: str, limits: tuple[int, int]) -> None:
    m = TABLE.get(model)
    assert (m.context_window_tokens, m.max_output_tokens) == limits


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-0"])
def test_one_million_beta_and_long_context_prices(model: str) -> None:
    lc = TABLE.get(model).long_context
    assert lc is not None
    assert (lc.above_input_tokens, lc.input, lc.output) == (200_000, D("6"), D("22.50"))
    assert lc.beta == "context-1m-2025-08-07"
    assert lc.context_window_tokens == 1_000_000


def test_no_long_context_premium_from_4_6_on() -> None:
    for model in ("claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-5", "claude-sonnet-5"):
        assert TABLE.get(model).long_context is None


# §2.2: (status, deprecated on, retired on, retires no earlier than)
LIFECYCLE = {
    "claude-3-7-sonnet-20250219": ("retired", date(2025, 10, 28), date(2026, 2, 19), None),
    "claude-3-5-haiku-20241022": ("retired", date(2025, 12, 19), date(2026, 2, 19), None),
    "claude-3-haiku-20240307": ("retired", None, date(2026, 4, 20), None),
    "claude-opus-4-20250514": ("retired", date(2026, 4, 14), date(2026, 6, 15), None),
    "claude-sonnet-4-20250514": ("retired", date(2026, 4, 14), date(2026, 6, 15), None),
    "claude-opus-4-1-20250805": ("retired", date(2026, 6, 5), date(2026, 8, 5), None),
    "claude-haiku-4-5-20251001": ("active", None, None, date(2026, 10, 15)),
    "claude-sonnet-4-5-20250929": ("active", None, None, date(2026, 9, 29)),
    "claude-opus-4-5-20251101": ("active", None, None, date(2026, 11, 24)),
    "claude-opus-4-6": ("active", None, None, date(2027, 2, 5)),
    "claude-sonnet-4-6": ("active", None, None, date(2027, 2, 17)),
    "claude-opus-4-7": ("active", None, None, date(2027, 4, 16)),
    "claude-opus-4-8": ("active", None, None, date(2027, 5, 28)),
}


@pytest.mark.parametrize(("model", "dates"), sorted(LIFECYCLE.items()))
def test_lifecycle_dates(model: str, dates: tuple[object, ...]) -> None:
    m = TABLE.get(model)
    assert (m.status, m.deprecated_on, m.retired_on, m.retires_not_before) == dates


def test_fast_mode_prices() -> None:
    """§2.5: Opus 5 and Opus 4.8 at $10/$50; Opus 4.6 at $30/$150 (6x)."""
    fast = {m.id: (m.fast.input, m.fast.output) for m in TABLE if m.fast}
    assert fast == {
        "claude-opus-5": (D("10"), D("50")),
        "claude-opus-4-8": (D("10"), D("50")),
        "claude-opus-4-6": (D("30"), D("150")),
    }


def test_us_geo_surcharge_only_from_4_6_on() -> None:
    surcharged = {m.id for m in TABLE if m.geo_surcharge}
    for older in (
        "claude-opus-4-5-20251101",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-1-20250805",
        "claude-3-haiku-20240307",
    ):
        assert older not in surcharged
    for newer in ("claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7", "claude-opus-5"):
        assert newer in surcharged


def test_tool_system_prompt_overhead() -> None:
    """§2.5: tokens added to input when ``tools`` is set (auto/none, any/tool)."""
    assert TABLE.get("claude-opus-4-7").tool_system_tokens == (675, 804)
    assert TABLE.get("claude-sonnet-5").tool_system_tokens == (354, 474)
    assert TABLE.get("claude-3-5-haiku-latest").tool_system_tokens == (264, 355)


def test_new_tokenizer_from_opus_4_7_on() -> None:
    assert TABLE.get("claude-opus-4-7").tokenizer != TABLE.get("claude-opus-4-6").tokenizer
    assert TABLE.get("claude-fable-5").tokenizer == TABLE.get("claude-opus-4-7").tokenizer


def test_mythos_preview_is_known_but_unpriced() -> None:
    m = TABLE.get("claude-mythos-preview")
    assert m.prices is None
    assert not m.priced


# ---------------------------------------------------------------------- finding a model


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("claude-opus-4-5", "claude-opus-4-5-20251101"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5-20251101"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
        ("  claude-sonnet-5  ", "claude-sonnet-5"),
        # Claude Code's 1M-context marker
        ("claude-opus-4-8[1m]", "claude-opus-4-8"),
        ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5-20250929"),
        # Bedrock: regional inference profiles and plain model ids
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
        ("anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
        # Bedrock's other geographies, and GovCloud
        ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("apac.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514"),
        ("jp.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
        ("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0",
            "claude-opus-4-1-20250805",
        ),
        # gateways that prefix the provider (LiteLLM), Vertex resource names, shouting
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("publishers/anthropic/models/claude-opus-4-5@20251101", "claude-opus-4-5-20251101"),
        ("Claude-Opus-4-6", "claude-opus-4-6"),
        # Vertex: model@snapshot
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5-20251001"),
        ("claude-opus-4-6@default", "claude-opus-4-6"),
        # a dated snapshot of a dateless model we do not list yet
        ("claude-sonnet-4-6-20270101", "claude-sonnet-4-6"),
    ],
)
def test_find_understands_client_spellings(name: str, model_id: str) -> None:
    hit = TABLE.find(name)
    assert hit is not None
    assert hit.id == model_id


@pytest.mark.parametrize("name", ["claude-opus-9", "gpt-4o", "", "<synthetic>", "claude"])
def test_unknown_models(name: str) -> None:
    assert TABLE.find(name) is None
    with pytest.raises(UnknownModelError) as info:
        TABLE.get(name)
    assert repr(name) in str(info.value)
    assert "tokenomy prices" in str(info.value)
    assert isinstance(info.value, InputError)


# ---------------------------------------------------------------------- user models files


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, "utf-8")
    return path


def test_user_file_overrides_a_price_field_by_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[models]]
id = "claude-sonnet-4-6"
input = "2.50"
cache_read = "0.25"
""",
    )
    t = load_table(path)
    m = t.get("claude-sonnet-4-6")
    assert m.prices is not None
    assert (m.prices.input, m.prices.cache_read, m.prices.output) == (D("2.50"), D("0.25"), D("15"))
    assert m.min_cacheable_tokens == 1024  # untouched fields stay
    assert t.sources == ("tokenomy/data/models.toml", str(path))
    # the built-in table is not changed by loading a user file
    assert builtin_table().get("claude-sonnet-4-6").prices.input == D("3")  # type: ignore[union-attr]


def test_user_file_adds_a_model_and_prices_the_unpriced(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
checked_on = "2026-10-01"

[[models]]
id = "claude-opus-6"
aliases = ["opus-next"]
family = "opus"
input = "4"
output = "20"
cache_write_5m = "5"
cache_write_1h = "8"
cache_read = "0.40"
batch_input = "2"
batch_output = "10"
min_cacheable_tokens = 512
context_window_tokens = 2000000
max_output_tokens = 256000

[[models]]
id = "claude-mythos-preview"
input = 25
output = 125
cache_write_5m = 31.25
cache_write_1h = 50
cache_read = 2.5
batch_input = 12.5
batch_output = 62.5
""",
    )
    t = load_table(path)
    assert t.checked_on == date(2026, 10, 1)
    new = t.get("opus-next")
    assert new.id == "claude-opus-6"
    assert new.context_window_tokens == 2_000_000
    preview = t.get("claude-mythos-preview")
    assert preview.prices is not None
    # TOML floats become exact decimals through their text, not their binary value
    assert preview.prices.cache_write_5m == D("31.25")
    assert preview.prices.cache_read == D("2.5")
    assert len(t.models) == len(TABLE.models) + 1


def test_no_user_file_is_the_builtin_table() -> None:
    assert load_table(None) is builtin_table()


@dataclass(frozen=True)
class BadFile:
    name: str
    text: str | None  # None: the file does not exist
    pieces: tuple[str, ...]  # besides the file name, each must appear in the error


BAD_FILES = [
    BadFile("missing file", None, ("does not exist",)),
    BadFile("not TOML", "[[models]\nid = ", ("not valid TOML",)),
    BadFile(
        "price not a number",
        '[[models]]\nid = "claude-sonnet-4-6"\ninput = "three"\n',
        ("'claude-sonnet-4-6'", "input", "'three'"),
    ),
    BadFile(
        "negative price",
        '[[models]]\nid = "claude-sonnet-4-6"\noutput = -1\n',
        ("'claude-sonnet-4-6'", "output", "-1"),
    ),
    BadFile(
        "price is a boolean",
        '[[models]]\nid = "claude-sonnet-4-6"\noutput = true\n',
        ("'claude-sonnet-4-6'", "output", "True"),
    ),
    BadFile(
        "some prices of a new model",
        '[[models]]\nid = "claude-new"\ninput = "1"\noutput = "5"\n',
        ("'claude-new'", "cache_write_5m", "cache_read", "batch_output"),
    ),
    BadFile(
        "model without id",
        '[[models]]\ninput = "1"\n',
        ("has no string 'id'",),
    ),
    BadFile(
        "status",
        '[[models]]\nid = "claude-opus-4-6"\nstatus = "sunset"\n',
        ("'claude-opus-4-6'", "status", "'sunset'"),
    ),
    BadFile(
        "date",
        '[[models]]\nid = "claude-opus-4-6"\nretired_on = "next spring"\n',
        ("'claude-opus-4-6'", "retired_on", "'next spring'"),
    ),
    BadFile(
        "context window not a whole number",
        '[[models]]\nid = "claude-opus-4-6"\ncontext_window_tokens = "1M"\n',
        ("'claude-opus-4-6'", "'1M'"),
    ),
    BadFile(
        "alias claimed twice",
        '[[models]]\nid = "claude-opus-4-6"\naliases = ["claude-opus-4-5"]\n',
        ("'claude-opus-4-5'", "'claude-opus-4-5-20251101'", "'claude-opus-4-6'"),
    ),
    BadFile("checked_on", 'checked_on = "yesterday"\n', ("checked_on", "'yesterday'")),
    BadFile("models not a list", 'models = "claude-opus-4-6"\n', ("models", "[[models]]")),
    BadFile("model row not a table", "models = [1, 2]\n", ("model #1", "table")),
    BadFile(
        "fast not a table",
        '[[models]]\nid = "claude-opus-4-6"\nfast = "yes"\n',
        ("'claude-opus-4-6'", "fast", "'yes'"),
    ),
    BadFile(
        "fast without output",
        '[[models]]\nid = "claude-opus-4-6"\nfast = { input = "30" }\n',
        ("'claude-opus-4-6'", "fast", "output"),
    ),
    BadFile(
        "long_context without prices",
        '[[models]]\nid = "claude-sonnet-4-6"\nlong_context = { above_input_tokens = 200000 }\n',
        ("'claude-sonnet-4-6'", "long_context", "input"),
    ),
    BadFile(
        "long_context window not a number",
        '[[models]]\nid = "claude-sonnet-4-5"\nlong_context = { above_input_tokens = 1, '
        'input = "6", output = "22.5", context_window_tokens = "1M" }\n',
        ("'claude-sonnet-4-5'", "long_context.context_window_tokens", "'1M'"),
    ),
    BadFile(
        "aliases a string",
        '[[models]]\nid = "claude-opus-4-6"\naliases = "opus"\n',
        ("'claude-opus-4-6'", "aliases", "'opus'"),
    ),
    BadFile(
        "flag not a boolean",
        '[[models]]\nid = "claude-opus-4-5"\ngeo_surcharge = "no"\n',
        ("'claude-opus-4-5'", "geo_surcharge", "'no'"),
    ),
    BadFile(
        "tool_system_tokens not a pair",
        '[[models]]\nid = "claude-opus-4-5"\ntool_system_tokens = [496]\n',
        ("'claude-opus-4-5'", "tool_system_tokens", "[496]"),
    ),
    BadFile(
        "misspelt model field",
        '[[models]]\nid = "claude-sonnet-4-6"\nimput = "2.5"\n',
        ("'claude-sonnet-4-6'", "'imput'", "did you mean 'input'?"),
    ),
    BadFile(
        "misspelt top-level field",
        'batch_multipler = "0.4"\n',
        ("'batch_multipler'", "did you mean 'batch_multiplier'?"),
    ),
    BadFile("multiplier not a number", 'geo_us_multiplier = "x"\n', ("geo_us_multiplier", "'x'")),
]


@pytest.mark.parametrize("case", BAD_FILES, ids=[c.name for c in BAD_FILES])
def test_malformed_user_file_is_a_config_error_naming_file_and_field(
    tmp_path: Path, case: BadFile
) -> None:
    path = tmp_path / "models.toml" if case.text is None else _write(tmp_path, case.text)
    with pytest.raises(ConfigError) as info:
        load_table(path)
    msg = str(info.value)
    assert str(path) in msg
    for piece in case.pieces:
        assert piece in msg, msg
    assert info.value.exit_code == 2


def test_parse_table_needs_models() -> None:
    with pytest.raises(ConfigError, match="no \\[\\[models\\]\\] entries"):
        parse_table({"checked_on": "2026-08-21"}, source="x.toml")
