"""Fetch trace sets into a local cache, verified file by file, in the shared folder's layout.

A user without ``../shared/traces`` runs ``mirrortwin traces download <name>``; files land in
``<cache_dir>/traces/`` laid out exactly like the shared folder, so ``load_trace(..., roots=[...,
cache_dir / "traces"])`` finds them.

Sources: with ``mirror_url``, ``<mirror_url>/<path relative to the shared folder>`` (a site mirror or a
test server, serving the stored bytes); otherwise the public GitHub repositories at the commits pinned
in the PROVENANCE files (``raw.githubusercontent.com``). Public files that are plain CSV where the
shared copy is gzip are gzip-compressed on arrival. Azure's public files are R data (``.rda``) which
the standard library cannot read, so that set needs a mirror (or a manual conversion, see the error).

Integrity: every file is checked against ``manifests/<set>.tsv`` (built by ``build_manifests``) - the
git blob SHA-1 of the uncompressed content, which anyone can compare with the public repositories,
and for mirror downloads also the sha256 of the stored bytes - before it is moved into place with a
temp file, fsync and rename. A failed download or checksum leaves no partial or corrupt file behind,
and files already present and verified are not fetched again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tqdm import tqdm

from scenarios.traces.errors import TraceDownloadError
from scenarios.traces.sources import PLANETLAB_DAYS, SOURCES, TraceSource

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
_TIMEOUT_S = 60.0
_WORKERS = 8
_USER_AGENT = "mirrortwin-trace-download"


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a trace set, as recorded by ``build_manifests``.

    Attributes:
        path: Path relative to a traces root (``planetlab/20110303/<vm>``).
        size: Stored size in bytes.
        sha256: sha256 of the stored bytes.
        git_blob_sha1: Git blob SHA-1 of the uncompressed content.
        upstream_path: Path of the public file in the source repository.
        upstream_git_blob_sha1: Git blob SHA-1 of the public file.
    """

    path: str
    size: int
    sha256: str
    git_blob_sha1: str
    upstream_path: str
    upstream_git_blob_sha1: str


def available_trace_sets() -> dict[str, str]:
    """Downloadable set names -> one line: what the set holds and its public source."""
    return {name: f"{src.description}; source: {src.source_url}" for name, src in SOURCES.items()}


def read_manifest(name: str) -> list[ManifestEntry]:
    """Files of set ``name`` (``planetlab`` is the union of the eight day sets).

    Raises:
        ValueError: Unknown set name.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown trace set {name!r}; available: {', '.join(SOURCES)}")
    parts = [f"planetlab-{d}" for d in PLANETLAB_DAYS] if name == "planetlab" else [name]
    entries = []
    for part in parts:
        lines = (MANIFEST_DIR / f"{part}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        for line in lines:
            path, size, sha256, blob, up_path, up_blob = line.split("\t")
            entries.append(ManifestEntry(path, int(size), sha256, blob, up_path, up_blob))
    return entries


def git_blob_sha1(content: bytes) -> str:
    """SHA-1 that ``git hash-object`` gives ``content`` (comparable with the public repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def download_trace_set(name: str, cache_dir: Path, *, mirror_url: str | None = None, progress: bool = True) -> Path:
    """Download and verify every file of trace set ``name`` that is not already in the cache.

    Args:
        name: A key of :func:`available_trace_sets`.
        cache_dir: Cache folder; files go to ``cache_dir / "traces" / <shared-folder path>``.
        mirror_url: Base URL serving the shared folder's layout; None uses the public sources.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        ``cache_dir / "traces"``, the root to pass to ``load_trace``.

    Raises:
        ValueError: Unknown set name.
        TraceDownloadError: HTTP/network failure or checksum mismatch (URL named), or a set whose
            public form cannot be converted here (Azure ``.rda`` without a mirror).
    """
    entries = read_manifest(name)
    source = SOURCES[name]
    if mirror_url is None and source.upstream_encoding == "rda":
        raise TraceDownloadError(
            source.source_url,
            "the public Azure V1 sample is R data (.rda), which cannot be converted without R tools; "
            "download it from a mirror of the shared trace folder (--mirror / MIRRORTWIN_TRACE_MIRROR), "
            "or read each data/<stem>.rda with pyreadr and write azure_v1_sample/<stem>.csv.gz with a "
            "0-based 'step' column then one column per VM (6 decimals), as azure_v1_sample/PROVENANCE.md "
            "describes",
        )
    root = Path(cache_dir) / "traces"
    todo = [e for e in entries if not _is_verified(root / e.path, e)]
    with (
        tqdm(
            total=sum(e.size for e in todo),
            unit="B",
            unit_scale=True,
            desc=name,
            file=sys.stderr,
            disable=not progress,
        ) as bar,
        ThreadPoolExecutor(_WORKERS) as pool,
    ):
        futures = [pool.submit(_fetch_one, e, root, source, mirror_url) for e in todo]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                if fut.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise fut.exception()  # type: ignore[misc]
                bar.update(fut.result())
    return root


def _is_verified(path: Path, entry: ManifestEntry) -> bool:
    """True when ``path`` holds the manifest's content (stored bytes, or same content re-gzipped)."""
    try:
        stored = path.read_bytes()
    except OSError:
        return False
    if len(stored) == entry.size and hashlib.sha256(stored).hexdigest() == entry.sha256:
        return True
    try:
        content = gzip.decompress(stored) if entry.path.endswith(".gz") else stored
    except (OSError, EOFError):
        return False
    return git_blob_sha1(content) == entry.git_blob_sha1


def _fetch_one(entry: ManifestEntry, root: Path, source: TraceSource, mirror_url: str | None) -> int:
    """Fetch, verify and atomically store one file; returns its stored size for the progress bar."""
    if mirror_url is not None:
        url = f"{mirror_url.rstrip('/')}/{quote(entry.path)}"
        stored = _http_get(url)
        got = hashlib.sha256(stored).hexdigest()
        if got != entry.sha256:
            raise TraceDownloadError(url, f"checksum mismatch: sha256 {got}, expected {entry.sha256}")
    else:
        url = source.raw_url(entry.upstream_path)
        content = _http_get(url)
        got = git_blob_sha1(content)
        if got != entry.upstream_git_blob_sha1:
            raise TraceDownloadError(url, f"checksum mismatch: git blob {got}, expected {entry.upstream_git_blob_sha1}")
        needs_gzip = entry.path.endswith(".gz") and not entry.upstream_path.endswith(".gz")
        stored = gzip.compress(content, compresslevel=9, mtime=0) if needs_gzip else content
    _store_atomically(root / entry.path, stored)
    return entry.size


def _http_get(url: str) -> bytes:
    """GET ``url`` into memory (files are at most a few MB); any failure -> TraceDownloadError."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise TraceDownloadError(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise TraceDownloadError(url, f"cannot connect ({exc.reason})") from None
    except (TimeoutError, OSError) as exc:
        raise TraceDownloadError(url, f"download failed ({exc})") from None


def _store_atomically(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, fsync, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
