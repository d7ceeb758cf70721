"""Overfitting a tiny checkpoint on a few examples, so that tests can expect exact answers."""

from __future__ import annotations

import os
import pathlib


def teach_checkpoint(
    family: str,
    directory: str | os.PathLike,
    examples: dict[str, str],
    *,
    steps: int = 150,
    seed: int = 0,
) -> pathlib.Path:
    """Overfit a tiny checkpoint on a few examples so that tests can expect exact answers.

    ``examples`` maps an input line to the answer the model must give: for mt0
    the generated reply, for gpt2 the continuation of the prompt, for bert the
    vocabulary piece for the single ``[MASK]`` in the line (``"paris"``, ``"##ing"``),
    for chat (a checkpoint of ``build_chat_checkpoint``) the assistant's reply to
    the line as a one-turn conversation, end-of-turn token included. The checkpoint is saved back in
    place, in the same format, so it loads through the normal code path.
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
        # The prompt and the taught conversation both come from the checkpoint's own template.
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": line}], add_generation_prompt=True)
        said = [{"role": "user", "content": line}, {"role": "assistant", "content": answer}]
        ids = tokenizer.apply_chat_template(said)["input_ids"]
        labels = [-100] * len(prompt["input_ids"]) + ids[len(prompt["input_ids"]) :]
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
