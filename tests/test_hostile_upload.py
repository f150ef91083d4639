"""Issue #23 §1: a 141-byte PNG (60000×1) took the server from 2.6 to 6.0 GB. Every crafted upload below goes
through the page's own function (analysis.prepare_upload) in a child process whose peak RSS (VmHWM, reset after
imports and one small upload), over its RSS then, must stay under PEAK_MB; then the 60000×1 PNG goes
through a real browser against a real server, whose RSS must barely move.

The files are small by construction: PNGs written by hand (IHDR + one zlib stream of a repeated compressed block,
never held whole), so a 30000×30000 picture is 0.9 MB and a 16777216×1 one 16 KB. Each child runs under an
address-space limit (1 GiB over what it has mapped after imports), so code that would take gigabytes fails fast
here instead of taking them.
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import struct
import subprocess
import sys
import zlib

import pytest
import torch
from PIL import Image

from cnnlab import i18n
from cnnlab.ui.analysis import MAX_UPLOAD_BYTES, ImageError, prepare_upload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEAK_MB = 64          # what one upload may add to the server's memory
SECONDS = 5.0         # and its time (2 shared cores)
MB = 1 << 20


# -- crafting files -------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _deflate_repeated(line: bytes, count: int) -> bytes:
    """A zlib stream of `line` × `count`: one compressed ~1 MB block (ended by a full flush, so it stands alone)
    repeated, then a final block; the whole input is never built."""
    per = min(count, max(1, MB // len(line)))
    block = line * per
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(count, per)
    if rest == 0:
        full, rest = full - 1, per
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(line * rest) + last.flush()
    adler = 1
    for _ in range(full):
        adler = zlib.adler32(block, adler)
    adler = zlib.adler32(line * rest, adler)
    return b"\x78\xda" + body * full + tail + struct.pack(">I", adler & 0xFFFFFFFF)


def png_by_hand(w: int, h: int, *, depth: int = 8, color: int = 0, extra: bytes = b"") -> bytes:
    """A valid w×h PNG of zero rows (grey 0, RGB(A) 0, palette index 0) of the given bit depth and colour type."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    row = b"\0" * (w * channels * depth // 8)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", _deflate_repeated(b"\0" + row, h))
            + _chunk(b"IEND", b""))


def _pil(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _bmp_rle8(w: int, h: int) -> bytes:
    """An 8-bit run-length BMP: 255 pixels per two bytes."""
    pal = b"".join(bytes([i, i, i, 0]) for i in range(256))
    row = b""
    left = w
    while left:
        n = min(255, left)
        row += bytes([n, 7])
        left -= n
    data = (row + b"\0\0") * h + b"\0\1"
    off = 14 + 40 + len(pal)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def _gif_many_frames(n: int = 300) -> bytes:
    frames = []
    for i in range(n):
        f = Image.new("P", (512, 512), 0)
        f.putpixel((i % 512, i // 2), 1 + i % 200)
        frames.append(f)
    return _pil(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)


def _ztxt_bomb() -> bytes:
    """3,000 zTXt chunks of 1 MB of zeros each (1 KB compressed): PIL kept up to 64 MB of such text."""
    one = zlib.compress(b"\0" * (MB - 64), 9)
    return png_by_hand(8, 8, extra=b"".join(_chunk(b"zTXt", b"k%d\0\0" % i + one) for i in range(3000)))


def _noise_png(w: int, h: int) -> bytes:
    return _pil(Image.frombytes("L", (w, h), random.Random(0).randbytes(w * h)), "PNG")


PLTE_TRNS = _chunk(b"PLTE", bytes(range(256)) * 3) + _chunk(b"tRNS", bytes([0, 128] + [255] * 254))
SOLID_RGB = (90, 120, 200)

# name -> (maker, what must come of it: "refused" (an ImageError), "ok", or None (either; memory is the point))
CASES = {
    "wide 60000x1 (141 bytes, the issue's file)": (lambda: _pil(Image.new("L", (60000, 1)), "PNG", optimize=True),
                                                   "refused"),
    "tall 1x60000": (lambda: _pil(Image.new("L", (1, 60000)), "PNG", optimize=True), "refused"),
    "wide 16777216x1 (16 KB)": (lambda: png_by_hand(16777216, 1), "refused"),
    "square 30000x30000 (0.9 MB)": (lambda: png_by_hand(30000, 30000), "refused"),
    "wide 4000x1 (within every side limit)": (lambda: png_by_hand(4000, 1), "ok"),
    "grey 4096x4096": (lambda: png_by_hand(4096, 4096), "ok"),
    "RGBA 4096x4096": (lambda: png_by_hand(4096, 4096, color=6), None),
    "palette 4096x4096 with transparency": (lambda: png_by_hand(4096, 4096, color=3, extra=PLTE_TRNS), "ok"),
    "16-bit grey 4096x4096": (lambda: png_by_hand(4096, 4096, depth=16), "ok"),
    "16-bit RGB 2048x2048": (lambda: png_by_hand(2048, 2048, depth=16, color=2), "ok"),
    "animated GIF, 300 frames": (_gif_many_frames, "ok"),
    "truncated PNG": (lambda: (lambda b: b[: len(b) // 2])(_noise_png(512, 512)), "refused"),
    "truncated JPEG": (lambda: (lambda b: b[: len(b) // 2])(
        _pil(Image.frombytes("L", (256, 256), random.Random(1).randbytes(65536)), "JPEG")), "refused"),
    "progressive JPEG 4096x4096": (lambda: _pil(Image.new("RGB", (4096, 4096), SOLID_RGB), "JPEG", progressive=True,
                                                quality=50), None),
    "baseline JPEG 4096x4096": (lambda: _pil(Image.new("RGB", (4096, 4096), SOLID_RGB), "JPEG", quality=50), "ok"),
    "WebP 4096x4096": (lambda: _pil(Image.new("RGB", (4096, 4096), SOLID_RGB), "WEBP", quality=50), None),
    "run-length BMP 4096x4096": (lambda: _bmp_rle8(4096, 4096), None),
    "PNG text-chunk bomb": (_ztxt_bomb, "refused"),
}

# Runs in a fresh interpreter: imports once, then one forked child per (file, size, channels), each with its own
# baseline (its RSS after a small upload, the high-water mark reset there) and an address-space cap; one JSON line
# per child.
CHILD = r"""
import io, json, os, resource, sys, time
from PIL import Image
from cnnlab import i18n
from cnnlab.ui import analysis

def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

def vm_size():
    return status_kb("VmSize") * 1024

warm = io.BytesIO()
Image.new("RGB", (64, 48), (200, 10, 10)).save(warm, "PNG")
for job in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        analysis.prepare_upload(warm.getvalue(), size=job["size"], in_channels=job["ch"])
        data = open(job["path"], "rb").read()
        try:  # the high-water mark from here on (Linux: "5" resets it to the current RSS)
            open("/proc/self/clear_refs", "w").write("5")
        except OSError:
            pass
        base = status_kb("VmRSS")
        cap = vm_size() + (1 << 30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        t0 = time.perf_counter()
        try:
            analysis.prepare_upload(data, size=job["size"], in_channels=job["ch"])
            out, text, data = "ok", "", None
        except analysis.ImageError as e:
            out, text, data = "refused", str(e), i18n.message_json(e)   # the sentence as data, for the zh check
        except BaseException as e:
            out, text, data = type(e).__name__, str(e)[:300], None
        secs = time.perf_counter() - t0
        peak = (status_kb("VmHWM") - base) / 1024  # ru_maxrss, after the reset, says the same on Linux
        os.write(w, json.dumps({**job, "outcome": out, "message": text, "message_data": data, "peak_mb": peak,
                               "secs": secs}).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    print(b"".join(chunks).decode() or json.dumps({**job, "outcome": f"child died ({status})", "message": "",
                                                  "peak_mb": -1, "secs": -1}), flush=True)
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """{(case, size, channels): result} for every crafted file at LeNet's input (28, grey) and 224 RGB."""
    folder = tmp_path_factory.mktemp("crafted_uploads")
    jobs = []
    for i, (name, (make, _)) in enumerate(CASES.items()):
        data = make()
        assert len(data) <= MAX_UPLOAD_BYTES, (name, len(data))  # each one passes the byte check
        path = folder / f"case{i}"
        path.write_bytes(data)
        jobs += [{"name": name, "path": str(path), "size": s, "ch": c} for s, c in ((28, 1), (224, 3))]
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(jobs)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(f"{row['name']:45} {row['size']:4} {row['ch']}  {row['outcome']:8} {row['peak_mb']:7.1f} MB "
              f"{row['secs']:5.2f} s  {row['message'][:90]}")
    return {(row["name"], row["size"], row["ch"]): row for row in rows}


@pytest.mark.parametrize("name", list(CASES))
def test_a_crafted_upload_costs_a_few_mb_and_says_one_sentence(measured, name):
    want = CASES[name][1]
    for size, ch in ((28, 1), (224, 3)):
        row = measured[(name, size, ch)]
        assert row["outcome"] in ("ok", "refused"), row       # never MemoryError, never another exception
        if want is not None:
            assert row["outcome"] == want, row
        assert row["peak_mb"] < PEAK_MB, row
        assert row["secs"] < SECONDS, row
        if row["outcome"] == "refused":
            text = row["message"]
            assert text and "\n" not in text and len(text) < 300, row
            size_in_name = re.search(r"(\d+)x(\d+)", name)
            if size_in_name:  # the sentence names the picture's size (or says it is far over the limit)
                assert "{}×{}".format(*size_in_name.groups()) in text or "far more than" in text, row
            said = i18n.message_from_json(row["message_data"], text)
            assert said == text and i18n.text_of(said, "zh") != text, f"no Chinese for {text!r}"


@pytest.mark.parametrize("w, h", [(4097, 16), (16, 4097)])
def test_a_side_over_the_limit_is_one_sentence_before_decoding(w, h):
    # in this process: only sizes that cost little even without the check (the extreme ones run in CHILD)
    with pytest.raises(ImageError) as e:
        prepare_upload(png_by_hand(w, h), size=28)
    assert str(e.value) == f"the image is {w}×{h} pixels; neither side may be over 4096 pixels"
    assert i18n.text_of(e.value, "zh") == f"图像有 {w}×{h} 像素；每条边最多 4096 像素"


@pytest.mark.parametrize("w, h, size", [(4000, 400, 28), (300, 4000, 96), (4000, 1, 28), (50, 30, 28)])
def test_a_long_picture_within_the_limits_is_padded_as_before(w, h, size):
    """The picture is reduced before it is padded, but the model sees what the book's pad-then-resize gives."""
    from PIL import ImageOps

    img = Image.frombytes("L", (w, h), bytes((x * 7 + y * 3) % 256 for y in range(h) for x in range(w)))
    data = _pil(img, "PNG")
    x = prepare_upload(data, size=size, invert=False).tensor[0, 0]
    m = max(w, h)  # the reference: the whole picture padded to an m×m square, then resized (16 MB here at most)
    ref = ImageOps.pad(img, (m, m), color=255).resize((size, size), Image.Resampling.LANCZOS)
    ref = torch.tensor(list(ref.getdata()), dtype=torch.float32).view(size, size) / 255
    assert x.shape == (size, size)
    diff = (x - ref).abs()
    print(f"{w}×{h} at {size}: mean |Δ| {float(diff.mean()):.4f}, max {float(diff.max()):.4f}")
    assert float(diff.mean()) < 0.01 and float(diff.max()) < 0.1


def test_a_picture_too_costly_to_decode_says_so_in_one_sentence():
    with pytest.raises(ImageError, match=r"needs \d+ MB to decode") as e:
        prepare_upload(png_by_hand(4096, 4096, color=6), size=28)                 # RGBA: 64 MB decoded
    assert "\n" not in str(e.value)
    assert "解码需要" in i18n.text_of(e.value, "zh")


def test_the_exif_orientation_is_still_applied():
    img = Image.new("L", (80, 40), 0)                                             # wide and black, stored
    exif = Image.Exif()
    exif[0x0112] = 6                                                              # "rotate 90° to view": tall
    x = prepare_upload(_pil(img, "JPEG", exif=exif), size=8, invert=False).tensor[0, 0]
    assert float(x[:, 0].min()) > 0.9 and float(x[:, -1].min()) > 0.9           # white columns left and right
    assert float(x[:, 3:5].max()) < 0.1                                           # the picture, upright


# -- through the browser: the page's own upload, a real server ----------------------------------------------

def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def test_the_141_byte_png_in_a_browser_is_one_sentence_and_no_memory(tmp_path):
    from helpers import have_fashion_mnist, need, save_tiny_run

    need(have_fashion_mnist(), "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
    e2e = pytest.importorskip("test_e2e_browser")  # skips without playwright or chromium
    root = tmp_path / "runs"
    save_tiny_run(root, epochs=1, train_size=256, test_size=64)
    img = tmp_path / "wide.png"
    Image.new("L", (60000, 1)).save(img, optimize=True)
    assert img.stat().st_size < 200
    with e2e.streamlit_server(root, tmp_path / "streamlit.log") as (base, proc):
        with e2e.chromium() as browser:
            pg = browser.new_page(viewport={"width": 1280, "height": 1000})
            pg.set_default_timeout(60_000)
            pg.goto(base + "/saved-runs")
            e2e.idle(pg, settle_ms=800, timeout_s=120)
            pg.get_by_role("tab", name="Predict an uploaded image").click()
            e2e.idle(pg)
            before = _status_mb(proc.pid, "VmRSS")
            try:  # start the server's high-water mark afresh (Linux: "5" resets VmHWM to VmRSS)
                with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
                    f.write("5")
                fresh_peak = True
            except OSError:
                fresh_peak = False
            try:  # a safety net for this machine: a server that would take gigabytes fails fast instead
                cap = int(_status_mb(proc.pid, "VmSize") * MB) + (1 << 30)
                resource.prlimit(proc.pid, resource.RLIMIT_AS, (cap, cap))
            except (OSError, ValueError, AttributeError):
                pass
            pg.locator(".st-key-runs_upload input[type=file]").set_input_files(str(img))
            pg.wait_for_selector("text=neither side may be over", state="attached", timeout=60_000)
            e2e.idle(pg, settle_ms=800)
            pg.get_by_role("tab", name="Predict an uploaded image").click()  # the page shows its first tab again
            e2e.idle(pg)
            pg.wait_for_selector("text=neither side may be over", timeout=10_000)  # visible
            e2e.no_exception(pg, "upload")
            errors = [t for t in pg.locator('[data-testid="stAlertContentError"]').all_inner_texts() if t.strip()]
            assert errors == ["That file cannot be used: the image is 60000×1 pixels; neither side may be over "
                              "4096 pixels"], errors
            after, peak = _status_mb(proc.pid, "VmRSS"), _status_mb(proc.pid, "VmHWM")
            print(f"server RSS {before:.0f} MB -> {after:.0f} MB (peak {peak:.0f} MB)")
            assert after - before < 200, (before, after)
            if fresh_peak:
                assert peak - before < 200, (before, peak)
