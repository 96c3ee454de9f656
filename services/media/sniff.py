"""Tell what a file really is from its first bytes, whatever its name or Content-Type says.

Pure Python on purpose: the download path (monitor, URL ingestion) uses it without loading
OpenCV or PyAV. The file names the app takes as a video or an image are defined here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SNIFF_BYTES = 64

# The names the app opens as a video or an image, in the order sentences list them: PyAV
# reads every container here, the bundled Pillow every image kind (AVIF included). HEIC is
# recognised below but Pillow has no HEIF decoder, so `.heic` is no image name here and a
# HEIC file gets "a format this app cannot read; export it as JPEG or PNG".
VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif")
# The image formats (Pillow's names) every provider takes; any other image fails the format
# check, and there is no one-click conversion for images.
PROVIDER_IMAGE_FORMATS = ("png", "jpeg", "webp")

Kind = Literal["video", "image", "html", "text", "unknown"]

_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    mime: str
    ext: str  # with the dot, "" when unknown

    def describe(self) -> str:
        """'a PNG image', 'an MP4 video', 'a web page (HTML)', ... for sentences."""
        if self.kind == "html":
            return "a web page (HTML)"
        if self.kind == "text":
            return "a text document"
        if self.kind == "unknown":
            return "not a video or image file"
        label = self.ext.lstrip(".").upper() or self.mime
        return f"{article(label)} {label} {self.kind}"


def article(label: str) -> str:
    """'a' or 'an' before a format's name read letter by letter or as a word: an MP4, an
    AVIF, an HTML page; a PNG, a GIF."""
    return "an" if label[:1].upper() in "AEFHILMNORSX" else "a"


def sniff(head: bytes) -> Sniffed:
    """Classify the first bytes (give at least SNIFF_BYTES when the file has them)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return Sniffed(
                "image",
                "image/heic" if brand[:3] == b"hei" else "image/avif",
                ".heic" if brand[:3] == b"hei" else ".avif",
            )
        if brand == b"qt  ":
            return Sniffed("video", "video/quicktime", ".mov")
        return Sniffed("video", "video/mp4", ".mp4")
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return Sniffed("video", "video/quicktime", ".mov")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return Sniffed("video", "video/webm", ".webm")
        return Sniffed("video", "video/x-matroska", ".mkv")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("video", "video/x-msvideo", ".avi")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp", ".webp")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png", ".png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg", ".jpg")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "image/gif", ".gif")
    if head[:2] == b"BM":
        return Sniffed("image", "image/bmp", ".bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image", "image/tiff", ".tiff")
    text = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"<"):
        return Sniffed("html", "text/html", ".html")
    if text[:1] in (b"{", b"["):
        return Sniffed("text", "application/json", ".json")
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return Sniffed("text", "text/plain", ".txt")
    return Sniffed("unknown", "application/octet-stream", "")
