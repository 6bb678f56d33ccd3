"""The emulator judges uploads with the daemon's inspector: real files, real refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from emulator_http import api_client
from real_recordings import Recording, build_recordings, missing_tools

from daemon.emulator import EmulatorServer

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    return build_recordings(tmp_path_factory.mktemp("recordings"))


class TestInspection:
    """What Symbl would refuse, the emulator refuses; what it would take, it takes."""

    @pytest.mark.parametrize(
        ("name", "query", "status"),
        [
            ("stereo.mp3", "", 400),
            ("stereo.mp3", "?enableSeparateRecognitionPerChannel=true", 201),
            ("stereo-pcm.wav", "", 400),
            ("cover-art.mp3", "", 201),
            ("ape-tag.mp3", "", 201),
            ("ffmpeg-rf64-pipe.wav", "", 201),
            ("call.m4a", "", 400),
        ],
    )
    def test_answers(
        self,
        emulator_factory: Callable[..., EmulatorServer],
        recordings: dict[str, Recording],
        name: str,
        query: str,
        status: int,
    ) -> None:
        with api_client(emulator_factory()) as client:
            answer = client.post(f"/v1/process/audio{query}", content=recordings[name].data)
        assert answer.status_code == status, answer.text

    def test_a_cover_picture_beyond_what_it_keeps_is_refused_clearly(
        self, emulator_factory: Callable[..., EmulatorServer], recordings: dict[str, Recording]
    ) -> None:
        frames = recordings["no-tag.mp3"].data * 100  # more than the tail it keeps
        body = 20 * 1024 * 1024
        tag = b"ID3\x03\x00\x00" + bytes(((body >> s) & 0x7F) for s in (21, 14, 7, 0))
        data = tag + bytes(body) + frames
        with api_client(emulator_factory()) as client:
            answer = client.post("/v1/process/audio", content=data)
        assert answer.status_code == 400
        assert "first 16777216 bytes" in answer.text

    def test_a_large_tag_within_what_it_keeps_is_fine(
        self, emulator_factory: Callable[..., EmulatorServer], recordings: dict[str, Recording]
    ) -> None:
        frames = recordings["no-tag.mp3"].data * 100
        body = 12 * 1024 * 1024
        tag = b"ID3\x03\x00\x00" + bytes(((body >> s) & 0x7F) for s in (21, 14, 7, 0))
        with api_client(emulator_factory()) as client:
            answer = client.post("/v1/process/audio", content=tag + bytes(body) + frames)
        assert answer.status_code == 201, answer.text
