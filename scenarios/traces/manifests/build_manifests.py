"""Regenerate the download manifests from a verified copy of the shared trace folder.

Run from the repository root::

    .venv/bin/python -m scenarios.traces.manifests.build_manifests /work/shared/traces

For every file of every set in :data:`scenarios.traces.sources.SOURCES` it records the stored size and
sha256 (what a mirror serves), the git blob SHA-1 of the uncompressed content, and the path and blob
SHA-1 of the public file. Before writing anything it checks the copy against what the PROVENANCE files
state - PlanetLab day-folder git tree hashes, Bitbrains ``MANIFEST.tsv`` blob hashes, Alibaba blob
hashes - so a manifest can only be built from data identical to the public repositories.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

from scenarios.traces.sources import PLANETLAB_DAYS, SOURCES

HERE = Path(__file__).resolve().parent
COLUMNS = ("path", "bytes", "sha256", "git_blob_sha1", "upstream_path", "upstream_git_blob_sha1")

#: Day-folder git tree hashes at the CloudSim commit (planetlab/PROVENANCE.md).
PLANETLAB_TREES = {
    "20110303": "c110dd9fdbbbb3788b4ef386fba1bfb9e12e3ddb",
    "20110306": "2d29b2eea3fc24b08627ed4388acdb9eebc85d21",
    "20110309": "ee20d06271fcee4003f180bafc18485e2a3040f1",
    "20110322": "7a8cdb22c53fd2b90035ea4d84cc5607f4d04e12",
    "20110325": "71607bf914b778b0dfc6622e6daaad029ca844bf",
    "20110409": "2ca9212d990a9b577503f356c74b4438403a217d",
    "20110411": "ef0c70562ebe2289e9526e23eb323d3bf7b95a22",
    "20110412": "d38c5c2189e21d03a7561d5e950d8e82705d26ec",
}
#: Upstream blob hashes stated in alibaba2018/PROVENANCE.md and azure_v1_sample/PROVENANCE.md.
ALIBABA_BLOBS = {
    "machine_usage.csv.gz": "86a07f4a7dc7aeb73c4d65a8d44b55391664b243",
    "machine_meta.csv.gz": "90e669759b977cdc7e2db5e968e17ea0f5733dc1",
}
AZURE_RDA_BLOBS = {
    "microsoft_avg_100": "403506a22e7dd92d5f5edf7f51fc5e5dcda0a5c4",
    "microsoft_max_100": "b27cee47971343c9f2c58ca23a58cff2f939f7b1",
    "periodic_avg_78": "5926a66e0ac2d6369ca3ac75b835e7b05b8a9f19",
    "periodic_max_78": "0ed60637b379dec75956a84c466e1f537a35fd1e",
}


def git_blob_sha1(content: bytes) -> str:
    """SHA-1 that ``git hash-object`` gives ``content``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def git_tree_sha1(blobs: dict[str, str]) -> str:
    """Git tree hash of a flat folder of regular (100644) files given name -> blob SHA-1."""
    body = b"".join(b"100644 " + name.encode() + b"\0" + bytes.fromhex(sha) for name, sha in sorted(blobs.items()))
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def _row(root: Path, rel: str, upstream_path: str, upstream_sha: str | None) -> tuple[str, ...]:
    stored = (root / rel).read_bytes()
    content = gzip.decompress(stored) if rel.endswith(".gz") else stored
    blob = git_blob_sha1(content)
    if upstream_sha is not None and upstream_sha != blob and not upstream_path.endswith(".rda"):
        raise SystemExit(f"{root / rel}: git blob {blob} differs from the provenance's {upstream_sha}")
    return (rel, str(len(stored)), hashlib.sha256(stored).hexdigest(), blob, upstream_path, upstream_sha or blob)


def build_rows(root: Path) -> dict[str, list[tuple[str, ...]]]:
    """Manifest rows per set name, verified against the provenance."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for day in PLANETLAB_DAYS:
        src = SOURCES[f"planetlab-{day}"]
        folder = root / "planetlab" / day
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        rows = [_row(root, f"planetlab/{day}/{n}", f"{src.upstream_path}/{n}", None) for n in names]
        tree = git_tree_sha1({r[0].rsplit("/", 1)[1]: r[3] for r in rows})
        if tree != PLANETLAB_TREES[day]:
            raise SystemExit(f"{folder}: git tree {tree} differs from the provenance's {PLANETLAB_TREES[day]}")
        out[src.name] = rows
    bb = root / "bitbrains"
    rows = []
    for line in (bb / "MANIFEST.tsv").read_text().splitlines()[1:]:
        fields = line.split("\t")
        rows.append(_row(root, f"bitbrains/{fields[1]}", fields[2], fields[3]))
    out["bitbrains-rnd"] = rows
    out["azure-v1-sample"] = [
        _row(root, f"azure_v1_sample/{stem}.csv.gz", f"data/{stem}.rda", sha) for stem, sha in AZURE_RDA_BLOBS.items()
    ]
    out["alibaba2018"] = [
        _row(root, f"alibaba2018/{name}", f"data/{name.removesuffix('.gz')}", sha)
        for name, sha in ALIBABA_BLOBS.items()
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    """Verify the shared folder and write one ``<set>.tsv`` per set next to this script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces_root", type=Path, help="verified copy of the shared trace folder")
    args = parser.parse_args(argv)
    for name, rows in build_rows(args.traces_root).items():
        text = "\t".join(COLUMNS) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
        (HERE / f"{name}.tsv").write_text(text, encoding="utf-8")
        print(f"{name}: {len(rows)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
