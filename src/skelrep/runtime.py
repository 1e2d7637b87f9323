"""What every stage entry point shares: logging, seeding, device choice, a parser."""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import textwrap
from typing import NoReturn

import numpy as np

from .errors import ParamsError

# torch is imported inside the functions that need it: the data stages (and their worker
# processes) never load it, which saves ~3 s and ~200 MB per process.


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


_RST_ROLE = re.compile(r":[a-z]+:`([^`]+)`")  # :func:`x`, :mod:`x` ...
_RST_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(doc: str) -> str:
    """A docstring as terminal text: RST roles and literals (``:func:`x```, ````x````) as plain
    ``x``, the common indentation removed, surrounding blank lines dropped."""
    text = _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", doc or ""))
    return textwrap.dedent(text).strip("\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` of the stages and CLI tools: the description re-filled to the terminal width
    paragraph by paragraph (a paragraph of ``- `` items keeps one item per line), RST markup
    removed (:func:`plain_text`); an option's default shown only when it has one (not for
    required options, flags, ``None`` or an empty list) and its help does not already name it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for paragraph in re.split(r"\n\s*\n", plain_text(text)):
            items = re.split(r"\n(?=\s*- )", paragraph)  # one block per list item
            for item in items:
                lead = re.match(r"\s*(- )?", item).group(0)
                body = " ".join(line.strip() for line in item.splitlines())
                body = body[len(lead.strip()):].strip() if lead.strip() else body
                blocks.append(textwrap.fill(body, width, initial_indent=indent + lead,
                                            subsequent_indent=indent + " " * len(lead)))
            blocks.append("")
        return "\n".join(blocks).rstrip("\n")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default is argparse.SUPPRESS or default == []
        if not action.option_strings or action.required or unset or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def stage_parser(description: str) -> argparse.ArgumentParser:
    """The parser every stage entry point starts from: its docstring as the description and the
    ``--params`` option."""
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    return parser


def seed_everything(seed: int, deterministic_cuda: bool = False):
    """Seed python, numpy and torch; return a seeded CPU generator for data order.

    CPU kernels are deterministic for a fixed thread count without further switches, and
    ``torch.use_deterministic_algorithms`` makes CPU training ~15x slower (measured), so it is
    only turned on for CUDA runs that ask for it.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic_cuda and torch.cuda.is_available():
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError("device", f"{device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def run_stage(main) -> None:
    """Run a stage's ``main``; a deliberate skelrep error prints one clear line, no traceback. A
    stage whose ``main`` returned ends its process at once (:func:`exit_now`)."""
    import sys

    from .errors import SkelrepError

    try:
        main()
    except SkelrepError as exc:
        logging.getLogger("skelrep").error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    exit_now(0)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` without the interpreter's teardown: after a torch stage it
    frees every module and object one by one, ~1 s (0.7 s for MLflow's writer process), which
    DVC waits for before the next stage. Only once the work is done: every output is written
    and closed by then (atomically renamed), the writer process has recorded the run, pools and
    threads are stopped; the log handlers and standard streams are flushed here. Under a
    profiler or a tracer (``python -m cProfile``, coverage), which write their data at exit,
    the process exits normally."""
    import sys

    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
