"""gguf: a GGUF file (llama.cpp's format, the files ollama and LM Studio keep), run by llama.cpp.

The file is a path, or a file of a hub repository written `REPO#FILE.gguf`
(downloaded once into the Hugging Face cache, then read from there, network
or not). llama.cpp runs it through llama-cpp-python's bindings of its C API:
one model, one context, and the context's cache of the tokens it has seen, so
that a conversation's next line only costs its new tokens.

A file whose metadata holds a chat template (`tokenizer.chat_template`) talks
like `chat`: the conversation and the `system` setting are rendered by that
template, with transformers' own renderer (the function `apply_chat_template`
calls), so a template renders here exactly as it renders from a checkpoint;
the oldest turns are dropped first when the prompt outgrows the context, and
the reply is read by `ReplyReader` (its thinking apart from its answer), with
the reasoning settings (`think`, `max_thinking_tokens`, `reasoning_effort`,
`template.NAME`) as `chat` takes them. A file without one continues text like
`gpt2`, and its template settings are refused. Tokens are the file's own: llama.cpp's tokenizer,
with the BOS only when the file says to add it, generation stopping at the
file's end-of-generation tokens and at the token its template ends a turn with.

Sampling is llama.cpp's: greedy unless `do_sample`, else top-k, top-p and
temperature in llama.cpp's order; the repetition penalty counts the prompt
and the reply, as transformers' does. With `probs` on, each step's logits
give `/probs` the raw distribution and the one the token was drawn from;
`/score` reads the logits of every position of the text.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import dataclasses
import itertools
import os
import threading
import weakref
from bisect import bisect_right
from typing import Any

from repl.api import (
    CAUSAL,
    GENERATION_SETTINGS,
    REASONING_SETTINGS,
    SYSTEM,
    Alternative,
    Encoding,
    LoadedModel,
    ModelError,
    Reply,
    Score,
    ScoredToken,
    Setting,
    Token,
    TokenProbs,
    hookimpl,
    messages,
)

NAME = "gguf"
DEFAULT_CHECKPOINT = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF#smollm2-135m-instruct-q8_0.gguf"
INSTALL = 'pip install -e ".[gguf]"'
# The context made when n_ctx is none: a file may declare 128k positions, whose cache would take gigabytes.
DEFAULT_CONTEXT = 4096
# Tokens decoded at once when a text is scored: every one keeps a row of logits the size of the vocabulary.
SCORE_CHUNK = 64
HUB_TIMEOUT_SECONDS = 5
# The generation settings that have an equivalent in llama.cpp's sampling; the rest are not offered.
_SAMPLING = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "seed")
N_CTX = Setting(
    "n_ctx",
    int,
    None,
    f"context length in tokens (none: the file's own, at most {DEFAULT_CONTEXT})",
    minimum=16,
    maximum=1 << 20,
    optional=True,
)


def _settings() -> tuple[Setting, ...]:
    kept = tuple(
        dataclasses.replace(s, default=256) if s.name == "max_new_tokens" else s
        for s in GENERATION_SETTINGS
        if s.name in _SAMPLING or s.name in ("probs", "top_logprobs")
    )
    threads = Setting(
        "threads",
        int,
        _physical_cores(),
        "CPU threads llama.cpp computes with (default: this machine's physical cores)",
        minimum=1,
        maximum=1024,
    )
    return kept + (SYSTEM, threads, N_CTX) + REASONING_SETTINGS


def _physical_cores() -> int:
    """Cores this process may run on, hyperthreads of one core counted once (as llama.cpp counts them)."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as siblings:
                cores.add(siblings.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(len(cores), 1)


def validate(settings: dict[str, Any]) -> str | None:
    """Refuse what llama.cpp's samplers cannot do; warn of settings that have no effect."""
    if settings.get("do_sample") and settings.get("temperature") == 0:
        raise ValueError("temperature 0 does not sample: turn do_sample off for greedy decoding, or raise temperature")
    if settings.get("repetition_penalty") == 0:
        raise ValueError("repetition_penalty must be above 0 (1 is no penalty)")
    # The file's positions are checked by modelrepl (max_input_tokens); the context made for them here.
    n_ctx, wanted = settings.get("n_ctx"), settings.get("max_new_tokens")
    if isinstance(wanted, int) and wanted >= (n_ctx or DEFAULT_CONTEXT):
        context = f"a context of n_ctx {n_ctx}" if n_ctx else f"the default context of at most {DEFAULT_CONTEXT}"
        raise ValueError(
            f"max_new_tokens {wanted} leaves no room for input in {context} tokens "
            "(the prompt and the reply share them): lower max_new_tokens or raise n_ctx"
        )
    if not settings.get("do_sample"):
        defaults = {s.name: s.default for s in GENERATION_SETTINGS}
        unused = [name for name in ("temperature", "top_k", "top_p") if settings[name] != defaults[name]]
        if unused:
            values = ", ".join(f"{name} {settings[name]:g}" for name in unused)
            return f"{values} {'takes' if len(unused) == 1 else 'take'} effect only when sampling: /set do_sample on"
    return None


@hookimpl
def register_models(register):
    register(
        NAME,
        family=CAUSAL,
        checkpoint=DEFAULT_CHECKPOINT,
        description="a GGUF file through llama.cpp: chats with its template, or continues text",
        settings=_settings(),
        validate_settings=validate,
    )


# -- loading ----------------------------------------------------------------------


def _llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ModelError(f"gguf needs llama-cpp-python, which is not installed: {INSTALL}") from None
    _quiet(llama_cpp)
    return llama_cpp


_LOG_LOCK = threading.Lock()
# llama.cpp's last log lines, and how many it has written in all: a failed load quotes what it logged since.
_log_lines: collections.deque[str] = collections.deque(maxlen=200)
_logged = [0]
_log_callback: Any = None


def _quiet(llama: Any) -> None:
    """Keep llama.cpp's log off the terminal, and its text where a failed load can quote it.

    llama-cpp-python's own quiet mode points the process's stdout and stderr at
    /dev/null while a model loads, which would blank the prompt a background
    load runs beside; a log callback keeps every other writer's output alive.
    """
    global _log_callback
    with _LOG_LOCK:
        if _log_callback is not None:
            return

        @llama.llama_log_callback
        def keep(level: int, text: bytes, user_data: Any) -> None:
            _log_lines.append(text.decode("utf-8", "replace"))
            _logged[0] += 1

        _log_callback = keep  # ctypes calls it for as long as the process lives: it must not be collected
        llama.llama_backend_init()
        llama.llama_log_set(keep, ctypes.c_void_p(0))


def _log_since(start: int) -> str:
    """What llama.cpp logged after it had written `start` lines (as much of it as is kept)."""
    new = _logged[0] - start
    return "".join(list(_log_lines)[-new:]) if new > 0 else ""


@hookimpl
def load_model(spec, checkpoint, options):
    llama = _llama()
    if options.quantize:
        raise ModelError(
            f"{spec.name} runs a GGUF file as it is quantized; --quantize {options.quantize} does not apply "
            "(load a file of another quantization instead, Q8_0 or Q4_K_M)"
        )
    gpu = _gpu_layers(llama, options.device)
    path = _resolve(spec, checkpoint, options)
    _check_file(checkpoint, path)
    if options.make_room is not None:
        options.make_room()
    engine = Engine(llama, checkpoint, path, gpu)
    model = LoadedModel(
        spec=spec,
        checkpoint=checkpoint,
        handle=engine,
        tokenizer=_ChatTemplate(engine) if engine.template else None,
        device="gpu" if gpu else "cpu",
        dtype=engine.file_type,
        parameters=engine.parameters,
        memory_bytes=engine.size,
        max_input_tokens=engine.trained_context or None,
    )
    if engine.template:
        _read_replies(model)
    else:
        model.template_variables = frozenset()  # no template: template.NAME and think off are refused at /set
    _describe_context(model, engine.default_context)
    return model


def _read_replies(model: LoadedModel) -> None:
    """How the file's replies are read: harmony where its vocabulary has the markup tokens, else `<think>` tags."""
    from repl.api import generation_prompt, harmony_format, template_variables, think_format

    engine = model.handle
    model.template_variables = template_variables(engine.template)
    harmony = ("<|channel|>", "<|message|>", "<|end|>", "<|start|>")
    if all(len(ids := engine.tokenize(marker, False)) == 1 and ids[0] in engine.control for marker in harmony):
        form = harmony_format()
    else:
        form = think_format(generation_prompt(model.tokenizer), [])
    model.memo["format"] = form
    # Control tokens that spell the format's markup are fed to the reader spelled out; other control tokens
    # add no text, as `skip_special_tokens` drops them.
    delimiters = [
        text
        for field in form.response_template["fields"].values()
        for key in ("open", "close")
        for text in ([field[key]] if isinstance(field.get(key), str) else field.get(key) or [])
    ]
    model.memo["markup"] = {i for text in delimiters for i in engine.tokenize(text, False) if i in engine.control}


def _gpu_layers(llama: Any, device: str) -> int:
    """llama.cpp's layers on the GPU for `--device`: all where it was built for one, none on `cpu`."""
    if device == "cpu":
        return 0
    if llama.llama_supports_gpu_offload():
        return -1
    if device == "auto":
        return 0
    raise ModelError(
        f"this llama-cpp-python was built for the CPU only, so {NAME} cannot run on {device}; "
        "use --device cpu, or reinstall it with GPU support (CMAKE_ARGS=-DGGML_CUDA=on)"
    )


def _resolve(spec: Any, checkpoint: str, options: Any) -> str:
    """The file's local path: the path given, or a hub file (`REPO#FILE.gguf`) from the Hugging Face cache."""
    path = os.path.expanduser(checkpoint)
    if os.path.isdir(path):
        inside = sorted(name for name in os.listdir(path) if name.endswith(".gguf"))
        hint = (
            f": /load {spec.name} {os.path.join(checkpoint, inside[0])}"
            if inside
            else " (a transformers checkpoint directory loads with gpt2 or chat)"
        )
        raise ModelError(f"{checkpoint!r} is a directory; {spec.name} loads one .gguf file{hint}")
    if os.path.isfile(path):
        return path
    repo, marked, filename = checkpoint.partition("#")
    if not marked or not repo or not filename or checkpoint.startswith((".", "/", "~")):
        raise ModelError(f"no such file: {checkpoint!r} (a file of a hub repository is REPO#FILE.gguf)")
    return _hub_file(spec, checkpoint, repo, filename, options)


def _hub_file(spec: Any, checkpoint: str, repo: str, filename: str, options: Any) -> str:
    """The hub file from the cache when it is there, else downloaded once the hub answers quickly.

    The same rules as other checkpoints: a cached file loads at once, network
    or not; with HF_HUB_OFFLINE set, or in the warm start's background load,
    nothing is downloaded; an uncached file is first looked up with a short
    timeout, so that no network means one message within seconds.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo, filename)
    except ValueError:  # huggingface_hub's check of a repository id
        raise ModelError(f"{repo!r} is not a hub repository id; a hub file is REPO#FILE.gguf") from None
    if isinstance(cached, str):
        return cached
    where = (
        "the hub is off (HF_HUB_OFFLINE is set)"
        if constants.HF_HUB_OFFLINE
        else "the hub could not be reached or has no such file"
    )
    unreachable = (
        f"{checkpoint!r} is not in the local Hugging Face cache and {where}; download it once with network "
        f"access, or load a local file: /load {spec.name} /path/to/model.gguf"
    )
    if constants.HF_HUB_OFFLINE or options.local_files_only:
        raise ModelError(unreachable)
    try:
        get_hf_file_metadata(hf_hub_url(repo, filename), timeout=HUB_TIMEOUT_SECONDS)
    except Exception:  # no network, no such repository or file, an invalid name: it cannot be fetched
        raise ModelError(unreachable) from None
    try:
        return hf_hub_download(repo, filename)
    except Exception as exc:  # the download broke off: network, disk
        raise ModelError(f"downloading {checkpoint!r} failed: {' '.join(str(exc).split())[:200]}") from None


def _check_file(checkpoint: str, path: str) -> None:
    """Refuse what llama.cpp would fail on slowly or badly: not a GGUF file, a file larger than the memory."""
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
        size = os.path.getsize(path)
    except OSError as exc:
        raise ModelError(f"cannot read {checkpoint!r}: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise ModelError(f"{checkpoint!r} is not a GGUF file (a GGUF file starts with the bytes 'GGUF')")
    memory = _memory_bytes()
    if memory and size > memory:
        raise ModelError(
            f"{checkpoint!r} is {_gib(size)}, more than this machine's {_gib(memory)} of memory; "
            "take a smaller quantization of the model (Q4_K_M, Q8_0)"
        )


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # a platform without these names
        return 0


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def _describe_context(model: LoadedModel, n_ctx: int) -> None:
    """/models shows the context made for the file, beside its own positions (`max_input_tokens`)."""
    engine = model.handle
    trained = f" of {engine.trained_context}" if engine.trained_context > n_ctx else ""
    model.placement = f"{model.device}, llama.cpp {engine.architecture}, context {n_ctx}{trained}"


# -- the engine -------------------------------------------------------------------


class Engine:
    """One GGUF file in llama.cpp: the model, a context, and the tokens whose keys and values it holds.

    `tokens` mirrors the context's cache (sequence 0, positions 0 onwards), so
    a prompt that starts like the previous one decodes only what is new.
    """

    def __init__(self, llama: Any, checkpoint: str, path: str, gpu_layers: int):
        self.llama = llama
        params = llama.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        # llama.cpp's AMX kernels crash on some matrices and give wrong results on others
        # (ggml-org/llama.cpp#20824, #16315); without the extra buffer types AVX-512 computes them.
        params.use_extra_bufts = b"AMX_INT8 = 1" not in llama.llama_print_system_info()
        start = _logged[0]
        pointer = llama.llama_model_load_from_file(path.encode(), params)
        if not pointer:
            raise ModelError(_load_failure(llama, checkpoint, _log_since(start)))
        self._owned = {"model": pointer, "context": None, "batch": None}
        weakref.finalize(self, _free, llama, self._owned)
        self.model = pointer
        self.vocab = llama.llama_model_get_vocab(pointer)
        self.n_vocab = llama.llama_vocab_n_tokens(self.vocab)
        self.architecture = self.meta("general.architecture") or "?"
        self.file_type = _file_type(llama, pointer, self.meta("general.file_type"))
        self.parameters = llama.llama_model_n_params(pointer)
        self.size = llama.llama_model_size(pointer)
        self.trained_context = llama.llama_model_n_ctx_train(pointer)
        self.default_context = min(self.trained_context, DEFAULT_CONTEXT) or DEFAULT_CONTEXT
        template = llama.llama_model_chat_template(pointer, None)
        self.template = template.decode("utf-8") if template else None
        self.add_bos = bool(llama.llama_vocab_get_add_bos(self.vocab))
        self.eog = {i for i in range(self.n_vocab) if llama.llama_vocab_is_eog(self.vocab, i)}
        self.control = {i for i in range(self.n_vocab) if llama.llama_vocab_is_control(self.vocab, i)}
        self.n_ctx = 0
        self.threads = 0
        self.tokens: list[int] = []
        self._pieces: dict[tuple[int, bool], bytes] = {}

    def meta(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(256)
        if self.llama.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer)) < 0:
            return None
        return buffer.value.decode("utf-8", "replace")

    def special_token_text(self, kind: str) -> str | None:
        """The text of the file's `kind` token (bos, eos, unk, padding), None where the file names none."""
        value = self.meta(f"tokenizer.ggml.{kind}_token_id")
        return None if value is None else self.text(int(value))

    # -- tokens

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        """llama.cpp's tokens for `text`; special tokens written in it are read as such, as transformers reads them."""
        data = text.encode("utf-8")
        room = len(data) + 8
        buffer = (self.llama.llama_token * room)()
        count = self.llama.llama_tokenize(self.vocab, data, len(data), buffer, room, add_special, True)
        if count < 0:
            buffer = (self.llama.llama_token * -count)()
            count = self.llama.llama_tokenize(self.vocab, data, len(data), buffer, -count, add_special, True)
        return list(buffer[:count])

    def piece(self, token: int, special: bool) -> bytes:
        """The bytes a token adds to a text; with `special` off a control token adds none."""
        key = (token, special)
        if key not in self._pieces:
            buffer = ctypes.create_string_buffer(64)
            length = self.llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
            if length < 0:
                buffer = ctypes.create_string_buffer(-length)
                length = self.llama.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
            self._pieces[key] = buffer.raw[:length]
        return self._pieces[key]

    def text(self, token: int) -> str:
        """The token as its vocabulary writes it (`Ġthe`), as /tokens shows every family's pieces."""
        return self.llama.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def shown(self, token: int) -> str:
        """The token as text (" the"); bytes that are no whole character escaped (" Gr\\xc3")."""
        return self.piece(token, True).decode("utf-8", "backslashreplace")

    # -- the context

    def prepare(self, n_ctx: int, threads: int) -> None:
        """A context of `n_ctx` tokens computing with `threads`; a new size is a new context, and an empty cache."""
        llama = self.llama
        if n_ctx != self.n_ctx:
            _free_context(llama, self._owned)
            params = llama.llama_context_default_params()
            params.n_ctx = n_ctx
            params.n_batch = params.n_ubatch = min(n_ctx, 512)
            params.n_threads = params.n_threads_batch = threads
            params.no_perf = True
            start = _logged[0]
            context = llama.llama_init_from_model(self.model, params)
            if not context:
                reason = _last_error(_log_since(start)) or "llama.cpp refused it"
                raise ModelError(f"{NAME} cannot make a context of {n_ctx} tokens: {reason}; lower n_ctx")
            self._owned["context"] = self.context = context
            self._owned["batch"] = self.batch = llama.llama_batch_init(params.n_batch, 0, 1)
            self.n_ctx, self.n_batch, self.threads, self.tokens = n_ctx, params.n_batch, threads, []
        if threads != self.threads:
            llama.llama_set_n_threads(self.context, threads, threads)
            self.threads = threads

    def keep(self, count: int) -> None:
        """Forget the cache after its first `count` tokens."""
        if count < len(self.tokens):
            self.llama.llama_memory_seq_rm(self.llama.llama_get_memory(self.context), 0, count, -1)
            del self.tokens[count:]

    def decode(self, tokens: list[int], all_logits: bool = False, cancelled: Any = None) -> bool:
        """Add `tokens` to the cache, with logits for the last (or every) one; False when `cancelled` stopped it.

        `cancelled()` is asked between the operations of a long prompt's pass,
        so that Ctrl-C does not wait for thousands of tokens.
        """
        llama, batch = self.llama, self.batch
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            position = len(self.tokens)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = position + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or start + i == len(tokens) - 1
            batch.n_tokens = len(chunk)
            status = self._decode_abortable(batch, cancelled) if cancelled else llama.llama_decode(self.context, batch)
            if status == 2:  # aborted: what the pass left in the cache is not to be trusted
                self.keep(position)
                return False
            if status != 0:
                self.keep(position)
                raise ModelError(
                    f"llama.cpp failed to decode ({status}): {_last_error(_log_since(_logged[0] - 20)) or 'no reason'}"
                )
            self.tokens.extend(chunk)
        return True

    def _decode_abortable(self, batch: Any, cancelled: Any) -> int:
        interrupted = []

        def abort(data: Any) -> bool:
            try:
                return bool(cancelled())
            except KeyboardInterrupt:  # a second Ctrl-C, raised by the signal handler: cannot cross C
                interrupted.append(True)
                return True

        callback = self.llama.ggml_abort_callback(abort)
        self.llama.llama_set_abort_callback(self.context, callback, None)
        try:
            status = self.llama.llama_decode(self.context, batch)
        finally:
            # Each check is a call into Python: only a long pass is worth it, not every generated token.
            self.llama.llama_set_abort_callback(self.context, self.llama.ggml_abort_callback(0), None)
        if interrupted:
            self.keep(len(self.tokens))
            raise KeyboardInterrupt
        return status

    def last_logits(self) -> Any:
        """The logits after the last decoded token, as a numpy array (a copy: the next decode reuses the buffer)."""
        import numpy

        pointer = self.llama.llama_get_logits_ith(self.context, -1)
        return numpy.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def logprobs_of_next(self, ids: list[int]) -> list[float]:
        """For each token of `ids` after the first, its log-probability given those before it, in one pass."""
        import numpy

        self.keep(0)
        found: list[float] = []
        for start in range(0, len(ids), SCORE_CHUNK):
            chunk = ids[start : start + SCORE_CHUNK]
            self.decode(chunk, all_logits=True)
            rows = numpy.ctypeslib.as_array(self.llama.llama_get_logits(self.context), shape=(len(chunk), self.n_vocab))
            following = ids[start + 1 : start + 1 + len(chunk)]
            rows = rows[: len(following)].astype(numpy.float64)
            top = rows.max(axis=1)
            totals = top + numpy.log(numpy.exp(rows - top[:, None]).sum(axis=1))
            found += (rows[numpy.arange(len(following)), following] - totals).tolist()
        return found


def _free_context(llama: Any, owned: dict[str, Any]) -> None:
    if owned["batch"] is not None:
        llama.llama_batch_free(owned["batch"])
    if owned["context"]:
        llama.llama_free(owned["context"])
    owned["batch"] = owned["context"] = None


def _free(llama: Any, owned: dict[str, Any]) -> None:
    _free_context(llama, owned)
    llama.llama_model_free(owned["model"])


def _file_type(llama: Any, model: Any, number: str | None) -> str:
    """The file's quantization as its name is written (Q8_0, Q4_K_M, F16)."""
    try:
        import gguf

        if number is not None:
            return gguf.LlamaFileType(int(number)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (ImportError, ValueError):  # no gguf package, or a file type newer than it
        pass
    buffer = ctypes.create_string_buffer(128)
    llama.llama_model_desc(model, buffer, len(buffer))  # "llama 7B Q4_K - Medium": the file type comes last
    return buffer.value.decode("utf-8", "replace").split(" ", 2)[-1]


def _load_failure(llama: Any, checkpoint: str, log: str) -> str:
    if "unknown model architecture" in log:
        architecture = log.split("unknown model architecture:", 1)[1].split("\n", 1)[0].strip(" '\"")
        return (
            f"{checkpoint!r} is a {architecture} model, which this llama.cpp (llama-cpp-python "
            f"{llama.__version__}) cannot run; a newer one may: pip install -U llama-cpp-python"
        )
    return f"llama.cpp cannot load {checkpoint!r}: {_last_error(log) or 'no reason given'}"


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "error" in line.lower() or "failed" in line.lower()]
    return " ".join(lines[-1].split())[:300] if lines else ""


# -- a chat template, rendered as transformers renders it ---------------------------


class _ChatTemplate:
    """The file's chat template under the names that repl.api's chat-template helpers call on a tokenizer.

    Rendering is transformers' own (`render_jinja_template`, which
    `apply_chat_template` calls) with the file's special tokens as the
    template's `bos_token`, `eos_token`, ...: one renderer for the template of
    a checkpoint and of a GGUF file. Tokens are llama.cpp's.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.chat_template = engine.template
        names = {kind: engine.special_token_text(kind) for kind in ("bos", "eos", "unk", "padding")}
        self.special_tokens = {
            ("pad_token" if kind == "padding" else f"{kind}_token"): text for kind, text in names.items() if text
        }
        self.all_special_ids = sorted(engine.control)
        self.added_tokens_decoder: dict[int, Any] = {}

    def apply_chat_template(
        self, conversation: list[dict[str, Any]], add_generation_prompt: bool = False, tokenize: bool = False, **kw
    ) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            conversations=[conversation],
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
            **{**self.special_tokens, **kw},
        )
        return rendered[0]

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self.engine.tokenize(text, add_special_tokens)}


# -- a line's tokens --------------------------------------------------------------


def _context_size(model: LoadedModel, settings: dict[str, Any], notices: list[str]) -> int:
    engine = model.handle
    wanted = settings.get("n_ctx") or engine.default_context
    if engine.trained_context and wanted > engine.trained_context:
        notices.append(f"n_ctx {wanted} is more than the file's {engine.trained_context} positions: using those")
        wanted = engine.trained_context
    engine.prepare(wanted, settings["threads"])
    _describe_context(model, wanted)
    return wanted


def _room(n_ctx: int, max_new_tokens: int) -> int:
    """Positions left for the prompt once the reply has its own."""
    if n_ctx - max_new_tokens < 1:
        raise ModelError(
            f"max_new_tokens {max_new_tokens} leaves no room for input in {NAME}'s context of {n_ctx} tokens; "
            "lower it with /set max_new_tokens, or raise n_ctx"
        )
    return n_ctx - max_new_tokens


@hookimpl
def tokenize(model, text, settings, history):
    notices: list[str] = []
    n_ctx = _context_size(model, settings, notices)
    room = _room(n_ctx, settings["max_new_tokens"])
    if model.tokenizer is None:
        return _continuation(model, text, settings, room, notices)
    return _conversation(model, text, settings, history, n_ctx, room, notices)


def _continuation(model: LoadedModel, text: str, settings: dict[str, Any], room: int, notices: list[str]) -> Encoding:
    """The line as the file's tokenizer reads it, with the BOS where the file adds one; a long line cut at the end."""
    engine = model.handle
    ids = engine.tokenize(text, add_special=True)
    bare = engine.tokenize(text, add_special=False)
    if not bare:
        raise ModelError(f"the line has no text {NAME}'s tokenizer can read")
    lead = next((i for i in range(len(ids) - len(bare) + 1) if ids[i : i + len(bare)] == bare), 0)
    tail = len(ids) - lead - len(bare)
    room = max(room - lead - tail, 1)
    if len(bare) > room:
        notices.append(f"input truncated to {room} tokens: {len(bare) - room} dropped from the end")
        bare = bare[:room]
    if settings.get("system"):
        notices.append(f"{model.checkpoint} has no chat template, so the system prompt is not used")
    ids = ids[:lead] + bare + ids[len(ids) - tail :]
    added = [True] * lead + [False] * len(bare) + [True] * tail
    tokens = [Token(i, engine.text(i), i in engine.control, was_added) for i, was_added in zip(ids, added)]
    return Encoding(text, tokens, notices, context={"chat": False})


def _conversation(
    model: LoadedModel,
    text: str,
    settings: dict[str, Any],
    history: list[tuple[str, str]],
    n_ctx: int,
    room: int,
    notices: list[str],
) -> Encoding:
    """The conversation through the file's chat template, as `chat` renders one: oldest turns dropped to fit."""
    from repl.api import added_by_template, message_spans, render_prompt, template_arguments

    engine, template = model.handle, model.tokenizer
    variables = template_arguments(settings, model)
    kept = list(history)
    while True:
        said = messages(settings.get("system"), kept, text)
        prompt = render_prompt(template, said, model.checkpoint, variables)
        ids = engine.tokenize(prompt, add_special=False)
        if len(ids) <= room or not kept:
            break
        kept = kept[1:]  # the oldest turn goes first; the system prompt and the new line stay
    if len(ids) > room:
        raise ModelError(
            f"the prompt takes {len(ids)} tokens with no earlier turn, more than the {room} {NAME} has room for "
            f"(context {n_ctx} less max_new_tokens {settings['max_new_tokens']}); "
            "shorten the line or the system prompt, lower max_new_tokens, or raise n_ctx"
        )
    if len(kept) < len(history):
        dropped = len(history) - len(kept)
        notices.append(
            f"context trimmed: {dropped} oldest {_turns(dropped)} dropped to fit a context of {n_ctx} tokens"
        )
    spans = message_spans(template, said, prompt, model.checkpoint, variables)
    added = added_by_template(_offsets(engine, ids, prompt), spans)
    tokens = [Token(i, engine.text(i), i in engine.control, was_added) for i, was_added in zip(ids, added)]
    return Encoding(text, tokens, notices, context={"chat": True, "prompt": prompt})


def _offsets(engine: Engine, ids: list[int], prompt: str) -> list[tuple[int, int]]:
    """Each token's characters in `prompt`, from the bytes of its piece; tokens splitting a character share it."""
    ends = list(itertools.accumulate(len(engine.piece(i, True)) for i in ids))
    char_starts = list(itertools.accumulate((len(c.encode("utf-8")) for c in prompt), initial=0))
    offsets = []
    for start, end in zip([0, *ends], ends):
        first = bisect_right(char_starts, start) - 1
        offsets.append((first, bisect_right(char_starts, end - 1) if end > start else first))
    return offsets


# -- generating -------------------------------------------------------------------


@dataclasses.dataclass
class _Output:
    new_ids: list[int]
    logprobs: list[TokenProbs] | None
    stop_ids: set[int]


@hookimpl
def run(model, encoding, settings, control):
    engine = model.handle
    prompt = encoding.input_ids
    stop_ids = engine.eog | _end_of_turn(model)
    closing = _closing(model, settings["max_thinking_tokens"])
    # The cache keeps what the prompt shares with the last one; one token is decoded again for fresh logits.
    shared = next(
        (i for i, (a, b) in enumerate(zip(engine.tokens, prompt)) if a != b), min(len(engine.tokens), len(prompt))
    )
    engine.keep(min(shared, len(prompt) - 1))
    output = _Output([], [] if settings.get("probs") else None, stop_ids)
    if not engine.decode(prompt[len(engine.tokens) :], cancelled=lambda: control.cancelled):
        control.step()
        return output
    sampler = _sampler(engine, settings)
    try:
        if settings["repetition_penalty"] != 1.0:
            for token in prompt:  # as transformers, the penalty counts the prompt's tokens too
                engine.llama.llama_sampler_accept(sampler, token)
        reader = _reader(model, encoding) if encoding.context["chat"] else None
        _generate(engine, sampler, output, settings, control, _Stream(engine, control, reader, model.memo), closing)
    finally:
        engine.llama.llama_sampler_free(sampler)
    return output


def _closing(model: LoadedModel, budget: int) -> list[int]:
    """The tokens fed to end the thinking once `max_thinking_tokens` have been generated (none without a budget)."""
    if not budget:
        return []
    form = model.memo.get("format")
    if form is None:
        raise ModelError(
            f"max_thinking_tokens: {model.checkpoint!r} has no chat template, so it has no thinking to close; "
            "set max_thinking_tokens 0"
        )
    if form.budget_close is None:
        raise ModelError(
            f"max_thinking_tokens: {model.checkpoint!r} closes its thinking with a pattern, not fixed markup, "
            "so modelrepl cannot close it; set max_thinking_tokens 0"
        )
    return model.handle.tokenize(form.budget_close, False)


def _reader(model: LoadedModel, encoding: Encoding) -> Any:
    from repl.api import ReplyReader

    return ReplyReader.for_text(model.memo["format"], encoding.context["prompt"])


def _generate(
    engine: Engine,
    sampler: Any,
    output: _Output,
    settings: dict[str, Any],
    control: Any,
    stream: _Stream,
    closing: list[int],
) -> None:
    """Sample the reply; once the thinking has run `closing`'s budget, its closing markup is fed instead."""
    llama = engine.llama
    seen = set(engine.tokens) if output.logprobs is not None else set()
    forced: list[int] = []
    while len(output.new_ids) < settings["max_new_tokens"]:
        if forced:
            token = forced.pop(0)
            llama.llama_sampler_accept(sampler, token)  # the repetition penalty counts it, as a sampled one
        else:
            token = llama.llama_sampler_sample(sampler, engine.context, -1)
        if output.logprobs is not None:
            output.logprobs.append(_measure(engine, engine.last_logits(), token, settings, seen))
            seen.add(token)
        output.new_ids.append(token)
        if token in output.stop_ids:
            break
        stream.add(token)
        reader = stream.reader
        thought = reader is not None and reader.thinking_now and reader.thinking_tokens
        if closing and thought and thought >= settings["max_thinking_tokens"]:
            forced, closing = list(closing), []
        if control.step() or len(output.new_ids) == settings["max_new_tokens"]:
            break
        engine.decode([token])
    stream.end()


def _sampler(engine: Engine, settings: dict[str, Any]) -> Any:
    """llama.cpp's sampler chain for the settings: penalty, then greedy, or top-k, top-p, temperature and a draw."""
    llama = engine.llama
    chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
    if settings["repetition_penalty"] != 1.0:
        # A window as long as the context: every token of the prompt and the reply counts, as in transformers.
        penalties: list[Any] = [engine.n_ctx, settings["repetition_penalty"], 0.0, 0.0]
        if len(llama.llama_sampler_init_penalties.argtypes) == 5:  # llama.cpp builds that still take n_vocab first
            penalties.insert(0, engine.n_vocab)
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_penalties(*penalties))
    if not settings["do_sample"]:
        llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
        return chain
    seed = settings["seed"] if settings.get("seed") is not None else llama.LLAMA_DEFAULT_SEED
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_k(settings["top_k"]))
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_p(settings["top_p"], 1))
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(settings["temperature"]))
    llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(seed))
    return chain


def _end_of_turn(model: LoadedModel) -> set[int]:
    """The token the file's template writes after an assistant's reply, found as `chat` finds it."""
    if model.tokenizer is None:
        return set()
    if "end_of_turn" not in model.memo:
        from repl.api import end_of_turn_ids

        model.memo["end_of_turn"] = end_of_turn_ids(model.tokenizer, model.checkpoint)
    return model.memo["end_of_turn"]


class _Stream:
    """Feeds the reply to its `ReplyReader` (a chat's) as whole characters, and streams what it reads.

    Without a reader (a file that continues text) the characters are the reply.
    """

    def __init__(self, engine: Engine, control: Any, reader: Any, memo: dict[str, Any]):
        self.engine = engine
        self.control = control
        self.reader = reader
        self.markup = memo.get("markup", set())
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.shown = self.shown_aside = 0

    def add(self, token: int) -> None:
        more = self.decoder.decode(self.engine.piece(token, token in self.markup))
        if self.reader is not None:
            self.reader.feed_text(more)  # every token, even one that ends inside a character, counts
        else:
            self.text += more
        self._show()

    def end(self) -> None:
        more = self.decoder.decode(b"", final=True)
        if self.reader is not None:
            if more:
                self.reader.feed_text(more)
            self.reader.finish()
        else:
            self.text += more
        self._show()

    def _show(self) -> None:
        if not self.control.streaming:
            return
        aside, reply = (self.reader.thinking, self.reader.answer) if self.reader is not None else ("", self.text)
        self.control.emit_aside(aside[self.shown_aside :])
        self.shown_aside = len(aside)
        self.control.emit(reply[self.shown :])
        self.shown = len(reply)


def _measure(engine: Engine, logits: Any, token: int, settings: dict[str, Any], seen: set[int]) -> TokenProbs:
    """The token's log-probability under the raw logits and under the distribution the sampler chain drew from.

    The chain is llama.cpp's as `_sampler` builds it: the repetition penalty on
    every token seen, then greedy decoding (which draws from the penalised
    distribution's top) or top-k, top-p and temperature.
    """
    import numpy

    raw = _log_softmax(logits)
    shaped = logits.astype(numpy.float64)
    penalty = settings["repetition_penalty"]
    if penalty != 1.0 and seen:
        at = numpy.fromiter(seen, dtype=numpy.int64)
        shaped[at] = numpy.where(shaped[at] <= 0, shaped[at] * penalty, shaped[at] / penalty)
    if settings["do_sample"]:
        if 0 < settings["top_k"] < len(shaped):
            shaped[shaped < numpy.partition(shaped, -settings["top_k"])[-settings["top_k"]]] = -numpy.inf
        if settings["top_p"] < 1.0:
            order = numpy.argsort(-shaped)
            cumulative = numpy.cumsum(numpy.exp(_log_softmax(shaped[order])))
            shaped[order[numpy.searchsorted(cumulative, settings["top_p"]) + 1 :]] = -numpy.inf
        shaped = shaped / settings["temperature"]
    processed = _log_softmax(shaped)
    k = settings["top_logprobs"]
    return TokenProbs(
        id=token,
        piece=engine.shown(token),
        logprob=float(raw[token]),
        processed_logprob=float(processed[token]),
        top=_top(engine, raw, k),
        processed_top=_top(engine, processed, k),
    )


def _log_softmax(values: Any) -> Any:
    import numpy

    values = values.astype(numpy.float64)
    top = values.max()
    return values - (top + numpy.log(numpy.exp(values - top).sum()))


def _top(engine: Engine, logprobs: Any, k: int) -> list[Alternative]:
    """The k most likely tokens, most likely first; impossible ones left out."""
    import numpy

    best = numpy.argpartition(-logprobs, min(k, len(logprobs) - 1))[:k]
    best = best[numpy.argsort(-logprobs[best])]
    return [Alternative(int(i), engine.shown(int(i)), float(logprobs[i])) for i in best if logprobs[i] != -numpy.inf]


@hookimpl
def decode(model, encoding, output, settings):
    engine = model.handle
    new_ids = output.new_ids
    ended = bool(new_ids) and new_ids[-1] in output.stop_ids
    shown = new_ids[:-1] if ended else new_ids
    # The same reading as the stream's.
    stream = _Stream(engine, _Quiet(), _reader(model, encoding) if encoding.context["chat"] else None, model.memo)
    for token in shown:
        stream.add(token)
    stream.end()
    reader = stream.reader
    return Reply(
        text=reader.answer if reader is not None else stream.text,
        new_ids=list(new_ids),
        raw_text=b"".join(engine.piece(i, True) for i in new_ids).decode("utf-8", "replace"),
        stop_reason="eos" if ended or len(new_ids) < settings["max_new_tokens"] else "max_new_tokens",
        data={"reasoning": reader.thinking} if reader is not None and reader.thinking else {},
        notices=reader.notes if reader is not None else [],
        logprobs=output.logprobs,
        reasoning_tokens=reader.reasoning_tokens if reader is not None else 0,
    )


class _Quiet:
    """A control for reading a finished reply again: nothing streams."""

    streaming = False


@hookimpl
def score(model, text, settings):
    """Each token of the text given the ones before it (a BOS the file adds is context), without the template."""
    engine = model.handle
    n_ctx = _context_size(model, settings, [])
    ids = engine.tokenize(text, add_special=True)
    bare = engine.tokenize(text, add_special=False)
    if not bare:
        raise ModelError(f"nothing to score: {NAME}'s tokenizer reads no text in it")
    if len(ids) > n_ctx:
        raise ModelError(f"the text has {len(ids)} tokens, more than {NAME}'s context of {n_ctx}; shorten it")
    lead = next((i for i in range(len(ids) - len(bare) + 1) if ids[i : i + len(bare)] == bare), 0)
    logprobs = engine.logprobs_of_next(ids)
    tokens = [
        ScoredToken(ids[i], engine.shown(ids[i]), logprobs[i - 1] if i > 0 else None) for i in range(lead, len(ids))
    ]
    return Score(tokens, method="causal", bos_prepended=lead > 0)


def _turns(count: int) -> str:
    return "turn" if count == 1 else "turns"
