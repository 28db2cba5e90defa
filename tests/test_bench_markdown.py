"""``python -m bench.compare_faiss --markdown FILE`` writes its own table into FILE and keeps the rest:
bench/RESULTS.md holds every other measurement of the project below that table."""

import pytest

from bench import compare_faiss as cf

OTHER = "# Results\n\nKept text: the AQ section, measured by hand.\n\n## Another section\n\n| a | b |\n|---|---|\n"


def _block(rows):
    return cf.markdown_block(cf.HEADER, rows, ["a note"], "python -m bench.compare_faiss --only VQ1x8", "setup")


def test_the_table_goes_between_the_markers_and_replaces_only_what_they_hold(tmp_path):
    f = tmp_path / "RESULTS.md"
    f.write_text(OTHER)
    first = _block([["sift", "VQ1x8"] + ["1"] * (len(cf.HEADER) - 2)])
    cf.write_markdown(f, first)
    text = f.read_text()
    assert text.startswith(OTHER.rstrip("\n"))  # appended: the file's text is all there
    assert text.count(cf.BEGIN) == text.count(cf.END) == 1 and first.rstrip() in text
    # the file grows on both sides of the block; a second run replaces the block only
    f.write_text("Intro.\n\n" + text + "\n## Added later\n\nMore kept text.\n")
    second = _block([["minilm", "PQ4x8"] + ["2"] * (len(cf.HEADER) - 2)])
    cf.write_markdown(f, second)
    text = f.read_text()
    assert text.startswith("Intro.\n\n" + OTHER.rstrip("\n"))
    assert text.rstrip().endswith("## Added later\n\nMore kept text.")
    assert second.rstrip() in text and "| sift | VQ1x8 |" not in text and "| minilm | PQ4x8 |" in text
    assert text.count(cf.BEGIN) == text.count(cf.END) == 1


def test_a_new_file_gets_a_title_and_a_broken_one_is_left_alone(tmp_path):
    new = tmp_path / "new.md"
    cf.write_markdown(new, _block([]))
    assert new.read_text().startswith("# vqcore against faiss\n\n" + cf.BEGIN + "\nRun on ")
    broken = tmp_path / "broken.md"
    broken.write_text(OTHER + cf.BEGIN + "\nold table, its end marker deleted by hand\n")
    before = broken.read_text()
    with pytest.raises(SystemExit, match="end marker"):
        cf.write_markdown(broken, _block([]))
    assert broken.read_text() == before and not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_the_command_keeps_the_rest_of_the_file(tmp_path):
    """The real command on the real data (one quick configuration, one seed)."""
    pytest.importorskip("faiss")
    if not (cf.DATA / "siftsmall_base.fvecs").exists():
        pytest.skip("shared bench data not present")
    f = tmp_path / "RESULTS.md"
    f.write_text(OTHER)
    for _ in range(2):
        cf.main(["--data", "sift", "--only", "VQ1x8", "--seeds", "1", "--markdown", str(f)])
    text = f.read_text()
    assert text.startswith(OTHER.rstrip("\n")) and text.count("| sift | VQ1x8 | PQ1x8 |") == 1
    assert "`python -m bench.compare_faiss --data sift --only VQ1x8 --seeds 1 --markdown" in text


def test_results_md_marks_the_table_the_command_writes():
    text = (cf.ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    assert text.count(cf.BEGIN) == text.count(cf.END) == 1 and text.index(cf.BEGIN) < text.index(cf.END)
    table = text[text.index(cf.BEGIN):text.index(cf.END)]
    assert "| data | config | faiss |" in table and "## " not in table  # the table only, no other section
