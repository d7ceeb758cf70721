"""Sizes, counts, durations and rates as people read them: 1.2 GiB, 124.4M, 0.412s, 31.5."""


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def counted(count: int, noun: str) -> str:
    """`1 turn`, `2 turns`: a count with its noun, plural unless one."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def human_count(count: int) -> str:
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= divisor:
            return f"{count / divisor:.1f}{suffix}"
    return str(count)


def count(value: int | None) -> str:
    """A token count, or "?" where it is not known (a server that sent none)."""
    return "?" if value is None else str(value)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
