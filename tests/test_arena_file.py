"""The arena file: votes appended one JSON line each, read back whole after a crash."""

import random
import subprocess
import sys
import textwrap
import time

import pytest

from repl.store.arena_file import append_vote, arena_file, read_votes, vote_record


def side(model, reply):
    return {"model": model, "checkpoint": f"ckpt/{model}", "settings": {"max_new_tokens": 5}, "reply": reply}


def test_votes_read_back_in_order_with_everything_they_were_given(tmp_path):
    path = tmp_path / "arena.jsonl"
    first = vote_record("hi", "a", side("gpt2", "hello 我爱你 😀"), side("mt0", "bonjour"), when=0)
    second = vote_record("bye", "bad", side("mt0", "au revoir"), side("gpt2@hot", "so long"))
    append_vote(first, path)
    append_vote(second, path)
    votes = read_votes(path)
    assert votes.records == [first, second] and votes.skipped == 0
    assert votes.records[0]["a"]["reply"] == "hello 我爱你 😀"
    assert votes.records[1]["b"]["model"] == "gpt2@hot"
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_file_lives_in_the_data_directory(tmp_path):
    assert arena_file().parent.parent == tmp_path / "xdg_data_home"  # conftest points XDG_DATA_HOME there
    assert read_votes().records == []  # no file yet: no votes


def test_a_torn_last_line_is_skipped_and_the_next_vote_starts_its_own_line(tmp_path):
    path = tmp_path / "arena.jsonl"
    kept = vote_record("hi", "tie", side("x", "1"), side("y", "2"))
    append_vote(kept, path)
    with open(path, "a", encoding="utf-8") as handle:  # as a process killed mid-write leaves it
        handle.write('{"time": "2026-11-02T10:00:00+0000", "prompt": "cut sh')
    assert read_votes(path).records == [kept] and read_votes(path).skipped == 1
    later = vote_record("again", "b", side("x", "3"), side("y", "4"))
    append_vote(later, path)
    votes = read_votes(path)
    assert votes.records == [kept, later] and votes.skipped == 1


def test_lines_that_are_not_votes_are_counted_not_fatal(tmp_path):
    path = tmp_path / "arena.jsonl"
    path.write_bytes(b'[1, 2]\n{"verdict": "maybe"}\n\xff\xfe\n\n')
    assert read_votes(path).records == [] and read_votes(path).skipped == 3


def test_an_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="unknown verdict"):
        vote_record("hi", "c", side("x", ""), side("y", ""))


VOTER = textwrap.dedent(
    """
    import sys
    from repl.store.arena_file import append_vote, vote_record

    path, number = sys.argv[1], int(sys.argv[2])
    while True:
        side = {"model": "m", "checkpoint": "c", "settings": {}, "reply": "x" * 20000}
        append_vote(vote_record(f"vote {number}", "a", side, dict(side, model="n")), path)
        print(number, flush=True)
        number += 1
    """
)


@pytest.mark.slow
def test_kill_9_between_votes_loses_no_vote_written_before(tmp_path):
    """SIGKILL a process that keeps voting, at random moments: every vote it confirmed is in the file, whole."""
    path = tmp_path / "arena.jsonl"
    script = tmp_path / "voter.py"
    script.write_text(VOTER)
    rng = random.Random(23)
    number = 0
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(number)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout.readline().strip() == str(number)
            time.sleep(rng.uniform(0, 0.3))
        finally:
            child.kill()
        confirmed = [int(word) for word in child.communicate()[0].split()]
        votes = read_votes(path)
        found = [int(record["prompt"].split()[1]) for record in votes.records]
        last = confirmed[-1] if confirmed else number
        assert found[: last + 1] == list(range(last + 1))  # nothing confirmed is lost, nothing is doubled
        assert len(found) <= last + 2  # at most the vote being written when the kill came
        assert all(len(record["a"]["reply"]) == 20000 for record in votes.records)
        assert votes.skipped <= 1
        number = len(found)
