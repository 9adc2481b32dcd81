"""A deterministic index writer for the crash and reader tests.

``python _index_writer.py INDEX_DIR UNTIL`` opens the index for writing, reads its generation
``g`` (the number of operations already applied: each operation is exactly one commit), and
applies operations ``g+1 .. UNTIL``, printing ``committed N`` after each commit returns. The test
imports :func:`replay` to know the exact state after any number of operations.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from dataclasses import dataclass

import numpy as np


def _skip_package_init() -> None:
    """Let ``import sentsim.index`` skip ``sentsim/__init__.py``, which imports torch.

    That import costs seconds per writer start, and the crash test starts the writer 22 times;
    the index itself needs only numpy, faiss and sqlite3. Under pytest the package is loaded.
    """
    spec = importlib.util.find_spec("sentsim") if "sentsim" not in sys.modules else None
    if spec is not None and spec.submodule_search_locations:
        package = types.ModuleType("sentsim")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["sentsim"] = package


_skip_package_init()

import sentsim.index  # noqa: E402
from sentsim.index import Document, EncoderIdentity, Index  # noqa: E402

DIM = 16
ENCODER = EncoderIdentity("crash-test", "0123456789abcdef", DIM)


@dataclass(frozen=True)
class Doc:
    """The expected content of one stored document."""

    title: str
    text: str
    passages: tuple[str, ...]
    vectors: np.ndarray


@dataclass(frozen=True)
class Operation:
    """One commit: an add (``upsert`` or not) of ``docs``, or a delete of ``ids``."""

    kind: str  # "add", "upsert" or "delete"
    docs: dict[str, Doc]
    ids: tuple[str, ...] = ()


def _doc(op: int, slot: int, doc_id: str, rng: random.Random) -> Doc:
    count = rng.randint(1, 3)
    passages = tuple(f"{doc_id} version {op} part {o} u{op}x{slot}" for o in range(count))
    vectors = np.random.default_rng([op, slot]).normal(size=(count, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Doc(f"title {doc_id}", " ".join(passages), passages, vectors.astype(np.float32))


def operation(op: int, state: dict[str, Doc]) -> Operation:
    """Return operation number ``op`` (from 1) given the state after the ones before it."""
    rng = random.Random(op)
    ids = sorted(state)
    draw = rng.random()
    if len(ids) < 8 or draw < 0.45:
        new = [f"d{op}.{j}" for j in range(rng.randint(1, 3))]
        return Operation("add", {i: _doc(op, j, i, rng) for j, i in enumerate(new)})
    if draw < 0.75:
        chosen = rng.sample(ids, rng.randint(1, 2)) + ([f"d{op}.n"] if rng.random() < 0.3 else [])
        return Operation("upsert", {i: _doc(op, j, i, rng) for j, i in enumerate(chosen)})
    chosen = rng.sample(ids, rng.randint(1, 2)) + ([f"ghost{op}"] if rng.random() < 0.3 else [])
    return Operation("delete", {}, tuple(chosen))


def apply(state: dict[str, Doc], op: Operation) -> None:
    """Apply ``op`` to the expected state."""
    for doc_id in op.ids:
        state.pop(doc_id, None)
    state.update(op.docs)


def replay(count: int) -> dict[str, Doc]:
    """Return the expected state after the first ``count`` operations."""
    state: dict[str, Doc] = {}
    for op in range(1, count + 1):
        apply(state, operation(op, state))
    return state


def perform(index: Index, op: Operation) -> None:
    """Apply ``op`` to the index as exactly one commit."""
    if op.kind == "delete":
        index.delete(list(op.ids))
        return
    docs = [Document(i, d.text, d.title, {"n": len(d.passages)}) for i, d in op.docs.items()]
    passages = [list(d.passages) for d in op.docs.values()]
    vectors = np.concatenate([d.vectors for d in op.docs.values()])
    index.add(docs, passages, vectors, upsert=op.kind == "upsert")


def main(argv: list[str]) -> int:
    """Apply operations up to ``argv[1]`` to the index at ``argv[0]``."""
    path, until = argv[0], int(argv[1])
    sentsim.index.SAVE_MIN = 10  # save the cache often, so kills also land inside cache writes
    with Index.open(path, ENCODER, lock_timeout=5.0) as index:
        done = index.info().generation
        state = replay(done)
        print(f"ready {done}", flush=True)
        for op_number in range(done + 1, until + 1):
            op = operation(op_number, state)
            perform(index, op)
            apply(state, op)
            print(f"committed {op_number}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
