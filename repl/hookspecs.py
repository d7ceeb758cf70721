"""The hooks a modelrepl plugin can implement.

A plugin is a module (or object) with functions marked ``@hookimpl``, named after
the specs below, made known through the ``modelrepl`` entry-point group. An
implementation may accept fewer arguments than its spec.

Order of a turn: ``load_model`` (once, when the model is first needed), then for
every line ``tokenize`` -> ``run`` -> ``decode``, then ``turn_finished`` on every
plugin. The four model hooks are ``firstresult`` and are called only on the
plugin that registered the model, so a plugin never sees another plugin's models
and one faulty plugin cannot break another's.
"""

import pluggy

hookspec = pluggy.HookspecMarker("modelrepl")
hookimpl = pluggy.HookimplMarker("modelrepl")


@hookspec
def register_models(register):
    """Offer models. Broadcast: called once on every plugin at start-up.

    Call ``register(name, family=..., checkpoint=..., aliases=(), description="",
    settings=(), validate_settings=None)`` once per model. ``family`` is
    ``"seq2seq"``, ``"causal"``, ``"masked"`` or a family of the plugin's own;
    ``checkpoint`` is the default hub id or directory; ``settings`` is a tuple of
    :class:`repl.api.Setting` the model accepts through ``/set``;
    ``validate_settings(settings)`` may raise ValueError for a bad combination
    and may return a warning string for one that has no effect.
    A name or alias that another plugin already took is refused and reported.
    """


@hookspec(firstresult=True)
def load_model(spec, checkpoint, options):
    """Load ``checkpoint`` (hub id or local directory) for the model ``spec``.

    ``options`` is a :class:`repl.api.LoadOptions` (device, dtype, allow_pickle,
    trust_remote_code, max_memory, offload_dir). Return a :class:`repl.api.LoadedModel`. Raise
    :class:`repl.api.ModelError` with a one-line message when the checkpoint is
    missing, of another family, lacks the weights the task needs, or is unsafe.
    """


@hookspec(firstresult=True)
def tokenize(model, text, settings, history):
    """Turn one input line into exactly what the model will see.

    ``model`` is the :class:`repl.api.LoadedModel`, ``settings`` the model's
    current settings, ``history`` the earlier ``(input, output)`` pairs of this
    model since the last ``/clear`` (for plugins that keep conversation context).
    Return a :class:`repl.api.Encoding`: every token with ``special`` and
    ``added`` marked (``added`` = put there by the tokenizer, not typed by the
    user: mt0's ``</s>``, BERT's ``[CLS]``/``[SEP]``). Adding special tokens the
    way the model was trained is this hook's job. Truncation goes in
    ``notices``; input the model cannot take raises ModelError.
    """


@hookspec(firstresult=True)
def run(model, encoding, settings, control):
    """Run the model on ``encoding`` and return its raw output (any object).

    This is the only hook that touches the model. ``control`` is a
    :class:`repl.api.RunControl`: call ``control.step()`` after every decoding
    step and stop when it returns True (the user pressed Ctrl-C), and pass whole
    characters of the reply to ``control.emit(text)`` as they are generated.
    """


@hookspec(firstresult=True)
def decode(model, encoding, output, settings):
    """Turn ``run``'s output into a :class:`repl.api.Reply`.

    ``text`` is what the user sees (special tokens removed, clean whitespace;
    for generated text it equals what was streamed), ``raw_text`` the decoding
    with special tokens, ``new_ids`` the generated ids (what stats count),
    ``raw_ids`` the whole output sequence where it differs (mt0's leading
    decoder start token), ``stop_reason`` one of :data:`repl.api.STOP_REASONS`
    (``done`` for a model that generates no tokens), and ``data`` any structured
    result beyond text (BERT's ``candidates``) in strict JSON, which ``--json``
    prints beside the output, without the names reserved for modelrepl's own
    fields (docs/plugins.md lists them);
    ``display``, if set, is what a terminal shows instead of ``text``.
    With the ``probs`` setting on, ``logprobs`` holds a
    :class:`repl.api.TokenProbs` per generated token (``repl.api.token_probs``
    builds them from ``generate``'s scores); a masked LM gives one per mask.
    """


@hookspec(firstresult=True)
def score(model, text, settings):
    """How likely the model finds ``text``: the log-probability of each of its tokens.

    Called by ``/score`` and ``modelrepl score`` on the plugin that registered
    the model. Return a :class:`repl.api.Score`: its ``tokens`` as
    :class:`repl.api.ScoredToken` with natural-log ``logprob`` (None for a token
    with nothing before it to be predicted from, GPT-2's first), ``method``,
    and ``bos_prepended`` for causal models. ``repl.api`` has ``score_causal``,
    ``score_seq2seq`` (``INPUT => TARGET``) and ``score_masked``
    (pseudo-log-likelihood). Return None if the model cannot score text; raise
    ModelError for text it cannot take.
    """


@hookspec
def register_commands(register):
    """Add REPL commands. Broadcast: called once on every plugin at start-up.

    Call ``register(name, handler, help="...", usage="", aliases=())``.
    ``handler(context, args)`` gets a :class:`repl.api.CommandContext` (the
    session's models and settings, and what a command may do with them) and the
    text after the command name, and returns what to show: a string, a
    :class:`repl.api.Result`, or None. It never prints.
    """


@hookspec(firstresult=True)
def render_reply(model, turn, width, colour):
    """Draw a finished reply of one of the plugin's models on a terminal, the plugin's own way.

    Called only at an interactive terminal (never in batch, ``--json``,
    transcripts or session files), only on the plugin that registered the
    model, once the reply is complete: ``model`` is the
    :class:`repl.api.LoadedModel`, ``turn`` the :class:`repl.api.Turn` (its
    ``input``, ``output``, ``data``, ``stats``), ``width`` the columns to fit
    and ``colour`` whether escape sequences may colour it. Return the text to
    show, or None to leave the reply to modelrepl (markdown or raw, by the
    model's ``render`` setting). A model whose plugin implements this hook is
    not streamed at a terminal: the plugin gets the whole reply. An exception,
    or a value that is not a string, is reported once and the reply shown the
    default way.
    """


@hookspec
def turn_finished(turn):
    """Observe a finished turn (a :class:`repl.api.Turn`). Broadcast.

    Called on every plugin after each model turn, failed or cancelled turns
    included. The return value is ignored; an exception is reported, not raised.
    """
