"""Downloads against a local HTTP server on 127.0.0.1 (never the real hosts)."""

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from finebench.data.download import Remote, extract, fetch, fetch_dataset
from finebench.errors import FinebenchError


class Handler(BaseHTTPRequestHandler):
    """Serves ``files`` with Range support; ``cut`` (name -> bytes) drops the connection after that many bytes once."""

    def __init__(self, *args, files, cut, log, **kw):
        self.files, self.cut, self.log = files, cut, log
        super().__init__(*args, **kw)

    def do_GET(self):
        name = self.path.lstrip("/").split("?")[0]
        if name not in self.files:
            self.send_error(404)
            return
        data, start = self.files[name], 0
        rng = self.headers.get("Range")
        self.log.append((name, rng))
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in self.cut:
            body = body[: self.cut.pop(name)]  # then close: the client sees a truncated body
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    files, cut, log = {}, {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, files=files, cut=cut, log=log))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files, cut, log
    httpd.shutdown()
    httpd.server_close()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_pinned_checksum_ok_and_lock_records_unpinned(server, tmp_path):
    url, files, _, _ = server
    files["a.bin"] = b"x" * 5000
    files["b.bin"] = b"y" * 100
    lock = tmp_path / "lock.json"
    good = Remote(f"{url}/a.bin?download=1", md5=hashlib.md5(files["a.bin"]).hexdigest())  # a query, as CUB's URL has
    assert fetch(good, tmp_path / "cache", lock) == tmp_path / "cache" / "a.bin"
    assert (tmp_path / "cache" / "a.bin").read_bytes() == files["a.bin"]
    unpinned = Remote(f"{url}/b.bin")
    fetch(unpinned, tmp_path / "cache", lock)
    recorded = json.loads(lock.read_text())
    assert recorded[unpinned.url] == hashlib.sha256(files["b.bin"]).hexdigest()  # trust on first use
    # a later, different file under the same URL is refused
    (tmp_path / "cache" / "b.bin").unlink()
    files["b.bin"] = b"z" * 100
    with pytest.raises(FinebenchError, match="differs from the one recorded"):
        fetch(unpinned, tmp_path / "cache", lock)
    assert not list((tmp_path / "cache").glob("b.bin*"))


def test_checksum_mismatch_is_a_clear_error_and_nothing_is_kept(server, tmp_path):
    url, files, _, _ = server
    files["data.tgz"] = b"corrupted" * 100
    remote = Remote(f"{url}/data.tgz", md5="0" * 32)
    with pytest.raises(FinebenchError, match=r"data\.tgz: md5 mismatch — expected 0{32}, got [0-9a-f]{32}"):
        fetch(remote, tmp_path / "cache", tmp_path / "lock.json")
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "lock.json").exists()


def test_interrupted_download_is_resumed(server, tmp_path):
    url, files, cut, log = server
    files["big.bin"] = bytes(range(256)) * 4000  # 1 MB
    cut["big.bin"] = 300_000
    remote = Remote(f"{url}/big.bin", sha256=hashlib.sha256(files["big.bin"]).hexdigest())
    with pytest.raises(FinebenchError, match="download failed .*rerun to resume"):
        fetch(remote, tmp_path / "cache", tmp_path / "lock.json", timeout=5)
    part = tmp_path / "cache" / "big.bin.part"
    assert part.stat().st_size == 300_000 and not (tmp_path / "cache" / "big.bin").exists()
    out = fetch(remote, tmp_path / "cache", tmp_path / "lock.json", timeout=5)
    assert out.read_bytes() == files["big.bin"] and not part.exists()
    assert log[-1] == ("big.bin", "bytes=300000-")


def test_archive_escaping_the_target_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar_bytes({"ok.txt": b"fine", "../escape.txt": b"gotcha"}))
    with pytest.raises(FinebenchError, match=r"refusing to extract '\.\./escape\.txt'"):
        extract(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial*"))
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("/etc/absolute.txt", "x")
    with pytest.raises(FinebenchError, match="refusing to extract '/etc/absolute.txt'"):
        extract(z, tmp_path / "out2")
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as t:
        info = tarfile.TarInfo("innocent")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        t.addfile(info)
    with pytest.raises(FinebenchError, match="refusing to extract link 'innocent'"):
        extract(link, tmp_path / "out3")


def test_fetch_dataset_assembles_root_and_mirror_dir(server, tmp_path):
    url, files, _, log = server
    files["images.tar.gz"] = tar_bytes({"images/a.jpg": b"1", "images/b.jpg": b"2"})
    files["labels.txt"] = b"a 1\nb 2\n"
    remotes = [Remote(f"{url}/images.tar.gz"), Remote(f"{url}/labels.txt", extract=False)]
    root = fetch_dataset("toy", remotes, tmp_path / "cache", lock=tmp_path / "lock.json")
    assert sorted(p.name for p in root.iterdir()) == ["images", "labels.txt"]
    assert (root / "images" / "b.jpg").read_bytes() == b"2"
    # a local mirror folder with the same file names: nothing is requested from the server
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in files.items():
        (mirror / name).write_bytes(data)
    n = len(log)
    root2 = fetch_dataset("toy", remotes, tmp_path / "cache2", mirror=str(mirror), lock=tmp_path / "lock.json")
    assert (root2 / "labels.txt").read_bytes() == files["labels.txt"] and len(log) == n
    # a mirror URL is used instead of the original host
    mirror_remotes = [Remote(f"http://unreachable.invalid/x/{r.filename}", extract=r.extract) for r in remotes]
    root3 = fetch_dataset("toy", mirror_remotes, tmp_path / "cache3", mirror=url, lock=tmp_path / "lock3.json")
    assert (root3 / "images" / "a.jpg").read_bytes() == b"1"
