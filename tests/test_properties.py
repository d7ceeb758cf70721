"""Property-based tests: the argument parsers, the line joiner, settings, and each family's tokenizer round trip."""

import re
import shlex

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from repl.api import Setting
from repl.app.commands.arguments import split_arguments, split_at_separator
from repl.core.lines import BLOCK_FENCE, batch_lines, join_blocks, opens_block
from repl.core.results import CommandError
from repl.core.settings import GENERATION_SETTINGS, REPL_SETTINGS
from repl.core.turn import tokenize
from repl.testing import make_repl
from repl.testing.fixtures import builtin_host

SOME = settings(max_examples=150, deadline=None)

LINE_BREAKS = "\r\n"
# Text on one line: anything but a line break (and no lone surrogates, which no input can hold).
one_line_text = st.text(st.characters(exclude_characters=LINE_BREAKS, exclude_categories=("Cs",)))
# Odd whitespace and dashes, to test where `--` separates and where words split.
SPACES = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u3000"
dashes_and_spaces = st.text(st.sampled_from(SPACES + "-ab/"), max_size=30)


# -- split_arguments: shell-like words of a command's arguments --------------------------------


@SOME
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",))), max_size=6))
def test_split_arguments_gives_back_any_words_shell_quoted(words):
    assert split_arguments(shlex.join(words), "/x WORD...", 0, None) == words


@SOME
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), min_size=1), max_size=6), *[st.integers(0, 6)] * 2)
def test_split_arguments_refuses_a_wrong_count_with_the_usage(words, least, most):
    arguments = shlex.join(words)
    if least <= len(words) <= most:
        assert split_arguments(arguments, "/x A B", least, most) == words
    else:
        with pytest.raises(CommandError) as refused:
            split_arguments(arguments, "/x A B", least, most)
        assert str(refused.value) == "usage: /x A B"


@SOME
@given(one_line_text)
@example('say "hi')
@example("it\\")
def test_split_arguments_of_any_text_gives_words_or_a_one_line_usage_error(text):
    try:
        words = split_arguments(text, "/x ARG", 0, None)
    except CommandError as refused:
        message = str(refused)
        assert message.endswith("usage: /x ARG") and "\n" not in message
    else:
        assert all(isinstance(word, str) for word in words)


# -- split_at_separator: `/compare NAME ... -- TEXT` and `/tokens NAME ... -- TEXT` ------------------

model_name = st.text(st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1)
names = st.lists(model_name.filter(lambda n: n != "--" and not any(c.isspace() for c in n)), max_size=4)


@SOME
@given(names, one_line_text)
def test_names_before_the_first_separator_and_the_text_after_it(model_names, text):
    assert split_at_separator(" ".join(model_names) + " -- " + text) == (model_names, text.strip())


@SOME
@given(dashes_and_spaces)
@example("a --b -- c -- d")
@example("--")
@example("a\u3000--\u3000b")
def test_a_separator_is_exactly_a_word_that_is_two_dashes(arguments):
    words, text = split_at_separator(arguments)
    if "--" not in arguments.split():
        assert (words, text) == (arguments.split(), None)
    else:
        cut = arguments.split().index("--")
        assert words == arguments.split()[:cut]
        assert text.split() == arguments.split()[cut + 1 :]


# -- join_blocks / batch_lines: what the REPL evaluates from raw lines ---------------------------

plain_line = one_line_text.filter(lambda line: not opens_block(line))


@SOME
@given(st.lists(plain_line, max_size=8))
def test_lines_without_a_fence_are_evaluated_one_by_one_unchanged(lines):
    assert list(batch_lines(lines)) == lines
    assert list(batch_lines(line + "\r\n" for line in lines)) == lines


def as_block(text):
    return [BLOCK_FENCE, *text.split("\n"), BLOCK_FENCE]


def closes_a_block(line):
    return line.rstrip().endswith(BLOCK_FENCE)


@SOME
@given(st.lists(st.lists(one_line_text, min_size=1, max_size=4).map("\n".join), max_size=6))
def test_inputs_written_as_lines_and_blocks_come_back_whole(inputs):
    """A one-line input is its own line; anything else goes between two fence lines."""
    assume(not any(closes_a_block(line) for text in inputs for line in text.split("\n")))
    lines = []
    for text in inputs:
        lines += [text] if "\n" not in text and not opens_block(text) else as_block(text)
    assert list(batch_lines(lines)) == inputs


@SOME
@given(one_line_text)
def test_text_between_fences_on_one_line_is_sent_exactly(text):
    assert list(batch_lines([f"  {BLOCK_FENCE}{text}{BLOCK_FENCE} "])) == [text]


@SOME
@given(st.lists(one_line_text.filter(lambda line: not closes_a_block(line)), max_size=4))
def test_a_block_left_open_at_the_end_is_still_sent(body):
    lines = iter([BLOCK_FENCE, *body])

    def read(continued):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    sent = []
    with pytest.raises(EOFError):
        for text in join_blocks(read):
            sent.append(text)
    assert sent == ["\n".join(body)]


# -- Setting.parse: what /set, --set and the config accept ----------------------------------------

ALL_SETTINGS = GENERATION_SETTINGS + REPL_SETTINGS + (Setting("top_k", int, 5, "candidates", minimum=1, maximum=100),)
NUMBERS = [s for s in ALL_SETTINGS if s.kind in (int, float)]


def in_range(setting, value):
    above = setting.minimum is None or value >= setting.minimum
    below = setting.maximum is None or value <= setting.maximum
    return value == value and above and below


@SOME
@given(
    st.sampled_from([s for s in NUMBERS if s.kind is int]),
    st.integers(-(2**40), 2**40) | st.integers(-5, 200),
    st.sampled_from(["", " ", "\t"]),
)
def test_a_whole_number_is_taken_in_range_and_refused_outside_it_saying_the_range(setting, number, padding):
    if in_range(setting, number):
        assert setting.parse(f"{padding}{number}{padding}") == number
    else:
        with pytest.raises(ValueError) as refused:
            setting.parse(f"{padding}{number}{padding}")
        assert str(refused.value) == f"{setting.name} takes {setting.describe_range()}, not {number}"


@SOME
@given(st.sampled_from([s for s in NUMBERS if s.kind is float]), st.floats() | st.floats(-1, 120))
def test_a_number_is_taken_in_range_and_nan_and_infinities_are_refused(setting, number):
    if in_range(setting, number):
        assert setting.parse(repr(number)) == number
    else:
        with pytest.raises(ValueError, match=f"^{setting.name} takes a number from "):
            setting.parse(repr(number))


@SOME
@given(st.sampled_from(["on", "off", "true", "false", "yes", "no", "1", "0"]), st.lists(st.booleans(), min_size=5))
def test_on_and_off_in_any_case(word, upper):
    typed = "".join(c.upper() if u else c for c, u in zip(word, upper))
    assert Setting("stream", bool, True, "").parse(typed) is (word in ("on", "true", "yes", "1"))


@SOME
@given(st.sampled_from(ALL_SETTINGS), one_line_text)
@example(GENERATION_SETTINGS[0], "9" * 5000)
@example(GENERATION_SETTINGS[2], "1e999")
def test_any_text_is_a_valid_value_or_a_one_line_refusal_naming_the_setting(setting, text):
    try:
        value = setting.parse(text)
    except ValueError as refused:
        message = str(refused)
        assert message.startswith(f"{setting.name} takes ") and "\n" not in message
    else:
        assert setting.check(value) == value or value != value
        assert value is None or isinstance(value, setting.kind)
        if value is not None and setting.kind in (int, float):
            assert in_range(setting, value)


# -- tokenize -> decode round trips on the tiny checkpoints ---------------------------------------


@pytest.fixture(scope="module")
def session(tiny_checkpoints):
    checkpoints = {family: str(path) for family, path in tiny_checkpoints.items()}
    return make_repl(builtin_host(), checkpoints=checkpoints, settings={"gpt2": {"max_new_tokens": 1}}).session


def vocabulary_characters(tokenizer):
    """Every character the vocabulary holds as a piece of its own (SentencePiece may prefix it with ▁)."""
    special = set(tokenizer.all_special_tokens)
    pieces = {piece.removeprefix("▁").removeprefix("##") for piece in tokenizer.get_vocab() if piece not in special}
    return sorted(piece for piece in pieces if len(piece) == 1 and not piece.isspace())


ROUND_TRIP = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@ROUND_TRIP
@given(st.text(min_size=1, max_size=30))
@example("<|endoftext|> is typed, not added")
@example("\x00\x1b[31m\ufffd\U0010ffff")
@example("  two  spaces\tand a tab ")
def test_gpt2_byte_level_round_trips_any_unicode_exactly(session, text):
    """Byte-level BPE: every string's UTF-8 bytes are tokens, so decoding the ids gives the string back.

    Only a typed `<|endoftext|>` is special, and so left out when special tokens are skipped.
    """
    encoding = tokenize(session, "gpt2", text)
    tokenizer = session.model("gpt2").tokenizer
    assert not encoding.notices and not any(token.added for token in encoding.tokens)
    assert tokenizer.decode(encoding.input_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text
    shown = tokenizer.decode(encoding.input_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert shown == text.replace("<|endoftext|>", "")


@ROUND_TRIP
@given(st.data())
def test_mt0_round_trips_words_of_its_vocabulary_with_whitespace_runs_made_one_space(session, data):
    """SentencePiece without byte fallback: text of characters in the vocabulary comes back with each run
    of whitespace between words as one space and none at the ends; the only added token is the final `</s>`."""
    tokenizer = session.model("mt0").tokenizer
    alphabet = vocabulary_characters(tokenizer)
    words = data.draw(st.lists(st.text(st.sampled_from(alphabet), min_size=1, max_size=8), min_size=1, max_size=8))
    whitespace = st.text(st.sampled_from(" \t\n"), min_size=1, max_size=3)
    gaps = data.draw(st.lists(whitespace, min_size=len(words) - 1, max_size=len(words) - 1))
    leading, trailing = data.draw(st.lists(st.just("") | whitespace, min_size=2, max_size=2))
    text = leading + words[0] + "".join(gap + word for gap, word in zip(gaps, words[1:])) + trailing

    encoding = tokenize(session, "mt0", text)

    assert [token.piece for token in encoding.tokens if token.added] == ["</s>"] and encoding.tokens[-1].added
    shown = tokenizer.decode(encoding.input_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert shown == " ".join(words)


BERT_MASKS = ["[MASK]", "[mask]", "<mask>", "<MASK>"]
# tokenizers' WordPiece decoder "cleans up" each token on its own: these lose the space before them.
JOINED_TO_THE_LEFT = {".", "?", "!", ","}


def wordpiece_text(words):
    return "".join(word if i == 0 or word in JOINED_TO_THE_LEFT else " " + word for i, word in enumerate(words))


@ROUND_TRIP
@given(st.data())
def test_bert_round_trips_its_vocabulary_lowercased_and_split_at_punctuation(session, data):
    """WordPiece after BERT's basic tokenizer: text of vocabulary characters (any case) comes back lowercased
    as its words, punctuation marks and masks (any spelling, as [MASK]) separated by single spaces, except
    none before . ? ! and , (the decoder's clean-up); the tokenizer adds only [CLS] ... [SEP] around it."""
    tokenizer = session.model("bert").tokenizer
    characters = vocabulary_characters(tokenizer)
    punctuation = [c for c in characters if not c.isalnum()]
    letters = [c for c in characters if c.isalnum()] + [c.upper() for c in characters if c.isalpha()]
    word = st.text(st.sampled_from(letters), min_size=1, max_size=4)
    piece = word | st.sampled_from(punctuation) | st.sampled_from(BERT_MASKS)
    pieces = data.draw(st.lists(piece, min_size=1, max_size=10))
    assume(any(p in BERT_MASKS for p in pieces))
    gaps = data.draw(st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=len(pieces), max_size=len(pieces)))
    text = "".join(p + g for p, g in zip(pieces, gaps))
    expected = re.findall(r"\[mask\]|<mask>|\w+|[^\w\s]", text.lower())

    encoding = tokenize(session, "bert", text)

    tokens = encoding.tokens
    assert tokens[0].piece == "[CLS]" and tokens[-1].piece == "[SEP]"
    assert [t.piece for t in tokens if t.added] == ["[CLS]", "[SEP]"]
    typed = [t.id for t in tokens if not t.added]
    decoded = tokenizer.decode(typed, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert decoded == wordpiece_text(["[MASK]" if word in ("[mask]", "<mask>") else word for word in expected])
