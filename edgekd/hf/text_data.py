"""Text data for HF distillation: .txt (one example per line), .jsonl and .csv (a named column), or a
corpus installed from a Debian package (read from its files, never downloaded):
- `fortunes`     (package fortunes): English quotations, entries separated by `%` lines,
- `wordnet`      (package wordnet-base): WordNet 3.0 definitions and usage examples, one text each,
- `python-docs`  (package python3-doc): the paragraphs of the Python documentation.
Several sources join with `+` (`fortunes+wordnet`)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgeKDError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
PYTHON_DOCS_GLOB = "/usr/share/doc/python3*/html"
TEXT_SUFFIXES = (".txt", ".jsonl", ".csv")


@dataclass
class TextSplit:
    texts: list[str]
    labels: list[int] | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TextData:
    name: str
    train: TextSplit
    val: TextSplit
    test: TextSplit
    label_names: list[str] | None = None

    @property
    def num_labels(self) -> int | None:
        return len(self.label_names) if self.label_names else None

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.train), "val": len(self.val), "test": len(self.test),
                "labels": self.label_names}


def _clean(s: str) -> str:
    return " ".join(str(s).split())


def read_fortunes(directory: Path = FORTUNES_DIR) -> list[str]:
    if not directory.is_dir():
        raise EdgeKDError(f"{directory} not found: install the Debian package `fortunes` (apt-get install fortunes)")
    texts: list[str] = []
    for f in sorted(directory.iterdir()):
        # the plain files only: .dat are indexes, .u8 duplicates, symlinks point at the same text
        if f.suffix or f.is_symlink() or not f.is_file():
            continue
        raw = f.read_text(encoding="utf-8", errors="replace")
        entries = [_clean(e) for e in raw.replace("\r", "").split("\n%\n")]
        texts += [e for e in entries if e and e != "%"]
    if not texts:
        raise EdgeKDError(f"no fortunes found in {directory}")
    return texts


def read_wordnet(directory: Path = WORDNET_DIR) -> list[str]:
    """Each synset's gloss split into its definition and its quoted usage examples."""
    files = [directory / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(f.is_file() for f in files):
        raise EdgeKDError(f"WordNet data not found in {directory}: install the Debian package `wordnet-base`")
    texts: list[str] = []
    for f in files:
        for line in f.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:  # licence header lines start with two spaces
                continue
            for part in line.split("|", 1)[1].split(";"):
                part = _clean(part).strip('"').strip()
                if len(part.split()) >= 3:
                    texts.append(part)
    return texts


def read_python_docs(pattern: str = PYTHON_DOCS_GLOB) -> list[str]:
    """Paragraphs (<p> elements) of the Python documentation's HTML pages."""
    import glob
    from html.parser import HTMLParser

    roots = sorted(glob.glob(pattern))
    if not roots:
        raise EdgeKDError("Python documentation not found: install the Debian package `python3-doc`")

    class Paragraphs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.buf, self.out = 0, [], []

        def handle_starttag(self, tag, attrs):
            if tag == "p":
                self.depth += 1

        def handle_endtag(self, tag):
            if tag == "p" and self.depth:
                self.depth -= 1
                text = _clean("".join(self.buf))
                self.buf = []
                if len(text.split()) >= 5:
                    self.out.append(text)

        def handle_data(self, data):
            if self.depth:
                self.buf.append(data)

    parser = Paragraphs()
    for page in sorted(Path(roots[-1]).rglob("*.html")):
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser.out


CORPORA = {"fortunes": read_fortunes, "wordnet": read_wordnet, "python-docs": read_python_docs}


def _is_corpus(spec: str | Path) -> bool:
    """`fortunes`, `wordnet+python-docs` ...: installed corpora by name, not a file path."""
    return all(n in CORPORA for n in str(spec).split("+"))


def _jsonl(path: Path, column: str, label_column: str | None) -> tuple[list[str], list | None]:
    texts, labels = [], [] if label_column else None
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise EdgeKDError(f"{path}:{n}: not a JSON object per line") from None
            if not isinstance(row, dict) or column not in row:
                raise EdgeKDError(f"{path}:{n}: no field {column!r} (choose it with --text-column)")
            texts.append(_clean(row[column]))
            if label_column:
                if label_column not in row:
                    raise EdgeKDError(f"{path}:{n}: no label field {label_column!r}")
                labels.append(row[label_column])
    return texts, labels


def _csv(path: Path, column: str, label_column: str | None) -> tuple[list[str], list | None]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for c in [column] + ([label_column] if label_column else []):
            if c not in fields:
                raise EdgeKDError(f"{path}: no column {c!r} (columns: {', '.join(fields) or 'none'})")
        rows = list(reader)
    return [_clean(r[column]) for r in rows], ([r[label_column] for r in rows] if label_column else None)


def read_texts(spec: str | Path, *, column: str = "text", label_column: str | None = None) -> tuple[list[str], list | None]:
    """All examples of one source, in file order (empty ones dropped), and their raw labels if asked."""
    if _is_corpus(spec):
        if label_column:
            raise EdgeKDError(f"the {spec} corpus has no labels")
        return [t for n in str(spec).split("+") for t in CORPORA[n]()], None
    path = Path(spec).expanduser()
    if not path.is_file():
        raise EdgeKDError(f"text data {path} does not exist (want a .txt, .jsonl or .csv file, or one of "
                          f"{', '.join(CORPORA)})")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            if label_column:
                raise EdgeKDError(f"{path.name}: a .txt file has no label column; use .jsonl or .csv for labels")
            texts = [_clean(line) for line in path.read_text(encoding="utf-8").splitlines()]
            labels = None
        elif suffix == ".jsonl":
            texts, labels = _jsonl(path, column, label_column)
        elif suffix == ".csv":
            texts, labels = _csv(path, column, label_column)
        else:
            raise EdgeKDError(f"{path.name}: unsupported text data format (want {', '.join(TEXT_SUFFIXES)})")
    except UnicodeDecodeError:
        raise EdgeKDError(f"{path}: not UTF-8 text") from None
    keep = [i for i, t in enumerate(texts) if t]
    texts = [texts[i] for i in keep]
    labels = [labels[i] for i in keep] if labels is not None else None
    if not texts:
        raise EdgeKDError(f"{path}: no text examples found")
    return texts, labels


def load_texts(spec: str | Path, *, column: str = "text", label_column: str | None = None, seed: int = 0,
               val_fraction: float = 0.1, test_fraction: float = 0.1, limit: int | None = None,
               label_names: list[str] | None = None) -> TextData:
    """Read, shuffle (seeded) and split into train / val / test. Labels become class indices
    (sorted label values, or the order of `label_names`, e.g. the teacher's id2label)."""
    import numpy as np

    texts, raw_labels = read_texts(spec, column=column, label_column=label_column)
    if len(texts) < 10:
        raise EdgeKDError(f"{spec}: {len(texts)} examples is too few to train and hold out (want >= 10)")
    order = np.random.default_rng(seed).permutation(len(texts))
    if limit:
        order = order[:limit]
    labels = names = None
    if raw_labels is not None:
        raw = [str(v) for v in raw_labels]
        names = list(label_names) if label_names else sorted(set(raw))
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise EdgeKDError(f"{spec}: labels {unknown[:5]} are not among the model's labels {names[:10]}")
        labels = [index[v] for v in raw]
    n = len(order)
    n_test = max(1, int(n * test_fraction))
    n_val = max(1, int(n * val_fraction))

    def take(idx) -> TextSplit:
        return TextSplit([texts[i] for i in idx], [labels[i] for i in idx] if labels is not None else None)

    name = str(spec) if _is_corpus(spec) else Path(spec).name
    return TextData(name=name, test=take(order[:n_test]), val=take(order[n_test:n_test + n_val]),
                    train=take(order[n_test + n_val:]), label_names=names)
