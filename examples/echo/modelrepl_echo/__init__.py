"""echo: models without torch that answer with the words they were given.

They load at once and behave like real models where it matters to a test:
the tokenizer adds an end token ``</e>`` to every input (as mT5 adds ``</s>``),
replies stream one word per decoding step, Ctrl-C stops them between two
words, and ``max_new_tokens`` cuts them short. The checkpoint names what is
done to each word: ``plain``, ``upper`` or ``reverse``.
"""

from repl.api import Encoding, LoadedModel, ModelError, Reply, Setting, Token, hookimpl

FAMILY = "echo"
END = "</e>"
END_ID = 0
MAX_INPUT_TOKENS = 256
TRANSFORMS = {"plain": str, "upper": str.upper, "reverse": lambda word: word[::-1]}
MAX_NEW_TOKENS = Setting("max_new_tokens", int, 64, "most words to echo", minimum=1, maximum=10_000)


class Vocabulary:
    """A whitespace tokenizer: each distinct word gets the next id when first seen."""

    def __init__(self) -> None:
        self.pieces = [END]
        self.ids = {END: END_ID}

    def id(self, word: str) -> int:
        if word not in self.ids:
            self.ids[word] = len(self.pieces)
            self.pieces.append(word)
        return self.ids[word]


@hookimpl
def register_models(register):
    register(
        "echo",
        family=FAMILY,
        checkpoint="plain",
        aliases=("parrot",),
        description="repeats the line: 'hello world' -> 'hello world'",
        settings=(MAX_NEW_TOKENS,),
    )
    register(
        "shout",
        family=FAMILY,
        checkpoint="upper",
        description="repeats the line in capitals: 'hello' -> 'HELLO'",
        settings=(MAX_NEW_TOKENS,),
    )


@hookimpl
def load_model(spec, checkpoint):
    if checkpoint not in TRANSFORMS:
        raise ModelError(f"{spec.name} has no checkpoint {checkpoint!r}; it knows {', '.join(TRANSFORMS)}")
    return LoadedModel(
        spec=spec,
        checkpoint=checkpoint,
        handle=TRANSFORMS[checkpoint],
        tokenizer=Vocabulary(),
        max_input_tokens=MAX_INPUT_TOKENS,
    )


@hookimpl
def tokenize(model, text):
    words = text.split()
    if not words:
        raise ModelError(f"{model.spec.name} needs at least one word")
    notices = []
    room = MAX_INPUT_TOKENS - 1  # the end token always fits
    if len(words) > room:
        notices.append(f"input truncated to {MAX_INPUT_TOKENS} tokens: {len(words) - room} words dropped from the end")
        words = words[:room]
    vocabulary = model.tokenizer
    # A typed "</e>" is the special token too, but the user put it there: not added.
    tokens = [Token(vocabulary.id(word), word, special=word == END) for word in words]
    tokens.append(Token(END_ID, END, special=True, added=True))
    return Encoding(text, tokens, notices)


@hookimpl
def run(model, encoding, settings, control):
    transform, vocabulary = model.handle, model.tokenizer
    new_ids = []
    for token in encoding.tokens:
        if token.special:
            continue
        if len(new_ids) == settings["max_new_tokens"]:
            return new_ids
        word = transform(token.piece)
        control.emit(word if not new_ids else " " + word)
        new_ids.append(vocabulary.id(word))
        if control.step():
            return new_ids
    return new_ids + [END_ID]


@hookimpl
def decode(model, output):
    pieces = [model.tokenizer.pieces[i] for i in output]
    return Reply(
        text=" ".join(piece for i, piece in zip(output, pieces) if i != END_ID),
        new_ids=list(output),
        raw_text=" ".join(pieces),
        stop_reason="eos" if output[-1:] == [END_ID] else "max_new_tokens",
    )


@hookimpl
def register_commands(register):
    register("vocab", show_vocabulary, help="the words an echo model has seen, by id", usage="[NAME]")


def show_vocabulary(context, args):
    spec = context.spec(args.strip() or None)  # no name: the active model
    if spec.family != FAMILY:
        raise ModelError(f"{spec.name} is not an echo model; /vocab shows an echo model's words")
    pieces = context.load(spec.name).tokenizer.pieces
    return f"{spec.name}: {len(pieces)} words: " + " ".join(f"{i}:{piece}" for i, piece in enumerate(pieces))
