"""Recordings made at test time by the tools people record and convert with.

Each variant is written the way its tool writes it in the field: WAVs that a recorder streams
go through a real pipe (``| cat >``), so the header keeps the tool's own "length not known yet"
values. A few variants that no installed tool writes (an ID3v2.2 tag, an ID3v2.4 footer, an odd
chunk without its pad byte, chunks after ``data``) are spliced by hand into a file a tool made,
and say so. ``build_recordings(folder)`` makes them all, once per test session.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("ffmpeg", "sox", "lame", "espeak-ng", "arecord", "gst-launch-1.0", "sndfile-convert")


@dataclass(frozen=True)
class Recording:
    name: str
    data: bytes
    format: str  # "wav" or "mp3": what the API receives
    channels: int
    sample_rate: int
    seconds: float  # the true duration, within ``tolerance``
    tolerance: float = 0.1


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _sh(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)  # fmt: skip


def _lame(rate: int, options: str, name: str) -> str:
    source = f"tone-{rate}.wav"
    tone = f"sox -n -r {rate} -c 1 -b 16 {source} synth 2 sine 440"
    return f"{tone} && lame --quiet {options} {source} {name}"


def _ff(arguments: str) -> str:
    return f"ffmpeg -nostdin -hide_banner -loglevel error -y {arguments}"


def _synchsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _with_riff_size(data: bytearray) -> bytes:
    struct.pack_into("<I", data, 4, len(data) - 8)
    return bytes(data)


def _chunk(chunk_id: bytes, body: bytes, pad: bool = True) -> bytes:
    padding = b"\0" if pad and len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body)) + body + padding


def _spliced_wavs(base: bytes) -> dict[str, bytes]:
    """Chunks real files carry, spliced into a canonical 44-byte-header WAV made by sox."""
    header, samples = base[:36], base[36:]  # RIFF + fmt | data chunk
    ixml = b"<BWFXML><PROJECT>odd</PROJECT></BWFXML>"  # odd length
    assert len(ixml) % 2
    many = b"".join(_chunk(tag, bytes(300)) for tag in (b"JUNK", b"bext", b"PAD ", b"axml"))
    return {
        "odd-chunk-padded.wav": _with_riff_size(
            bytearray(header + _chunk(b"iXML", ixml) + samples)
        ),
        "odd-chunk-unpadded.wav": _with_riff_size(
            bytearray(header + _chunk(b"iXML", ixml, pad=False) + samples)
        ),
        "many-chunks.wav": _with_riff_size(
            bytearray(header + many + _chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 4) + b"sox\0")
                      + _chunk(b"JUNK", bytes(200_000)) + samples)
        ),
        "chunks-after-data.wav": _with_riff_size(
            bytearray(base + _chunk(b"LIST", b"INFOICMT" + struct.pack("<I", 9) + b"recorder\0")
                      + _chunk(b"id3 ", b"ID3\x04\x00\x00" + _synchsafe(0)))
        ),
    }  # fmt: skip


def _tagged_mp3s(frames: bytes) -> dict[str, bytes]:
    """ID3v2 variants no installed tool writes, around frames lame made."""
    v22_frame = b"TT2" + (len(b"\0a v2.2 title")).to_bytes(3, "big") + b"\0a v2.2 title"
    v22 = b"ID3\x02\x00\x00" + _synchsafe(len(v22_frame) + 50) + v22_frame + bytes(50)
    v24_body = b"TIT2" + _synchsafe(8) + b"\x00\x03footer"
    v24_footer = (
        b"ID3\x04\x00\x10" + _synchsafe(len(v24_body)) + v24_body
        + b"3DI\x04\x00\x10" + _synchsafe(len(v24_body))
    )  # fmt: skip
    # Unsynchronisation: every 0xFF in the tag is followed by 0x00, and the flag says so.
    unsync_body = b"TIT2\x00\x00\x00\x05\x00\x00\x03\xff\x00\xfe" + bytes(20)
    unsync = b"ID3\x03\x80\x00" + _synchsafe(len(unsync_body)) + unsync_body
    # Junk between the tag and the first frame, with false sync words a decoder must skip.
    junk = b"ID3\x03\x00\x00" + _synchsafe(0) + b"\xff\xfb\x00junk\xff\xe0" * 100 + bytes(777)
    return {
        "id3v22.mp3": v22 + frames,
        "id3v24-footer.mp3": v24_footer + frames,
        "id3-unsync.mp3": unsync + frames,
        "junk-before-frames.mp3": junk + frames,
        "no-tag.mp3": frames,
    }


def _vbri_instead_of_xing(vbr: bytes) -> bytes:
    """A lame VBR file whose first frame says VBRI (as Fraunhofer encoders write) instead of
    Xing: the same frame count, so only a reader of VBRI gets the duration right."""
    assert vbr[21:25] == b"Xing"  # mono MPEG-1: 4 header bytes, 17 of side information
    flags, frames, size = struct.unpack_from(">III", vbr, 25)
    assert flags & 3 == 3
    first = _mpeg1_frame_length(vbr[:4])
    vbri = b"VBRI" + struct.pack(">HHHIIHHHH", 1, 0, 75, size, frames, 0, 1, 2, 0)
    frame = vbr[:4] + bytes(32) + vbri
    return frame + bytes(first - len(frame)) + vbr[first:]


def _mpeg1_frame_length(header: bytes) -> int:
    bitrates = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
    rates = (44100, 48000, 32000)
    bitrate, rate = bitrates[header[2] >> 4], rates[(header[2] >> 2) & 3]
    return 144 * bitrate * 1000 // rate + ((header[2] >> 1) & 1)


def build_recordings(folder: Path) -> dict[str, Recording]:
    """Every WAV and MP3 variant, by file name; none needs more than a second or two to make."""
    folder.mkdir(parents=True, exist_ok=True)
    sine = "-f lavfi -i sine=frequency=440:duration=2"
    stereo = (
        "-f lavfi -i sine=frequency=300:duration=2 -f lavfi -i sine=frequency=500:duration=2 "
        "-filter_complex amerge=inputs=2"
    )
    noise = '"nullsrc=s=400x400,geq=random(1)*255:random(1)*255:random(1)*255"'  # ~380 KB PNG
    mp3 = "-c:a libmp3lame -b:a 64k"
    commands = {
        # Streamed through pipes: the header keeps each tool's placeholder lengths.
        "ffmpeg-pipe.wav": _ff(f"{sine} -ar 16000 -f wav pipe:1") + " | cat > ffmpeg-pipe.wav",
        "ffmpeg-rf64-pipe.wav": _ff(f"{sine} -ar 16000 -rf64 always -f wav pipe:1")
        + " | cat > ffmpeg-rf64-pipe.wav",
        "sox-pipe.wav": _ff(f"{sine} -ar 16000 -f s16le pipe:1")
        + " | sox -t raw -r 16000 -e signed -b 16 -c 1 - -t wav - | cat > sox-pipe.wav",
        "espeak-ng.wav": "espeak-ng --stdout 'the quarterly numbers are in' | cat > espeak-ng.wav",
        # wavenc fails at the end when it cannot seek back to fix the header: that is the point.
        "gstreamer-pipe.wav": "(gst-launch-1.0 -q audiotestsrc num-buffers=20 samplesperbuffer=800"
        " ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! wavenc ! fdsink fd=1"
        " 2>/dev/null || true) | cat > gstreamer-pipe.wav",
        # arecord records from ALSA's null device until the pipe closes.
        "arecord-pipe.wav": "(arecord -q -D null -f S16_LE -r 8000 -c 1 -t wav - 2>/dev/null"
        " || true) | head -c 16044 | cat > arecord-pipe.wav",
        # Written to files by each tool, headers finished.
        "ffmpeg-rf64.wav": _ff(f"{sine} -ar 16000 -rf64 always ffmpeg-rf64.wav"),
        "ffmpeg-bext.wav": _ff(f"{sine} -ar 16000 -write_bext 1 -metadata title=A ffmpeg-bext.wav"),
        "pcm-u8.wav": _ff(f"{sine} -ar 8000 -c:a pcm_u8 pcm-u8.wav"),
        "pcm-s24-extensible.wav": _ff(f"{sine} -ar 48000 -c:a pcm_s24le pcm-s24-extensible.wav"),
        "pcm-s32.wav": _ff(f"{sine} -ar 16000 -c:a pcm_s32le pcm-s32.wav"),
        "float32.wav": _ff(f"{sine} -ar 16000 -c:a pcm_f32le float32.wav"),
        "mulaw.wav": _ff(f"{sine} -ar 8000 -c:a pcm_mulaw mulaw.wav"),
        "alaw.wav": _ff(f"{sine} -ar 8000 -c:a pcm_alaw alaw.wav"),
        "adpcm-ms.wav": _ff(f"{sine} -ar 16000 -c:a adpcm_ms adpcm-ms.wav"),
        "adpcm-ima.wav": _ff(f"{sine} -ar 16000 -c:a adpcm_ima_wav adpcm-ima.wav"),
        "gsm.wav": "sox -n -r 8000 -c 1 -e gsm-full-rate gsm.wav synth 2 sine 440",
        "libsndfile.wav": "sox -n -r 16000 -c 1 -b 16 src.wav synth 2 sine 440 &&"
        " sndfile-convert -pcm24 src.wav libsndfile.wav",
        # MP3 from lame and ffmpeg.
        "lame-cbr.mp3": _lame(44100, "-b 64", "lame-cbr.mp3"),
        "lame-vbr.mp3": _lame(44100, "-V 4", "lame-vbr.mp3"),
        "mpeg2.mp3": _lame(22050, "-b 32", "mpeg2.mp3"),
        "mpeg25.mp3": _lame(8000, "-b 16", "mpeg25.mp3"),
        "id3v1.mp3": _lame(44100, "-b 64 --id3v1-only --tt Call", "id3v1.mp3"),
        "ffmpeg-pipe.mp3": _ff(f"{sine} -ar 44100 -f mp3 pipe:1") + " | cat > ffmpeg-pipe.mp3",
        "cover-art.mp3": _ff(f"-f lavfi -i {noise} -frames:v 1 cover.png") + " && "
        + _ff(f"{sine} -i cover.png -map 0 -map 1 {mp3} -c:v copy -id3v2_version 3 cover-art.mp3"),
        "id3v24.mp3": _ff(f"{sine} {mp3} -metadata title=Call -id3v2_version 4 id3v24.mp3"),
        # Stereo, for the stereo policy.
        "stereo-pcm.wav": _ff(f"{stereo} -ar 16000 stereo-pcm.wav"),
        "stereo-mulaw.wav": _ff(f"{stereo} -ar 8000 -c:a pcm_mulaw stereo-mulaw.wav"),
        "stereo-adpcm.wav": _ff(f"{stereo} -ar 16000 -c:a adpcm_ms stereo-adpcm.wav"),
        "stereo.mp3": _ff(f"{stereo} -ar 44100 -c:a libmp3lame -b:a 96k stereo.mp3"),
        # Other containers.
        "call.m4a": _ff(f"{stereo} -ar 44100 -c:a aac -b:a 64k call.m4a"),
        "call.flac": _ff(f"{sine} -ar 16000 call.flac"),
    }  # fmt: skip
    for command in commands.values():
        _sh(command, folder)
    made = {name: (folder / name).read_bytes() for name in commands}
    recordings = {name: _describe(name, data) for name, data in made.items()}
    sox_wav = (folder / "src.wav").read_bytes()
    for name, data in _spliced_wavs(sox_wav).items():
        recordings[name] = Recording(name, data, "wav", 1, 16000, 2.0, 0.01)
    vbri = _vbri_instead_of_xing(made["lame-vbr.mp3"])
    recordings["vbri.mp3"] = Recording("vbri.mp3", vbri, "mp3", 1, 44100, 2.0)
    lame_frames = made["lame-cbr.mp3"]
    for name, data in _tagged_mp3s(lame_frames).items():
        recordings[name] = Recording(name, data, "mp3", 1, 44100, 2.0)
    # A large APE tag at the end (as foobar2000 and mp3gain write), by mutagen's own APEv2 writer.
    from mutagen.apev2 import APEv2

    ape_path = folder / "ape-tag.mp3"
    ape_path.write_bytes(lame_frames)
    tag = APEv2()
    tag["Title"] = "call"
    tag["Comment"] = "x" * 300_000
    tag.save(str(ape_path))
    recordings["ape-tag.mp3"] = Recording(
        "ape-tag.mp3", ape_path.read_bytes(), "mp3", 1, 44100, 2.0
    )
    return recordings


# name -> (format, channels, sample rate, seconds, tolerance) of what the tools make.
_EXPECTED: dict[str, tuple[str, int, int, float, float]] = {
    "ffmpeg-pipe.wav": ("wav", 1, 16000, 2.0, 0.01),
    "ffmpeg-rf64-pipe.wav": ("wav", 1, 16000, 2.0, 0.01),
    "sox-pipe.wav": ("wav", 1, 16000, 2.0, 0.01),
    "espeak-ng.wav": ("wav", 1, 22050, 1.9, 0.8),
    "gstreamer-pipe.wav": ("wav", 1, 8000, 2.0, 0.01),
    "arecord-pipe.wav": ("wav", 1, 8000, 1.0, 0.01),
    "ffmpeg-rf64.wav": ("wav", 1, 16000, 2.0, 0.01),
    "ffmpeg-bext.wav": ("wav", 1, 16000, 2.0, 0.01),
    "pcm-u8.wav": ("wav", 1, 8000, 2.0, 0.01),
    "pcm-s24-extensible.wav": ("wav", 1, 48000, 2.0, 0.01),
    "pcm-s32.wav": ("wav", 1, 16000, 2.0, 0.01),
    "float32.wav": ("wav", 1, 16000, 2.0, 0.01),
    "mulaw.wav": ("wav", 1, 8000, 2.0, 0.01),
    "alaw.wav": ("wav", 1, 8000, 2.0, 0.01),
    "adpcm-ms.wav": ("wav", 1, 16000, 2.0, 0.05),
    "adpcm-ima.wav": ("wav", 1, 16000, 2.0, 0.05),
    "gsm.wav": ("wav", 1, 8000, 2.0, 0.05),
    "libsndfile.wav": ("wav", 1, 16000, 2.0, 0.01),
    "lame-cbr.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "lame-vbr.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "mpeg2.mp3": ("mp3", 1, 22050, 2.0, 0.1),
    "mpeg25.mp3": ("mp3", 1, 8000, 2.1, 0.1),
    "id3v1.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "ffmpeg-pipe.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "cover-art.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "id3v24.mp3": ("mp3", 1, 44100, 2.0, 0.1),
    "stereo-pcm.wav": ("wav", 2, 16000, 2.0, 0.01),
    "stereo-mulaw.wav": ("wav", 2, 8000, 2.0, 0.01),
    "stereo-adpcm.wav": ("wav", 2, 16000, 2.0, 0.05),
    "stereo.mp3": ("mp3", 2, 44100, 2.0, 0.1),
    "call.m4a": ("m4a", 2, 44100, 2.0, 0.1),
    "call.flac": ("flac", 1, 16000, 2.0, 0.1),
}


def _describe(name: str, data: bytes) -> Recording:
    kind, channels, rate, seconds, tolerance = _EXPECTED[name]
    return Recording(name, data, kind, channels, rate, seconds, tolerance)


MONO_VARIANTS = (
    *(name for name, spec in _EXPECTED.items() if spec[0] in ("wav", "mp3") and spec[1] == 1),
    "odd-chunk-padded.wav", "odd-chunk-unpadded.wav", "many-chunks.wav", "chunks-after-data.wav",
    "id3v22.mp3", "id3v24-footer.mp3", "id3-unsync.mp3", "junk-before-frames.mp3", "no-tag.mp3",
    "ape-tag.mp3", "vbri.mp3",
)  # fmt: skip
