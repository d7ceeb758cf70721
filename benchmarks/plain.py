"""The baseline: what a user writes with transformers alone to get one reply.

Tokenize, generate (or one forward pass for the masked LM), decode, with the
same settings modelrepl uses: greedy decoding, exactly N new tokens,
streaming through transformers' own `TextStreamer` when asked. The benchmark
imports these functions to compare in one process, and runs this file as a
script to compare end to end:

    python benchmarks/plain.py FAMILY CHECKPOINT TEXT NEW_TOKENS [--stream]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import torch
import transformers

AUTO_CLASSES = {
    "gpt2": transformers.AutoModelForCausalLM,
    "mt0": transformers.AutoModelForSeq2SeqLM,
    "bert": transformers.AutoModelForMaskedLM,
}
TOP_K = 5


class _Streamer(transformers.TextStreamer):
    """transformers' TextStreamer, writing to `write` instead of print()."""

    def __init__(self, tokenizer: Any, write: Callable[[str], Any]):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.write = write

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.write(text)


def load(family: str, checkpoint: str) -> tuple[Any, Any]:
    model = AUTO_CLASSES[family].from_pretrained(checkpoint)
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    return model.eval(), tokenizer


def reply(
    family: str, model: Any, tokenizer: Any, text: str, new_tokens: int, write: Callable[[str], Any] | None = None
) -> str:
    """The reply's text; streamed pieces go to `write` when it is given."""
    if family == "bert":
        return fill_mask(model, tokenizer, text)
    inputs = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            streamer=_Streamer(tokenizer, write) if write else None,
        )
    new_ids = output[0, inputs["input_ids"].shape[1] :] if family == "gpt2" else output[0, 1:]
    return tokenizer.decode(new_ids, skip_special_tokens=True)


def fill_mask(model: Any, tokenizer: Any, text: str) -> str:
    """The sentence with each [MASK] filled, then the top candidates of each mask."""
    inputs = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits[0]
    masks = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    scores = logits[masks]
    scores[:, tokenizer.all_special_ids] = float("-inf")
    probabilities, ids = scores.softmax(dim=-1).topk(TOP_K, dim=-1)
    filled = inputs["input_ids"][0].clone()
    filled[masks] = ids[:, 0]
    lines = [tokenizer.decode(filled, skip_special_tokens=True)]
    for row_ids, row_probabilities in zip(ids.tolist(), probabilities.tolist()):
        pieces = tokenizer.convert_ids_to_tokens(row_ids)
        lines.append("  ".join(f"{piece} {p:.3f}" for piece, p in zip(pieces, row_probabilities)))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=sorted(AUTO_CLASSES))
    parser.add_argument("checkpoint")
    parser.add_argument("text")
    parser.add_argument("new_tokens", type=int)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    model, tokenizer = load(args.family, args.checkpoint)

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    streamed = args.stream and args.family != "bert"
    text = reply(args.family, model, tokenizer, args.text, args.new_tokens, write if streamed else None)
    print("" if streamed else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
