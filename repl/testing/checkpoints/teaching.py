"""Overfitting a tiny checkpoint on a few examples, so that tests can expect exact answers."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt to teach a chat checkpoint an answer to, beyond one line alone (see `teach_checkpoint`).

    ``history`` holds earlier (user, assistant) turns, ``variables`` the chat
    template's variables as (name, value) pairs, so that a test can teach one
    answer with thinking on and another with ``enable_thinking`` False.
    """

    line: str
    history: tuple[tuple[str, str], ...] = ()
    system: str | None = None
    variables: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, line: str, *, history=(), system: str | None = None, **variables) -> ChatPrompt:
        return cls(line, tuple(map(tuple, history)), system, tuple(sorted(variables.items())))

    def messages(self) -> list[dict]:
        said = [{"role": "system", "content": self.system}] if self.system else []
        for user, assistant in self.history:
            said += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return said + [{"role": "user", "content": self.line}]


def teach_checkpoint(
    family: str,
    directory: str | os.PathLike,
    examples: dict,
    *,
    steps: int = 150,
    seed: int = 0,
) -> pathlib.Path:
    """Overfit a tiny checkpoint on a few examples so that tests can expect exact answers.

    ``examples`` maps an input line to the answer the model must give: for mt0
    the generated reply, for gpt2 the continuation of the prompt, for bert the
    vocabulary piece for the single ``[MASK]`` in the line (``"paris"``, ``"##ing"``),
    for chat (a checkpoint of ``build_chat_checkpoint``) the text the model
    generates after its template's prompt for the line, followed by the token the
    template ends an assistant turn with. That text is the raw reply, markup
    and all: ``"<think>Greet.</think>Hello!"``, or for harmony
    ``"<|channel|>analysis<|message|>Greet.<|end|><|start|>assistant<|channel|>final<|message|>Hello!"``.
    A chat key may be a `ChatPrompt` instead of a line: earlier turns, a system
    prompt, template variables. The checkpoint is saved back in place, in the
    same format, so it loads through the normal code path.
    """
    import torch
    import transformers

    auto_classes = {
        "mt0": transformers.AutoModelForSeq2SeqLM,
        "gpt2": transformers.AutoModelForCausalLM,
        "bert": transformers.AutoModelForMaskedLM,
        "chat": transformers.AutoModelForCausalLM,
    }
    path = pathlib.Path(directory)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = auto_classes[family].from_pretrained(path)
    batches = [_training_batch(family, tokenizer, line, answer) for line, answer in examples.items()]
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        for batch in batches:
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
    model.eval()
    model.save_pretrained(path)
    return path


def _training_batch(family: str, tokenizer, line: str, answer: str) -> dict:
    import torch

    if family == "mt0":
        return {
            "input_ids": torch.tensor([tokenizer(line).input_ids]),
            "labels": torch.tensor([tokenizer(answer).input_ids]),
        }
    if family == "chat":
        from repl.hf.chat_templates import end_of_turn_ids

        # The prompt comes from the checkpoint's own template; the answer is what the model writes after it.
        asked = line if isinstance(line, ChatPrompt) else ChatPrompt(line)
        prompt = tokenizer.apply_chat_template(
            asked.messages(), add_generation_prompt=True, tokenize=False, **dict(asked.variables)
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        end = sorted(end_of_turn_ids(tokenizer, "")) or [tokenizer.eos_token_id]
        answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + end[:1]
        ids = prompt_ids + answer_ids
        labels = [-100] * len(prompt_ids) + answer_ids
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    if family == "gpt2":
        ids = tokenizer(line + answer).input_ids + [tokenizer.eos_token_id]
        labels = list(ids)
        labels[: len(tokenizer(line).input_ids)] = [-100] * len(tokenizer(line).input_ids)
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    ids = tokenizer(line).input_ids
    labels = [-100] * len(ids)
    word_id = tokenizer.convert_tokens_to_ids(answer)  # a piece such as "##ing", not text
    labels[ids.index(tokenizer.mask_token_id)] = word_id
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
