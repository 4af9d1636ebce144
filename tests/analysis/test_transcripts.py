"""Finding transcript files in both sub-agent layouts, and reading lines from an offset."""

from __future__ import annotations

from pathlib import Path

from tokenomy.analysis.transcripts import default_roots, discover, file_identity, read_lines


def test_default_roots(tmp_path: Path) -> None:
    assert default_roots(home=tmp_path, config_dirs=None) == [
        tmp_path / ".config" / "claude",
        tmp_path / ".claude",
    ]
    assert default_roots(home=tmp_path, config_dirs=" /a , /b/projects ,") == [
        Path("/a"),
        Path("/b/projects"),
    ]


def test_layouts(basic: Path) -> None:
    files, missing = discover([basic])
    assert missing == []
    got = {(f.path.name, f.layout, f.session_id, f.agent_id) for f in files}
    s1 = "11111111-1111-4111-8111-111111111111"
    assert got == {
        (f"{s1}.jsonl", "session", s1, None),
        (
            "22222222-2222-4222-8222-222222222222.jsonl",
            "session",
            "22222222-2222-4222-8222-222222222222",
            None,
        ),
        ("agent-a1.jsonl", "subagent", s1, "a1"),
        ("agent-aside_question-b7.jsonl", "subagent", s1, "aside_question-b7"),
        ("agent-old1.jsonl", "legacy-subagent", None, "old1"),
    }
    # Sessions before sub-agents, so a replay is always seen after the line it copies.
    assert [f.is_subagent for f in files] == [False, False, True, True, True]
    # The projects folder itself, a project folder, or one file work as roots too.
    assert len(discover([basic / "projects"])[0]) == 5
    assert len(discover([basic / "projects" / "-w-app"])[0]) == 5
    one = basic / "projects" / "-w-app" / f"{s1}.jsonl"
    [only] = discover([one])[0]
    assert only.layout == "session" and only.session_id == s1


def test_missing_roots_are_reported(tmp_path: Path) -> None:
    files, missing = discover([tmp_path / "nope", tmp_path])
    assert files == [] and missing == [tmp_path / "nope", tmp_path]


def test_read_lines_from_an_offset_leaves_an_unfinished_line(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(b'{"a":1}\r\n{"b":2}\n{"c":')
    got = list(read_lines(f, 0))
    assert got == [(9, b'{"a":1}', True), (17, b'{"b":2}', True), (17, b'{"c":', False)]
    assert list(read_lines(f, 9)) == got[1:]
    ident = file_identity(f, head_bytes=9)
    assert ident.size == 22 and len(ident.head_hash) == 64
    assert file_identity(f).head_hash == ""  # stat only
