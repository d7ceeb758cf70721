"""The `render` setting and the `render_reply` hook: how a terminal shows a reply, and where raw text stays."""

import io
import json
import re

import pyte
import pytest
from conftest import ShoutingModel

from repl import hookimpl
from repl.api import Encoding, LoadedModel, LoadOptions, Reply, Token
from repl.app.evaluator import Repl
from repl.core.results import Result, Turn
from repl.core.session import Session
from repl.terminal.markdown import render_markdown
from repl.terminal.renderer import Renderer
from repl.testing import check_plugin, make_host, make_repl

ANSWER = """\
## Result

Use **`sorted()`**:

| call | returns |
|------|---------|
| `sorted(x)` | a new list |

```python
print(sorted([3, 1, 2]))
```
"""
THOUGHT = "The user wants *sorting*."
WIDTH = 80


def pieces_of(text):
    return re.findall(r"\n| ?\w+| ?[^\w\s]| +", text)


class MarkdownModel(ShoutingModel):
    """A toy model that streams ANSWER piece by piece, after THOUGHT as its reasoning; registered as markdown."""

    def __init__(self, markdown=True, name="md"):
        self.markdown = markdown
        self.name = name

    @hookimpl
    def register_models(self, register):
        register(self.name, family="toy", checkpoint="toy", markdown=self.markdown)

    @hookimpl
    def load_model(self, spec, checkpoint):
        return LoadedModel(spec=spec, checkpoint=checkpoint)

    @hookimpl
    def tokenize(self, text):
        return Encoding(text, [Token(number, word) for number, word in enumerate(text.split())])

    @hookimpl
    def run(self, encoding, control):
        for piece in pieces_of(THOUGHT):
            control.emit_aside(piece)
        said = []
        for piece in pieces_of(ANSWER):
            control.emit(piece)
            said.append(piece)
            if control.step():
                break
        return "".join(said)

    @hookimpl
    def decode(self, output):
        return Reply(text=output, new_ids=[1] * len(pieces_of(output)), data={"reasoning": THOUGHT})


class DrawingModel(MarkdownModel):
    """Draws its replies itself: in a box, declines (None), or fails, as told."""

    def __init__(self, how="box"):
        super().__init__(name="drawn")
        self.how = how
        self.calls = 0

    @hookimpl
    def render_reply(self, model, turn, width, colour):
        self.calls += 1
        if self.how == "raise":
            raise RuntimeError(f"cannot draw, call {self.calls}")
        if self.how == "none":
            return None
        if self.how == "wide":
            return "x" * (width + 5)
        return f"[{turn.output.splitlines()[0]} in {width} columns, colour {colour}]"


@pytest.fixture(autouse=True)
def terminal_size(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.setenv("LINES", "200")
    monkeypatch.delenv("COLORTERM", raising=False)


def terminal_repl(*plugins, colour=True, **settings):
    """A REPL whose renderer believes it is at an interactive terminal; output captured."""
    host = make_host(*plugins)
    session = Session(host, LoadOptions(device="cpu"), active=next(iter(host.models())))
    for name, values in settings.items():
        for key, value in values.items():
            session.set(name, key, value)
    return Repl(session, Renderer(io.StringIO(), io.StringIO(), terminal=True, colour=colour))


def screen(data, rows=60):
    shown = pyte.Screen(WIDTH, rows)
    shown.set_mode(pyte.modes.LNM)
    pyte.Stream(shown).feed(data)
    return [line.rstrip() for line in shown.display]


def test_chat_and_remote_render_markdown_by_default_and_the_other_families_raw():
    import plugins.bert
    import plugins.chat
    import plugins.gpt2
    import plugins.mt0
    import plugins.remote

    repl = make_repl(make_host(plugins.chat, plugins.remote, plugins.gpt2, plugins.mt0, plugins.bert), active="chat")
    renders = {name: repl.session.settings_of(name)["render"] for name in ("chat", "remote", "gpt2", "mt0", "bert")}
    assert renders == {"chat": "markdown", "remote": "markdown", "gpt2": "raw", "mt0": "raw", "bert": "raw"}
    assert "render" in repl.evaluate("/show chat").text
    assert repl.evaluate("/set render fancy").error  # only markdown or raw


def test_a_plugin_says_its_replies_are_markdown():
    repl = make_repl(make_host(("md", MarkdownModel()), ("plain", MarkdownModel(markdown=False, name="plain"))))
    assert repl.session.settings_of("md")["render"] == "markdown"
    assert repl.session.settings_of("plain")["render"] == "raw"


def test_at_a_terminal_a_streamed_reply_ends_as_its_one_shot_render_after_its_dimmed_reasoning():
    repl = terminal_repl(("md", MarkdownModel()))
    (turn,) = repl.handle("sort").turns
    assert turn.streamed and turn.output == ANSWER  # the turn keeps the raw text
    shown = screen(repl.renderer.out.getvalue())
    # The reasoning between the lines that set it apart (dimmed too), then the answer.
    thought = render_markdown(THOUGHT, WIDTH, True, dim=True)
    expected = "thinking…\n" + thought + "…done thinking\n" + render_markdown(ANSWER, WIDTH, True)
    assert shown == screen(expected)
    assert "\x1b[2m" in repl.renderer.out.getvalue()  # the reasoning dimmed
    assert "```" not in "\n".join(shown) and "**" not in "\n".join(shown)


def test_render_raw_shows_the_text_as_it_came():
    repl = terminal_repl(("md", MarkdownModel()), md={"render": "raw"})
    repl.handle("sort")
    assert ANSWER in repl.renderer.out.getvalue()


def test_a_reply_not_streamed_is_rendered_whole():
    repl = terminal_repl(("md", MarkdownModel()), md={"stream": False})
    repl.handle("sort")
    shown = screen(repl.renderer.out.getvalue())
    assert "| call | returns |" not in shown and any("sorted(x)" in line for line in shown)
    assert "print(sorted([3, 1, 2]))" in "\n".join(shown)


def test_no_color_keeps_the_layout_without_a_colour():
    repl = terminal_repl(("md", MarkdownModel()), colour=False)
    repl.handle("sort")
    written = repl.renderer.out.getvalue()
    assert not re.search(r"\x1b\[[\d;]*(3\d|4\d|9\d)[;m]", written.replace("\x1b[2m", ""))
    assert any("sorted(x)" in line for line in screen(written))


def test_off_a_terminal_and_in_json_the_reply_is_its_raw_text():
    batch = make_repl(make_host(("md", MarkdownModel())))
    batch.handle("sort")
    assert batch.renderer.out.getvalue().endswith(ANSWER + "\n")
    as_json = make_repl(make_host(("md", MarkdownModel())), json_mode=True)
    as_json.handle("sort")
    assert json.loads(as_json.renderer.out.getvalue().splitlines()[-1])["output"] == ANSWER


def test_copy_and_save_take_the_raw_text(tmp_path):
    repl = terminal_repl(("md", MarkdownModel()))
    repl.handle("sort")
    repl.handle("/copy")
    assert repl.clipboard.get_data().text == ANSWER
    repl.handle(f"/save {tmp_path / 'reply.md'}")
    assert (tmp_path / "reply.md").read_text(encoding="utf-8") == ANSWER


def test_the_transcript_keeps_the_raw_text(tmp_path):
    from repl.store.transcript import Transcript

    repl = terminal_repl(("md", MarkdownModel()))
    repl.transcript = Transcript(tmp_path / "transcript.jsonl", repl.renderer.notice)
    repl.handle("sort")
    record = json.loads((tmp_path / "transcript.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["output"] == ANSWER


def test_a_note_in_the_middle_of_a_stream_does_not_tear_the_screen():
    out = io.StringIO()
    renderer = Renderer(out, out, terminal=True, colour=True)  # one terminal for notes and replies
    turn = Turn(model="md", checkpoint="toy", input="sort", output=ANSWER)
    pieces = pieces_of(ANSWER)
    cut = next(end for end in range(len(pieces)) if "".join(pieces[:end]).endswith("returns |"))
    with renderer.live_turn(lambda: "md is answering", "markdown") as shown:
        for piece in pieces[:cut]:  # the heading is finished, the paragraph after it still open
            shown.stream(piece)
        shown.notice("something happened")
        for piece in pieces[cut:]:
            shown.stream(piece)
        shown.done(turn)
    renderer.show(Result(turns=[turn]))
    shown = screen(out.getvalue())
    one_shot = screen(render_markdown(ANSWER, WIDTH, True))
    assert shown[0] == one_shot[0] == "Result"  # the heading, written for good before the note
    assert shown[1] == "note: something happened"
    assert shown[2:] == one_shot[1:-1]  # the open part, drawn again below the note


@pytest.mark.hookspec("render_reply")
def test_a_plugin_draws_its_models_replies_at_a_terminal_whole():
    model = DrawingModel()
    repl = terminal_repl(("drawn", model))
    (turn,) = repl.handle("sort").turns
    assert not turn.streamed  # the drawing needs the whole reply
    assert repl.renderer.out.getvalue().endswith("[## Result in 80 columns, colour True]\n")
    assert turn.output == ANSWER


@pytest.mark.hookspec("render_reply")
def test_a_plugin_that_declines_leaves_the_reply_to_modelrepl():
    repl = terminal_repl(("drawn", DrawingModel("none")))
    repl.handle("sort")
    shown = screen(repl.renderer.out.getvalue())
    assert any("sorted(x)" in line for line in shown) and "## Result" not in shown


@pytest.mark.hookspec("render_reply")
def test_a_failing_drawing_is_reported_once_and_the_reply_shown_the_default_way():
    model = DrawingModel("raise")
    repl = terminal_repl(("drawn", model))
    repl.handle("sort")
    repl.handle("sort again")
    assert model.calls == 2
    notes = repl.renderer.err.getvalue()
    assert notes.count("render_reply raised RuntimeError") == 1
    assert "modelrepl did without it" in notes
    assert sum("print(sorted([3, 1, 2]))" in line for line in screen(repl.renderer.out.getvalue(), 120)) == 2
    assert repl.session.host.statuses["drawn"].state.startswith("ok, with problems")


@pytest.mark.hookspec("render_reply")
def test_a_drawing_that_is_not_text_is_reported_and_done_without():
    class Wrong(DrawingModel):
        @hookimpl
        def render_reply(self):
            return ["not", "text"]

    repl = terminal_repl(("drawn", Wrong()))
    repl.handle("sort")
    assert "render_reply returned list, expected str or None" in repl.renderer.err.getvalue()


@pytest.mark.hookspec("render_reply")
def test_off_a_terminal_no_plugin_draws_and_replies_stream():
    model = DrawingModel()
    batch = make_repl(make_host(("drawn", model)))
    (turn,) = batch.handle("sort").turns
    assert turn.streamed and model.calls == 0
    assert batch.renderer.out.getvalue().endswith(ANSWER + "\n")


@pytest.mark.hookspec("render_reply")
def test_check_plugin_checks_that_drawings_fit_the_width():
    assert check_plugin(DrawingModel(), name="drawn").ok
    report = check_plugin(DrawingModel("wide"), name="drawn", raise_on_failure=False)
    failed = [finding.check for finding in report.failures]
    assert failed == ["draws its replies within the width (render_reply)"]
    report = check_plugin(DrawingModel("raise"), name="drawn", raise_on_failure=False)
    assert [finding.check for finding in report.failures] == ["no problem reported at any hook"]
