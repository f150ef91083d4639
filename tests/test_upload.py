"""Uploaded images are converted to what the model sees: values checked pixel by pixel."""
import io

import pytest
import torch
from PIL import Image

from cnnlab.ui.analysis import ImageError, prepare_upload


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_a_light_picture_is_inverted_to_light_on_dark():
    img = Image.new("L", (4, 4), 255)
    img.paste(0, (1, 1, 3, 3))                      # a black 2×2 square on white
    x = prepare_upload(png(img), size=4).tensor[0, 0]
    expect = torch.zeros(4, 4)
    expect[1:3, 1:3] = 1.0                          # inverted: the square is white, the background black
    assert torch.equal(x, expect)


def test_a_dark_picture_is_kept_and_invert_can_be_forced():
    img = Image.new("L", (4, 4), 0)
    img.putpixel((0, 0), 255)
    kept = prepare_upload(png(img), size=4).tensor[0, 0]
    assert kept[0, 0] == 1.0 and kept.sum() == 1.0
    forced = prepare_upload(png(img), size=4, invert=True).tensor[0, 0]
    assert torch.equal(forced, 1.0 - kept)


def test_transparency_is_composited_over_white():
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 0))   # fully transparent black ...
    img.putpixel((1, 1), (0, 0, 0, 255))             # ... but one opaque black pixel
    x = prepare_upload(png(img), size=2, invert=False).tensor[0, 0]
    assert torch.equal(x, torch.tensor([[1.0, 1.0], [1.0, 0.0]]))


def test_a_wide_picture_is_padded_to_a_square_with_white():
    img = Image.new("L", (4, 2), 0)                  # 4 wide, 2 tall, black
    x = prepare_upload(png(img), size=4, invert=False).tensor[0, 0]
    assert torch.equal(x[0], torch.ones(4)) and torch.equal(x[3], torch.ones(4))   # padding rows: white
    assert torch.equal(x[1:3], torch.zeros(2, 4))                                  # the picture: black


def test_three_channel_models_get_rgb_and_one_channel_models_grey():
    img = Image.new("RGB", (2, 2), (255, 0, 0))
    rgb = prepare_upload(png(img), size=2, in_channels=3, invert=False).tensor
    assert rgb.shape == (1, 3, 2, 2)
    assert torch.equal(rgb[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    grey = prepare_upload(png(img), size=2, invert=False).tensor
    assert grey.shape == (1, 1, 2, 2)
    assert abs(float(grey[0, 0, 0, 0]) - 76 / 255) < 1 / 255   # ITU-R 601 luma of pure red: 0.299·255 ≈ 76


def test_not_an_image_is_one_sentence():
    with pytest.raises(ImageError, match="not an image"):
        prepare_upload(b"hello", size=4)


def test_a_16_bit_png_is_scaled_by_its_bit_depth_not_clipped_to_white():
    img = Image.new("I;16", (6, 6), 30000)          # 30000 / 65535 = 0.458
    img.paste(Image.new("I;16", (3, 6), 60000), (0, 0))  # left half 60000 / 65535 = 0.916
    assert Image.open(io.BytesIO(png(img))).mode.startswith("I")
    x = prepare_upload(png(img), size=6, invert=False).tensor[0, 0]
    assert x[:, 4:].mean().item() == pytest.approx(30000 / 65535, abs=0.01)
    assert x[:, :2].mean().item() == pytest.approx(60000 / 65535, abs=0.01)
    # and "auto" inversion decides on the real brightness: mean ≈ 0.69 is light, so it is inverted
    assert prepare_upload(png(img), size=6).tensor[0, 0, :, 4:].mean().item() == pytest.approx(1 - 30000 / 65535,
                                                                                               abs=0.01)


def test_the_server_upload_limit_is_the_one_the_app_states():
    import tomllib

    from cnnlab.ui.analysis import MAX_UPLOAD_BYTES

    root = __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    with open(f"{root}/.streamlit/config.toml", "rb") as f:
        conf = tomllib.load(f)
    assert conf["server"]["maxUploadSize"] * 1024 * 1024 == MAX_UPLOAD_BYTES
    with pytest.raises(ImageError, match="limit is"):
        prepare_upload(b"\x89PNG" + b"\0" * MAX_UPLOAD_BYTES, size=28)
