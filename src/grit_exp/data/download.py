"""Download the GRIT_data annotation files from the Hugging Face hub (where it is reachable).

    python -m grit_exp.data.download --root data/GRIT_data

fetches the dataset repository ``yfan1997/GRIT_data`` (JSONL files and its README) into ``--root``
with `huggingface_hub.snapshot_download`. The images are NOT in that repository: follow
GRIT_data/README.md to fetch them into the per-set folders (tallyqa/, vsr/, gqa/, mme/,
mathvista_mini/, ovd_position/) that conf/dataset/grit20.yaml expects, then point
``paths.data_root`` (or the environment variable GRIT_DATA_ROOT) at ``--root``.
Deliberately left out: image downloads and any network access at import or test time.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_REPO_ID = "yfan1997/GRIT_data"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m grit_exp.data.download",
        description="Download the GRIT_data annotation files (JSONL) from the Hugging Face hub. "
        "Images are fetched separately, as GRIT_data/README.md describes.",
    )
    parser.add_argument(
        "--root", required=True, type=Path, help="destination folder (becomes paths.data_root)"
    )
    parser.add_argument(
        "--repo-id", default=DEFAULT_REPO_ID, help=f"dataset repository (default {DEFAULT_REPO_ID})"
    )
    parser.add_argument("--revision", default=None, help="a branch, tag or commit of the dataset repository")
    parser.add_argument(
        "--include",
        action="append",
        default=None,
        metavar="PATTERN",
        help="only files matching this glob (repeatable), e.g. --include '*.jsonl'",
    )
    return parser.parse_args(argv)


def download(
    root: Path, repo_id: str = DEFAULT_REPO_ID, revision: str | None = None, include: list[str] | None = None
) -> Path:
    """Snapshot the dataset repository into `root`; return `root`."""
    from huggingface_hub import snapshot_download  # imported here: only this command needs the hub

    root.mkdir(parents=True, exist_ok=True)
    snapshot_download(
        repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=str(root), allow_patterns=include
    )
    logger.info("downloaded %s into %s; now fetch the images as %s/README.md says", repo_id, root, root)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    download(args.root, args.repo_id, args.revision, args.include)


if __name__ == "__main__":
    main()
