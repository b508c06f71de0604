"""Shared pieces of the benchmarks: the machine description and docs/BENCHMARKS.md sections."""

import hashlib
import os
import re
import time

import numpy as np

from zoo import files
from zoo.evaluation.report import machine_description  # noqa: F401 (re-exported for the benchmarks)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_DOC = os.path.join(REPO_ROOT, "docs", "BENCHMARKS.md")


def bf16_units():
    """The bfloat16 instruction sets this CPU lists in /proc/cpuinfo (``avx512_bf16``, ``amx_bf16``, ``amx_tile``)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return [name for name in ("avx512_bf16", "amx_bf16", "amx_tile") if name in flags]


def write_section(path, heading, section):
    """Replaces the ``heading`` section of the markdown file ``path`` (or appends it), keeping the rest."""
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if not text.strip():
        text = "# Benchmarks\n\n"
    pattern = re.compile(r"^" + re.escape(heading) + r"[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    with files.staged_file(path, overwrite=True) as staged, open(staged, "w") as f:  # whole, then renamed
        f.write(text.rstrip("\n") + "\n")


def read_json(path, benchmark):
    """The record in ``path`` if it is a results file of ``benchmark`` (``write_json``'s marker), else None.

    A file that cannot be read or is not JSON raises (``OSError`` / ``ValueError``).
    """
    import json

    with open(path) as f:
        record = json.load(f)
    return record if isinstance(record, dict) and record.get("benchmark") == benchmark else None


def _written_by(benchmark):
    def recognize(existing):
        try:
            return read_json(existing, benchmark) is not None
        except (OSError, ValueError):
            return False

    return recognize


def check_json_target(path, benchmark):
    """Raises ``FileExistsError`` now if ``write_json(path, ..., benchmark)`` would refuse ``path`` later.

    Call it before a long run, so that a file the benchmark did not write stops
    the run at its start instead of losing its results at the end.
    """
    if os.path.isdir(path):
        raise FileExistsError(f"{path} is a directory; give the path of the file to write.")
    if os.path.exists(path) and not _written_by(benchmark)(path):
        raise FileExistsError(f"{path} exists and is not a results file of {benchmark} (no \"benchmark\": "
                              f"\"{benchmark}\" in it); this run would not replace it. Move it away or choose "
                              "another path.")


def write_json(path, payload, benchmark):
    """Writes a benchmark's raw numbers to ``path`` through a staging file.

    The file carries ``"benchmark": benchmark``; an existing file is replaced only
    when it carries the same marker (a file this benchmark wrote), never otherwise
    (``check_json_target`` says so before a run).
    """
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.staged_file(path, overwrite=True, recognize=_written_by(benchmark)) as staged, open(staged, "w") as f:
        json.dump({"benchmark": benchmark, **payload}, f, indent=1)


def add_json_argument(parser, benchmark):
    """``--json``: where ``benchmark`` writes its raw numbers, by default
    benchmarks/results/<benchmark>/<benchmark>.json (committed, so its section can be checked); '' for none."""
    parser.add_argument("--json", default=os.path.join(REPO_ROOT, "benchmarks", "results", benchmark,
                                                       f"{benchmark}.json"),
                        help="where the raw numbers of the section go (committed, so it can be checked); '' for none")


class FeatureCache:
    """Inception features of named image sets, computed once and kept as ``.npy`` files (staging + rename).

    A file is named by ``key`` and a digest of the images themselves and of
    ``extractor`` (what computes the features, e.g. the Inception's dtype
    policy), so retrained models, other sample counts or another precision
    never reuse stale features: the images are always made (cheap next to
    Inception) and only their features are cached. ``reused`` and ``computed``
    list the keys read back and computed by this cache object, so a result can
    say how much of its wall time a cold run would have spent more.
    """

    def __init__(self, directory, inception, extractor, batch_size=50):
        self.directory, self.inception, self.extractor, self.batch_size = directory, inception, extractor, batch_size
        self.reused, self.computed = [], []
        self.reused_images = {}  # key -> how many images a read-back set holds (what a cold run would pass through)
        os.makedirs(directory, exist_ok=True)

    def digest(self, images):
        images = np.ascontiguousarray(images)
        h = hashlib.sha256(f"{self.extractor}|{images.dtype}|{images.shape}|".encode())
        h.update(images.tobytes())
        return h.hexdigest()[:16]

    def __call__(self, key, make_images):
        from zoo.evaluation import fid_inception

        images = np.asarray(make_images())
        path = os.path.join(self.directory, f"{key}_{self.digest(images)}.npy")
        if os.path.exists(path):
            self.reused.append(key)
            features = np.load(path)
            self.reused_images[key] = len(features)
            return features
        start = time.time()
        features = fid_inception.inception_features(self.inception, images, batch_size=self.batch_size)
        with files.staged_file(path) as staged:
            np.save(staged, features)
        self.computed.append(key)
        print(f"  features {key}: {len(features)} images in {time.time() - start:.0f} s", flush=True)
        return features
