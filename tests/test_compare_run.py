"""compare_run: models that share no device answer at once, those that share one in turn; and the arena in process."""

import json
import threading
import time

import pytest
from conftest import ShoutingModel

from repl import cli, hookimpl
from repl.api import SEQ2SEQ, LoadedModel, Reply
from repl.app.running import devices_of, plan, run_groups
from repl.store.arena_file import arena_file, read_votes
from repl.testing import make_host, make_repl

STEP = 0.3  # seconds each toy model takes per reply


class Timed(ShoutingModel):
    """Models that take STEP seconds to answer, on the devices their names say: `cpu_a`, `cpu_b`, `server_x`."""

    def __init__(self):
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    @hookimpl
    def register_models(self, register):
        for name in ("cpu_a", "cpu_b", "server_x"):
            register(name, family=SEQ2SEQ, checkpoint=f"toy/{name}")

    @hookimpl
    def load_model(self, spec, checkpoint):
        device = "server toy:1" if spec.name.startswith("server") else "cpu"
        return LoadedModel(spec=spec, checkpoint=checkpoint, device=device)

    @hookimpl
    def run(self, encoding, control):
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            deadline = time.perf_counter() + STEP
            while time.perf_counter() < deadline and not control.step():
                control.emit("x")
                time.sleep(0.01)
        finally:
            with self.lock:
                self.running -= 1
        return encoding.text

    @hookimpl
    def decode(self, output):
        return Reply(text=output.upper(), new_ids=[1])


def toy_repl(**compare):
    plugin = Timed()
    repl = make_repl(make_host(("toy", plugin)), active="cpu_a")
    for key, value in compare.items():
        repl.session.set_compare(key, value)
    return repl, plugin


def test_devices_of_a_model():
    def loaded(device):
        return LoadedModel(spec=None, checkpoint="c", device=device)

    assert devices_of(loaded("cpu")) == {"cpu"}
    assert devices_of(loaded("cuda:0+cpu+disk")) == {"cuda:0", "cpu"}
    assert devices_of(loaded("server host:8000")) == {"server host:8000"}
    assert devices_of(loaded("cuda")) == {"cuda:0"}


@pytest.mark.parametrize(
    ("mode", "groups", "shared"),
    [
        ("auto", [[0, 1], [2], [3]], set()),
        ("sequential", [[0, 1, 2, 3]], set()),
        ("parallel", [[0], [1], [2], [3]], {0, 1}),
    ],
)
def test_plan(mode, groups, shared):
    devices = [{"cpu"}, {"cpu"}, {"server a"}, {"cuda:1"}]
    assert plan(mode, devices) == (groups, shared)


def test_auto_joins_groups_through_a_model_spread_over_two_devices():
    assert plan("auto", [{"cuda:0"}, {"cuda:1"}, {"cuda:0", "cuda:1"}, {"cpu"}])[0] == [[0, 1, 2], [3]]


def test_a_served_model_beside_a_local_one_takes_the_slower_ones_time_not_the_sum():
    repl, plugin = toy_repl()
    started = time.perf_counter()
    result = repl.evaluate("/compare cpu_a server_x -- hi")
    took = time.perf_counter() - started
    assert result.ok and plugin.most_at_once == 2
    assert took < 2 * STEP * 0.9
    assert "shared" not in result.text


def test_two_models_on_one_cpu_answer_in_turn_unless_parallel_which_marks_them():
    repl, plugin = toy_repl()
    assert repl.evaluate("/compare cpu_a cpu_b -- hi").ok
    assert plugin.most_at_once == 1
    repl, plugin = toy_repl(compare_run="parallel")
    result = repl.evaluate("/compare cpu_a cpu_b -- hi")
    assert plugin.most_at_once == 2
    assert result.ok and "note: timed while sharing cpu" in result.text
    turns = repl.session.turns[-2:]
    assert [turn.model for turn in turns] == ["cpu_a", "cpu_b"]  # in the order named, whichever finished first
    assert "timed while sharing cpu with cpu_b" in turns[0].notices[-1]
    assert "timed while sharing cpu with cpu_a" in turns[1].notices[-1]


def test_sequential_runs_even_a_served_model_in_turn():
    repl, plugin = toy_repl(compare_run="sequential")
    started = time.perf_counter()
    assert repl.evaluate("/compare cpu_a server_x -- hi").ok
    assert plugin.most_at_once == 1 and time.perf_counter() - started >= 2 * STEP


def test_compare_settings_are_checked_and_shown():
    repl, _ = toy_repl()
    assert repl.evaluate("/set compare_run parallel").text == "every comparison: compare_run = parallel"
    assert "must" not in repl.evaluate("/set compare_layout blocks").text
    bad = repl.evaluate("/set compare_run sometimes")
    assert bad.error and "auto, parallel, sequential" in bad.error
    assert "compare_run = parallel, compare_layout = blocks" in repl.evaluate("/show").text


def test_run_groups_starts_nothing_after_cancel():
    cancel = threading.Event()
    ran = []

    def work(index):
        ran.append(index)
        cancel.set()

    run_groups([[0, 1, 2]], work, cancel)
    assert ran == [0]


def test_the_arena_in_process_hides_names_until_the_vote_and_keeps_it(tmp_path):
    repl, _ = toy_repl()
    started = repl.evaluate("/arena cpu_a server_x")
    assert "arena on" in started.text and repl.toolbar_facts() == {"arena": 2, "votes": 0, "vote": False}
    battle = repl.evaluate("hello")
    assert "cpu_a" not in battle.text and "server_x" not in battle.text
    assert "-- A " in battle.text and "-- B " in battle.text and "HELLO" in battle.text  # blocks off a terminal
    assert repl.toolbar_facts()["vote"] is True
    assert "vote on the last line first" in repl.evaluate("again").error
    assert "not in the arena" in repl.evaluate("/retry").error
    assert "usage" in repl.evaluate("/vote maybe").error
    revealed = repl.evaluate("/vote tie")
    assert "A was" in revealed.text and "cpu_a" in revealed.text and "server_x" in revealed.text
    (vote,) = read_votes().records
    assert vote["verdict"] == "tie" and vote["prompt"] == "hello"
    assert {vote["a"]["model"], vote["b"]["model"]} == {"cpu_a", "server_x"}
    assert vote["a"]["reply"] == "HELLO" and vote["a"]["checkpoint"].startswith("toy/")
    assert "nothing to vote on" in repl.evaluate("/vote a").error
    board = repl.evaluate("/leaderboard")
    assert "rating" in board.text and "1 vote from" in board.text
    assert "after 1 vote" in repl.evaluate("/arena off").text
    assert repl.evaluate("plain").ok and repl.session.turns[-1].model == "cpu_a"


def test_the_arena_needs_two_models_and_a_vote_needs_the_arena():
    repl, _ = toy_repl()
    assert "two or more" in repl.evaluate("/arena cpu_a").error
    assert "name the models" in repl.evaluate("/arena").error
    assert "not on" in repl.evaluate("/vote a").error
    repl.arena_default = ["cpu_a", "cpu_b"]
    assert "arena on: cpu_a, cpu_b" in repl.evaluate("/arena").text


def test_modelrepl_leaderboard(capsys):
    repl, _ = toy_repl()
    repl.evaluate("/arena cpu_a cpu_b")
    for verdict in ("a", "b", "a"):
        repl.evaluate("hi")
        repl.evaluate(f"/vote {verdict}")
    assert len(read_votes().records) == 3 and arena_file().exists()
    assert cli.main(["leaderboard", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["entrant"] for row in rows) == ["cpu_a", "cpu_b"]
    assert sum(row["wins"] for row in rows) == 3
    assert cli.main(["leaderboard", "--since", "2999-01-01"]) == 0
    assert "no votes match" in capsys.readouterr().out
    assert cli.main(["leaderboard", "--models", "cpu_a", "other"]) == 0
    assert "no votes match" in capsys.readouterr().out
    assert cli.main(["leaderboard", "--since", "soon"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_one_key_votes_at_the_vote_prompt_and_completion_knows_the_arena(repl_driver):
    from prompt_toolkit.document import Document

    from repl.terminal.completion import ReplCompleter

    repl, _ = toy_repl()
    drive = repl_driver(repl).keys("/arena cpu_a cpu_b\rhello\rb\x04")
    assert drive.inputs == ["/arena cpu_a cpu_b", "hello", "/vote b"]
    assert "A was" in drive.stdout
    (vote,) = read_votes().records
    assert vote["verdict"] == "b"
    drive = repl_driver(repl).keys("/arena off\rbanana\r\x04")  # no vote waits: b is only a letter
    assert drive.inputs == ["/arena off", "banana"]

    def completions(text):
        return [c.text for c in ReplCompleter(repl).get_completions(Document(text), None)]

    assert completions("/set compare_r") == ["compare_run"]
    assert completions("/set compare_layout ") == ["columns", "blocks"]
    assert completions("/vote t") == ["tie"]
    assert "off" in completions("/arena o")
