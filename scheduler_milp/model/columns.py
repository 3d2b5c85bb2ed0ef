"""The one column-recognition rule for request files (trace CSVs, JSONL traces, CSV instances).

A file names its prompt and output lengths in many ways (``prompt``/``output``,
``ContextTokens``/``GeneratedTokens`` of the Azure traces, ``input_length``/``output_length`` of
Mooncake, ...): :func:`recognise_columns` picks them, and its error names the columns found and
the names accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from .instance import InstanceError

#: the column names recognised for the prompt and the output lengths (first match wins, any case)
PROMPT_COLUMNS = (
    "prompt",
    "ContextTokens",
    "num_prefill_tokens",
    "prompt_len",
    "prompt_length",
    "prompt_tokens",
    "input_length",
    "input_tokens",
    "input_len",
)
OUTPUT_COLUMNS = (
    "output",
    "GeneratedTokens",
    "num_decode_tokens",
    "output_len",
    "output_length",
    "output_tokens",
    "completion_tokens",
    "generated_tokens",
)


def find_column(
    columns: Sequence[str], given: str | None, accepted: Sequence[str], what: str, source: str
) -> str:
    """The column ``given``, else the first of ``accepted`` present (any case); InstanceError if none."""
    where = f"{source}: " if source else ""
    if given is not None:
        if given not in columns:
            raise InstanceError(
                f"{where}no column {given!r} for the {what} (columns: {', '.join(columns)})"
            )
        return given
    lower = {c.lower(): c for c in columns}
    for name in accepted:
        if name.lower() in lower:
            return lower[name.lower()]
    raise InstanceError(
        f"{where}cannot tell which column holds the {what} (columns: {', '.join(columns) or 'none'}; "
        f"accepted: {', '.join(accepted)}); name it explicitly"
    )


def recognise_columns(
    columns: Sequence[str], prompt: str | None = None, output: str | None = None, source: str = ""
) -> dict[str, str]:
    """The columns holding the prompt and output lengths: ``{"prompt": name, "output": name}``.

    A column named in ``prompt``/``output`` must exist; otherwise the first of
    :data:`PROMPT_COLUMNS` / :data:`OUTPUT_COLUMNS` present is taken, in any case
    (``ContextTokens``/``GeneratedTokens`` of the Azure traces, ``input_length``/``output_length``
    of Mooncake...).  Raises :class:`InstanceError` naming the columns found and the accepted
    names (prefixed by ``source``, e.g. the file, when given).
    """
    cols = [str(c) for c in columns]
    return {
        "prompt": find_column(cols, prompt, PROMPT_COLUMNS, "prompt length", source),
        "output": find_column(cols, output, OUTPUT_COLUMNS, "output length", source),
    }
