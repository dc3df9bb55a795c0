"""Downloads for the real datasets: resumable, verified, extracted safely, finished atomically.

- ``fetch``: HTTP(S) download into a cache with resume (``Range``) from a ``.part`` file; the finished file is
  verified against a pinned checksum (the publisher's md5/sha256 where one is published) or, when none is, against
  the sha256 recorded in the lock file (``downloads.lock.json`` beside this module, package data) the first time the
  URL was fetched (trust on first use). A mismatch deletes the file and raises; nothing unverified is ever renamed
  into place.
- ``mirror``: a base URL (``https://mirror.example.org/finebench``) or a local directory holding the same file names,
  for air-gapped sites.
- ``extract``: tar/zip extraction that refuses absolute paths, ``..`` and links pointing outside the target, into a
  temporary sibling folder renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from finebench.errors import FinebenchError
from finebench.files import atomic_dir, write_json_atomic

LOCK_FILE = Path(__file__).resolve().with_name("downloads.lock.json")  # package data: found from any install
CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    url: str
    md5: str | None = None  # published checksums, when the publisher (or torchvision, citing it) gives one
    sha256: str | None = None
    extract: bool = True

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url.split("?")[0]).name


def file_hash(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _read_lock(lock: Path) -> dict:
    return json.loads(lock.read_text()) if lock.is_file() else {}


def verify(remote: Remote, path: Path, lock: Path) -> str:
    """Check ``path`` against the pinned checksum or the lock file; record it on first use. Returns its sha256."""
    sha = file_hash(path, "sha256")
    expected = [(a, v) for a, v in (("md5", remote.md5), ("sha256", remote.sha256)) if v]
    for algo, want in expected:
        got = sha if algo == "sha256" else file_hash(path, algo)
        if got != want:
            raise FinebenchError(f"{remote.url}: {algo} mismatch — expected {want}, got {got}")
    recorded = _read_lock(lock)
    if remote.url in recorded and recorded[remote.url] != sha:
        raise FinebenchError(f"{remote.url}: sha256 {sha} differs from the one recorded in {lock} "
                             f"({recorded[remote.url]}) — the file changed since it was first fetched")
    if remote.url not in recorded:
        recorded[remote.url] = sha
        write_json_atomic(lock, dict(sorted(recorded.items())))
    return sha


def _source(remote: Remote, mirror: str | None) -> str:
    if not mirror:
        return remote.url
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + remote.filename
    return str(Path(mirror) / remote.filename)


def fetch(remote: Remote, cache: str | Path, lock: str | Path = LOCK_FILE, mirror: str | None = None,
          timeout: float = 60.0) -> Path:
    """Download (or resume) ``remote`` into ``cache``; return the verified file's path."""
    cache, lock = Path(cache), Path(lock)
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / remote.filename
    if final.is_file():
        verify(remote, final, lock)
        return final
    part = cache / (remote.filename + ".part")
    src = _source(remote, mirror)
    if "://" not in src:  # a local mirror directory
        if not Path(src).is_file():
            raise FinebenchError(f"download.mirror: {src} not found (expected the file {remote.filename} there)")
        shutil.copyfile(src, part)
    else:
        _http_download(src, part, timeout)
    try:
        verify(remote, part, lock)
    except FinebenchError:
        part.unlink(missing_ok=True)  # never keep (or resume from) a file that failed verification
        raise
    os.replace(part, final)
    return final


def _http_download(url: str, part: Path, timeout: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "finebench",
                                                   **({"Range": f"bytes={have}-"} if have else {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resumed = have and resp.status == 206
            total = resp.headers.get("Content-Length")
            print(f"[finebench] {'resuming' if resumed else 'downloading'} {url}"
                  f"{f' at byte {have}' if resumed else ''} ({total or '?'} bytes to go)", file=sys.stderr, flush=True)
            got = 0
            with open(part, "ab" if resumed else "wb") as out:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    out.write(block)
                    got += len(block)
            if total is not None and got < int(total):  # the server closed early: keep the part, resume next time
                raise FinebenchError(f"{url}: download failed (connection closed after {got} of {total} bytes); "
                                     f"rerun to resume from byte {part.stat().st_size}")
    except FinebenchError:
        raise
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range not satisfiable: the part file is already complete
            return
        raise FinebenchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise FinebenchError(f"{url}: download failed ({exc}); rerun to resume, or set download.mirror / "
                             f"tasks.<task>.root to a local copy") from exc


def _check_member(name: str, target: Path, link: str | None = None) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        raise FinebenchError(f"refusing to extract {name!r}: it would land outside {target}")
    if link is not None:
        dest = (target / p.parent / link).resolve()
        if not PurePosixPath(link).is_absolute() and dest.is_relative_to(target.resolve()):
            return
        raise FinebenchError(f"refusing to extract link {name!r} -> {link!r}: it points outside {target}")


def extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a .tar(.gz/.bz2/.xz)/.tgz or .zip into ``target`` atomically; refuses escaping members."""
    archive, target = Path(archive), Path(target)
    if target.is_dir():
        return target
    with atomic_dir(target) as work:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _check_member(name, work)
                z.extractall(work)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    _check_member(m.name, work, m.linkname if (m.issym() or m.islnk()) else None)
                t.extractall(work, filter="data")
        else:
            raise FinebenchError(f"{archive}: not a tar or zip archive")
    return target


def fetch_dataset(name: str, remotes: list[Remote], cache: str | Path, mirror: str | None = None,
                  lock: str | Path = LOCK_FILE) -> Path:
    """Fetch and extract every file of a dataset; return the assembled folder (what ``root:`` would point at).

    Layout: ``{cache}/{name}/files/`` (downloads, resumable), ``{cache}/{name}/x/<archive>/`` (each archive extracted
    atomically), ``{cache}/{name}/root/`` (links to every archive's top-level entries and to the plain files, built in
    a temporary folder and renamed into place last).
    """
    base = Path(cache) / name
    root = base / "root"
    if root.is_dir():
        for remote in remotes:
            verify(remote, base / "files" / remote.filename, Path(lock))
        return root
    entries: dict[str, Path] = {}
    for remote in remotes:
        path = fetch(remote, base / "files", lock, mirror)
        if remote.extract:
            extracted = extract(path, base / "x" / remote.filename)
            entries.update({p.name: p for p in extracted.iterdir()})
        else:
            entries[remote.filename] = path
    with atomic_dir(root) as work:
        for entry, target in entries.items():
            (work / entry).symlink_to(target.resolve())
    return root
