"""classifier: sequence-classification checkpoints, answering with labels and scores.

Any ``*ForSequenceClassification`` checkpoint loads (sentiment, topic, toxicity
...); the default is DistilBERT fine-tuned on SST-2. The line is encoded the
way the model was trained (``[CLS] ... [SEP]`` for BERT-like models), the model
runs once, and the reply lists the labels, most likely first: softmax scores,
or independent sigmoid scores for a multi-label checkpoint. At a terminal each
label gets a bar as long as its score.
"""

from repl.api import Encoding, Reply, Setting, hookimpl

FAMILY = "classifier"
DEFAULT_CHECKPOINT = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
TOP_K = Setting("top_k", int, 5, "labels shown, most likely first", minimum=1, maximum=1000)


@hookimpl
def register_models(register):
    register(
        "sentiment",
        family=FAMILY,
        checkpoint=DEFAULT_CHECKPOINT,
        aliases=("sst2",),
        description="labels a sentence: 'I loved it.' -> POSITIVE 0.999",
        settings=(TOP_K,),
    )


def is_classifier(config) -> bool:
    return any(name.endswith("ForSequenceClassification") for name in getattr(config, "architectures", None) or ())


@hookimpl
def load_model(spec, checkpoint, options):
    import transformers

    from repl.api import load, max_positions

    model = load(
        spec, checkpoint, options, auto_class=transformers.AutoModelForSequenceClassification, accepts=is_classifier
    )
    model.max_input_tokens = max_positions(model.handle.config, model.tokenizer)
    return model


@hookimpl
def tokenize(model, text):
    from repl.api import encode_cut_at_end

    tokens, notices = encode_cut_at_end(model, text)
    return Encoding(text, tokens, notices)


@hookimpl
def run(model, encoding, control):
    import torch

    input_ids = torch.tensor([encoding.input_ids], device=model.handle.device)
    with torch.inference_mode():
        logits = model.handle(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    control.step()
    return logits[0].float().cpu()


@hookimpl
def decode(model, output, settings):
    config = model.handle.config
    scores = output.sigmoid() if config.problem_type == "multi_label_classification" else output.softmax(dim=-1)
    ranked = sorted(enumerate(scores.tolist()), key=lambda pair: pair[1], reverse=True)[: settings["top_k"]]
    labels = [{"label": config.id2label[index], "score": round(score, 6)} for index, score in ranked]
    return Reply(
        text="  ".join(f"{entry['label']} {entry['score']:.3f}" for entry in labels),
        raw_text=labels[0]["label"],
        data={"labels": labels},
        stop_reason="done",
    )


@hookimpl
def render_reply(model, turn, width, colour):
    labels = turn.data.get("labels")
    if not labels or width < 30:
        return None  # modelrepl shows the reply as usual
    name_width = max(len(entry["label"]) for entry in labels)
    room = width - name_width - 8
    return "\n".join(
        f"{entry['label']:<{name_width}} {'█' * round(entry['score'] * room):<{room}} {entry['score']:.2f}"
        for entry in labels
    )
