"""A reasoning model's reply read as it streams: its thinking, its answer, and gpt-oss's other channels.

The reading is transformers' own response parsing (`tokenizer.get_response_parser`,
a streaming parser driven by a *response template*): the checkpoint's own
template where its tokenizer ships one, else one worked out here from the
chat template. Two shapes are known: `<think>…</think>` before the answer
(Qwen3, DeepSeek-R1, SmolLM3, Phi-4-reasoning), and gpt-oss's harmony, where a
reply is an `analysis` message, then `<|end|><|start|>assistant`, then a
`final` one ended by `<|return|>`, with `commentary` messages beside them.

Fed token ids, the parser tells a control token the model generated from the
same characters spelled out in text, and holds back what may still become a
delimiter; what `ReplyReader` shows of each part only ever grows, so a stream
never has to take anything back. `ThinkingBudget` closes the thinking itself
after `max_thinking_tokens` by forcing the closing markup, as a logits processor.

(`openai-harmony`, OpenAI's own harmony renderer and parser, is not used: it reads
token ids of gpt-oss's o200k vocabulary only, and fetches that vocabulary from the
network on first use, which fails offline.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OPEN = "<think>"
CLOSE = "</think>"
# gpt-oss's harmony markup: every message is <|start|>ROLE<|channel|>CHANNEL<|message|>TEXT<|end|>.
CHANNEL, MESSAGE, END, START = "<|channel|>", "<|message|>", "<|end|>", "<|start|>"
HARMONY_ENDS = ("<|return|>", "<|call|>")
# The names a parsed message gives its reasoning (transformers' templates use `thinking`).
REASONING_FIELDS = ("thinking", "reasoning_content", "reasoning")
ANSWER_FIELD = "content"


@dataclass(frozen=True)
class ReplyFormat:
    """How a checkpoint's replies are read.

    `response_template` is a transformers response template; `budget_close` the
    text forced to end the thinking when `max_thinking_tokens` runs out (None
    where it is not known); `name` says where the template came from.
    """

    response_template: dict[str, Any]
    budget_close: str | None
    name: str


def think_format(generation_prompt: str, ends: Iterable[str]) -> ReplyFormat:
    """`<think>…</think>` then the answer, which runs until one of `ends` (the end-of-turn tokens).

    The reply starts where the template's generation prompt starts, less any
    `<think>` it opens itself (DeepSeek-R1's `<｜Assistant｜><think>\\n`), so that
    a prompt that opens the thinking, or closes it empty (Qwen3 with
    `enable_thinking` False), leaves the parser in the right place.
    """
    anchor = generation_prompt.partition(OPEN)[0]
    fields: dict[str, Any] = {
        "thinking": {"open": OPEN, "close": CLOSE},
        ANSWER_FIELD: {"close": list(dict.fromkeys(ends))} if any(ends) else {},
    }
    template: dict[str, Any] = {"fields": fields}
    template.update({"start_anchor": anchor} if anchor else {"start_anchor_pattern": r"\Z"})
    return ReplyFormat(template, CLOSE, "<think> tags")


def harmony_format() -> ReplyFormat:
    """gpt-oss's channels: `analysis` is the thinking, `final` the answer, `commentary` a note."""
    template = {
        "start_anchor": f"{START}assistant",
        "fields": {
            "thinking": {"open": f"{CHANNEL}analysis{MESSAGE}", "close": END, "repeats": True, "join": "\n\n"},
            ANSWER_FIELD: {"open": f"{CHANNEL}final{MESSAGE}", "close": [END, *HARMONY_ENDS]},
            "commentary": {"open": f"{CHANNEL}commentary{MESSAGE}", "close": [END, *HARMONY_ENDS], "repeats": True},
        },
    }
    return ReplyFormat(template, f"{END}{START}assistant{CHANNEL}final{MESSAGE}", "harmony")


def reply_format(tokenizer: Any, end_ids: Iterable[int]) -> ReplyFormat:
    """The checkpoint's own response template if its tokenizer has one, else harmony or `<think>` tags.

    Harmony is recognised by its markup tokens in the vocabulary; `end_ids`
    are the ids that end the reply (the end of turn, the EOS).
    """
    from repl.hf.chat_templates import generation_prompt

    own = getattr(tokenizer, "response_template", None)
    if isinstance(own, dict):
        return ReplyFormat(own, _budget_close(own), "the checkpoint's response template")
    vocabulary = tokenizer.get_vocab()
    if all(marker in vocabulary for marker in (CHANNEL, MESSAGE, END, START)):
        return harmony_format()
    ends = [tokenizer.convert_ids_to_tokens(token_id) for token_id in sorted(end_ids)]
    return think_format(generation_prompt(tokenizer), ends)


def _budget_close(template: dict[str, Any]) -> str | None:
    """What closes the thinking in a checkpoint's own response template: its literal close, if it has one."""
    thinking = next((template["fields"][name] for name in REASONING_FIELDS if name in template["fields"]), None)
    close = thinking.get("close") if thinking else None
    if isinstance(close, list):
        close = close[0] if close else None
    return close if isinstance(close, str) else None


def _spellings(field: dict[str, Any], *keys: str) -> list[str]:
    """A field's delimiters as written, literal or pattern."""
    found: list[str] = []
    for key in keys:
        value = field.get(key)
        found += [value] if isinstance(value, str) else list(value or ())
    return found


class ReplyReader:
    """One reply, read as it comes: `thinking`, `answer` and `notes`, each only ever growing.

    Made for a transformers tokenizer (`for_tokenizer`, fed ids) or for text
    (`for_text`, fed each token's text, for models whose tokens are not a
    transformers tokenizer's). Until `finish`, whitespace at the end of a part
    and text that may still be markup are held back.
    """

    def __init__(self, parser: Any, form: ReplyFormat):
        self.form = form
        self._parser = parser
        self._parts = {"thinking": "", "answer": ""}
        self._open: str | None = None
        self.notes: list[str] = []
        self.fed = 0
        self.thinking_tokens = 0  # tokens fed while a thinking part was open
        self.answer_from: int | None = None  # tokens fed before the first character of the answer
        self.reasoned = False
        self.finished = False
        self._tokenizer: Any = None
        self._special: dict[int, str] = {}
        fields = form.response_template["fields"]
        # Inside a part, the delimiters that can end it; outside, those that can begin one (and end the part
        # that has no beginning): a special token none of them spells is dropped, so it never shows in a part.
        self._delimiters: dict[str | None, list[str]] = {
            name: _spellings(field, "close", "close_pattern") for name, field in fields.items()
        }
        self._delimiters[None] = []
        for name, field in fields.items():
            opens = _spellings(field, "open", "open_pattern")
            self._delimiters[None] += opens or self._delimiters[name]
        self._field: str | None = None
        self._kept: list[int] | None = None
        self._text_fed = 0
        self._handle(parser.initial_events)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, form: ReplyFormat, prompt_ids: list[int]) -> ReplyReader:
        """Fed the reply's ids. Special tokens that are none of the format's delimiters are dropped, so the
        answer never shows one (as with `skip_special_tokens`); a control token the model generated is told
        from the same characters spelled out in text."""
        fast = getattr(tokenizer, "backend_tokenizer", None) is not None
        parser = tokenizer.get_response_parser(
            form.response_template,
            prefix=prompt_ids if fast else tokenizer.decode(prompt_ids, skip_special_tokens=False),
            token_ids=fast,
        )
        reader = cls(parser, form)
        reader._tokenizer = tokenizer
        reader._special = {
            token_id: token.content for token_id, token in tokenizer.added_tokens_decoder.items() if token.special
        }
        reader._kept = None if fast else []
        return reader

    @classmethod
    def for_text(cls, form: ReplyFormat, prompt: str) -> ReplyReader:
        """Fed the text of each generated token, special tokens spelled out (`feed_text`)."""
        from transformers.utils.chat_parsing import ResponseParser

        return cls(ResponseParser(form.response_template, prefix=prompt), form)

    @property
    def thinking_now(self) -> bool:
        return self._open == "thinking"

    @property
    def thinking(self) -> str:
        return self._shown("thinking")

    @property
    def answer(self) -> str:
        return self._shown("answer")

    @property
    def reasoning_tokens(self) -> int:
        """How many tokens came before the answer, in a reply that thought (all of them if it never answered)."""
        if not self.reasoned:
            return 0
        return self.fed if self.answer_from is None else self.answer_from

    def feed(self, ids: list[int]) -> None:
        """The next generated ids (a reader `for_tokenizer`)."""
        for token_id in ids:
            self._count()
            spelling = self._special.get(token_id)
            if spelling is None or any(spelling in delimiter for delimiter in self._delimiters[self._field]):
                self._handle(self._parser.feed(self._input_for(token_id)))

    def feed_text(self, text: str) -> None:
        """The text of the next generated token (a reader `for_text`)."""
        self._count()
        self._handle(self._parser.feed(text))

    def finish(self) -> None:
        if not self.finished:
            _, events = self._parser.finalize()
            self._handle(events)
            self.finished = True

    def _count(self) -> None:
        if self.thinking_now:
            self.thinking_tokens += 1
        self.fed += 1

    def _input_for(self, token_id: int) -> Any:
        """What the parser is fed for one id: the id itself, or for a slow tokenizer the new whole characters."""
        if self._kept is None:
            return [token_id]
        self._kept.append(token_id)
        text = self._tokenizer.decode(self._kept, skip_special_tokens=False)
        if text.endswith("\ufffd"):  # the id ends inside a character: wait for the rest
            return ""
        new, self._text_fed = text[self._text_fed :], len(text)
        return new

    def _handle(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            field = event["field"]
            part = "thinking" if field in REASONING_FIELDS else "answer" if field == ANSWER_FIELD else None
            if event["type"] == "region_open":
                self._open, self._field = part, field
                if part == "thinking" and self._parts["thinking"].strip():
                    self._parts["thinking"] = self._parts["thinking"].rstrip() + "\n\n"  # another analysis message
                self.reasoned = self.reasoned or part == "thinking"
            elif event["type"] == "region_close":
                if part is None and isinstance(event["value"], str) and event["value"].strip():
                    self.notes.append(f"{field}: {event['value'].strip()}")
                self._open = self._field = None
            elif part is not None and event["text"]:
                self._parts[part] += event["text"]
                if part == "answer" and self.answer_from is None and event["text"].strip():
                    self.answer_from = max(self.fed - 1, 0)

    def _shown(self, part: str) -> str:
        # Whitespace before a part is never shown; at its end it is held while the part may still go on, and
        # the answer keeps it once the reply is over (a markdown answer may end its code block with a newline).
        text = self._parts[part].lstrip()
        return text if part == "answer" and self.finished else text.rstrip()


class ThinkingBudget:
    """A logits processor that ends the thinking after `budget` tokens by forcing `form.budget_close`.

    It reads the reply as it grows with its own `ReplyReader`; once the thinking
    has run `budget` tokens and is still open, each next step may only produce
    the next token of the closing markup (`</think>`, or for harmony the end of
    the analysis message and the start of the final one). Then the model answers
    freely. One sequence at a time: `max_thinking_tokens` takes no beam search.
    """

    def __init__(self, tokenizer: Any, form: ReplyFormat, prompt_ids: list[int], budget: int):
        self.reader = ReplyReader.for_tokenizer(tokenizer, form, prompt_ids)
        self.prompt_length = len(prompt_ids)
        self.budget = budget
        self.closing = tokenizer(form.budget_close or "", add_special_tokens=False).input_ids
        self.forced: list[int] = []
        self.closed = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = input_ids[0, self.prompt_length + self.reader.fed :].tolist()
        self.reader.feed(generated)
        if self.forced and generated and generated[-1] == self.forced[0]:
            self.forced.pop(0)
        if not self.closed and self.reader.thinking_now and self.reader.thinking_tokens >= self.budget:
            self.forced, self.closed = list(self.closing), True
        if self.forced:
            forced = scores.new_full(scores.shape, float("-inf"))
            forced[:, self.forced[0]] = 0.0
            return forced
        return scores


# -- the first version's helpers, kept for plugins written against them ---------------


def reasoning_open_in_prompt(prompt: str) -> bool:
    """Whether the prompt ends inside a reasoning block, so the reply starts as reasoning."""
    return prompt.rfind(OPEN) > prompt.rfind(CLOSE)


def split_reasoning(text: str, thinking: bool = False, final: bool = False) -> tuple[str, str]:
    """(reasoning, answer) of a reply so far as text; `thinking`: the reply starts inside a block.

    Whitespace around the reasoning and before the answer is dropped. Until
    `final`, text that may be the start of a tag, and whitespace at the end of
    the reasoning, are held back. (`ReplyReader` reads replies from their ids,
    harmony's included.)
    """
    if not thinking:
        stripped = text.lstrip()
        if stripped.startswith(OPEN):
            text, thinking = stripped[len(OPEN) :], True
        elif not final and stripped and OPEN.startswith(stripped):
            return "", ""  # might be the start of "<think>"
        else:
            return "", stripped
    reasoning, closed, answer = text.partition(CLOSE)
    if closed or final:
        return reasoning.strip(), answer.lstrip()
    return _without_partial_tag(reasoning, CLOSE).strip(), ""


def _without_partial_tag(text: str, tag: str) -> str:
    """`text` without an ending that could be the beginning of `tag`."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-length:]):
            return text[:-length]
    return text
