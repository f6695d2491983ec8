"""Where each downloadable trace set comes from: public repository, commit, and folder layout.

The shared trace folder (``../shared/traces``) is a byte-for-byte (or gzip-of) copy of files in public
GitHub repositories, pinned to the commits recorded in each ``PROVENANCE.md``. Keeping that mapping in
one table lets the loaders tell a user exactly what to download when a trace is missing, and lets the
downloader rebuild the same layout from the public sources or from a mirror of the shared folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

#: How the public copy of a file is encoded relative to the file in the shared folder.
#: ``same``: identical bytes; ``gzip``: public file is the uncompressed original of our ``.gz``;
#: ``rda``: public file is R binary data that was converted to CSV (cannot be rebuilt with the stdlib).
UpstreamEncoding = Literal["same", "gzip", "rda"]

PLANETLAB_DAYS: tuple[str, ...] = (
    "20110303",
    "20110306",
    "20110309",
    "20110322",
    "20110325",
    "20110409",
    "20110411",
    "20110412",
)


@dataclass(frozen=True)
class TraceSource:
    """One downloadable trace set.

    Attributes:
        name: Download name, as in ``mirrortwin traces download <name>``.
        description: One line on what the set holds.
        repository: Public GitHub repository URL.
        commit: Commit the files were read at (see PROVENANCE.md).
        folders: Folders, relative to a traces root, that the set fills.
        upstream_encoding: How the public files relate to the stored ones.
        upstream_path: Folder in the repository that holds the public files (for messages).
    """

    name: str
    description: str
    repository: str
    commit: str
    folders: tuple[str, ...]
    upstream_encoding: UpstreamEncoding
    upstream_path: str

    @property
    def source_url(self) -> str:
        """Browsable URL of the public files at the pinned commit."""
        return f"{self.repository}/tree/{self.commit}/{self.upstream_path}"

    def raw_url(self, upstream_file: str) -> str:
        """Raw-download URL of one file of the repository at the pinned commit."""
        owner_repo = self.repository.removeprefix("https://github.com/")
        return f"https://raw.githubusercontent.com/{owner_repo}/{self.commit}/{quote(upstream_file)}"


_CLOUDSIM = "https://github.com/Cloudslab/cloudsim"
_CLOUDSIM_COMMIT = "476ceef2c0ffe02e0b637bbeed4d6805dbd1707a"
_PLANETLAB_UPSTREAM = "modules/cloudsim-examples/src/main/resources/workload/planetlab"


def _planetlab_day(day: str) -> TraceSource:
    return TraceSource(
        name=f"planetlab-{day}",
        description=f"PlanetLab (CoMon) VM CPU %, day {day}, 5 min x 288, as shipped with CloudSim",
        repository=_CLOUDSIM,
        commit=_CLOUDSIM_COMMIT,
        folders=(f"planetlab/{day}",),
        upstream_encoding="same",
        upstream_path=f"{_PLANETLAB_UPSTREAM}/{day}",
    )


SOURCES: dict[str, TraceSource] = {
    **{f"planetlab-{d}": _planetlab_day(d) for d in PLANETLAB_DAYS},
    "planetlab": TraceSource(
        name="planetlab",
        description="PlanetLab (CoMon) VM CPU %, all 8 days (9,250 series), 5 min x 288, from CloudSim",
        repository=_CLOUDSIM,
        commit=_CLOUDSIM_COMMIT,
        folders=tuple(f"planetlab/{d}" for d in PLANETLAB_DAYS),
        upstream_encoding="same",
        upstream_path=_PLANETLAB_UPSTREAM,
    ),
    "bitbrains-rnd": TraceSource(
        name="bitbrains-rnd",
        description="Bitbrains GWA-T-12 Rnd, Aug 2013, 400 VMs: CPU, memory, disk, network, ~300 s, 30 days",
        repository="https://github.com/JessieRayeBauer/Time-Series-Forecasting-",
        commit="0901a0da3024507c7732c782621e590077abca64",
        folders=("bitbrains/rnd/2013-8",),
        upstream_encoding="gzip",
        upstream_path="rnd/2013-8",
    ),
    "azure-v1-sample": TraceSource(
        name="azure-v1-sample",
        description="Azure Public Dataset V1 (2017) sample: avg/max CPU % of 100 + 78 VMs, 5 min, ~28 days",
        repository="https://github.com/carlonlv/DataCenterSim",
        commit="fa2cc2592969c40d3e8494c2be46a94641b235f1",
        folders=("azure_v1_sample",),
        upstream_encoding="rda",
        upstream_path="data",
    ),
    "alibaba2018": TraceSource(
        name="alibaba2018",
        description="Alibaba cluster-trace-v2018 machine_usage slice (16 machines, 8 days) + machine_meta",
        repository="https://github.com/gohsyi/cluster_optimization",
        commit="d147f574ff6e93341e59a2ec657aae08b182eb7c",
        folders=("alibaba2018",),
        upstream_encoding="gzip",
        upstream_path="data",
    ),
}


def source_for(family: str, subset: str | None) -> TraceSource:
    """The download set that provides ``family``/``subset`` (used in not-found messages).

    Raises:
        KeyError: ``family`` is not a known family.
    """
    if family == "planetlab":
        day = subset or PLANETLAB_DAYS[0]
        return SOURCES.get(f"planetlab-{day}", SOURCES["planetlab"])
    return SOURCES[{"bitbrains": "bitbrains-rnd", "azure": "azure-v1-sample", "alibaba": "alibaba2018"}[family]]
