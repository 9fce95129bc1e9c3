from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from emotions.batcher import MicroBatcher
from emotions.decoder import ImageRejected, decode_image
from emotions.detector import KEYPOINTS, BlazeFaceDetector, FaceTrack, HaarFaceDetector
from emotions.fake import FakeClassifier
from emotions.labels import EMOTIONS
from emotions.mood import MoodTracker
from emotions.pipeline import STAGES, EmotionPipeline
from emotions.preprocessing import align_face, faces_to_model_input, to_model_input

LIMITS = {"max_bytes": 4 * 1024 * 1024, "max_pixels": 4096 * 4096}


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


@pytest.fixture
def classifier() -> FakeClassifier:
    return FakeClassifier(version="fake-1")


@pytest.fixture
def pipeline(detector, classifier):
    batcher = MicroBatcher(classifier, max_batch=32, max_wait_ms=2, queue_size=16)
    yield EmotionPipeline(detector, batcher, classifier=classifier, **LIMITS)
    batcher.close()


def test_it_finds_and_classifies_the_face_in_a_frame(pipeline, astronaut_jpeg):
    result = pipeline.analyze_sync(astronaut_jpeg)

    assert len(result.faces) == 1
    face = result.faces[0]
    assert len(face.box) == 4
    assert set(face.probabilities) == set(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.dominant == max(face.probabilities, key=face.probabilities.get)
    assert (result.width, result.height) == (640, 480)
    assert result.model_version == "fake-1"


def test_it_classifies_the_crop_that_preprocessing_makes(pipeline, detector, astronaut_jpeg):
    from emotions.decoder import decode_image

    gray = decode_image(astronaut_jpeg, **LIMITS).gray

    result = pipeline.analyze_sync(astronaut_jpeg)

    expected = FakeClassifier().predict(faces_to_model_input(gray, detector.detect(gray)))[0]
    np.testing.assert_allclose(
        [result.faces[0].probabilities[label] for label in EMOTIONS], expected, rtol=1e-5
    )


def test_it_times_every_stage(pipeline, astronaut_jpeg):
    timings = pipeline.analyze_sync(astronaut_jpeg).timings_ms

    assert set(timings) == set(STAGES)
    assert all(value >= 0 for value in timings.values())
    assert timings["total"] >= timings["decode"] + timings["detect"]


def test_it_reports_no_faces_on_a_frame_without_one(pipeline, classifier, noise_jpeg):
    result = pipeline.analyze_sync(noise_jpeg)

    assert result.faces == []
    assert classifier.batch_sizes == []


def test_it_lets_a_refused_image_through_as_image_rejected(pipeline):
    with pytest.raises(ImageRejected) as caught:
        pipeline.analyze_sync(b"GIF89a" + bytes(100))

    assert caught.value.code == "unsupported_format"


async def test_it_updates_the_streams_mood(pipeline, astronaut_jpeg, noise_jpeg):
    clock = [0.0]
    tracker = MoodTracker(no_face_s=1.0, clock=lambda: clock[0])

    first = await pipeline.analyze(astronaut_jpeg, tracker)
    clock[0] = 2.0
    gone = await pipeline.analyze(noise_jpeg, tracker)

    assert first.mood.mood == first.faces[0].dominant or first.mood.mood == "uncertain"
    assert first.mood.changed
    assert gone.mood.mood == "no_face" and gone.mood.changed


async def test_it_analyses_frames_of_concurrent_streams_in_shared_batches(detector, astronaut_jpeg):
    import asyncio
    import time

    classifier = FakeClassifier()
    batcher: MicroBatcher

    def predict_when_all_have_arrived(faces: np.ndarray) -> np.ndarray:
        # Hold the first batch until the other streams have queued their faces.
        deadline = time.monotonic() + 10
        while not classifier.batch_sizes and batcher.pending < 6 - len(faces) and time.monotonic() < deadline:
            time.sleep(0.005)
        return classifier.predict(faces)

    with MicroBatcher(predict_when_all_have_arrived, max_batch=32, max_wait_ms=5, queue_size=64) as batcher:
        pipeline = EmotionPipeline(detector, batcher, **LIMITS)
        results = await asyncio.gather(*(pipeline.analyze(astronaut_jpeg) for _ in range(6)))

    assert all(len(result.faces) == 1 for result in results)
    assert len(classifier.batch_sizes) == 2 and sum(classifier.batch_sizes) == 6


async def test_streams_frames_are_prepared_by_its_own_few_threads(detector, classifier, astronaut_jpeg):
    import asyncio
    import threading

    seen: set[str] = set()

    class Recording:
        def detect(self, gray):
            seen.add(threading.current_thread().name)
            return detector.detect(gray)

    with MicroBatcher(classifier.predict, max_batch=32, max_wait_ms=0, queue_size=64) as batcher:
        pipeline = EmotionPipeline(Recording(), batcher, threads=2, **LIMITS)
        results = await asyncio.gather(*(pipeline.analyze(astronaut_jpeg) for _ in range(12)))
        pipeline.close()

    # Each thread keeps its own detector interpreters: their number, not the event loop's, bounds them.
    assert all(len(result.faces) == 1 for result in results)
    assert 1 <= len(seen) <= 2 and all(name.startswith("attune-perception") for name in seen)


async def test_an_inline_batcher_has_the_perception_threads_classify_their_own_faces(
    detector, classifier, astronaut_jpeg
):
    import asyncio
    import threading

    classified_in: set[str] = set()

    def predict(faces):
        classified_in.add(threading.current_thread().name)
        return classifier.predict(faces)

    with MicroBatcher(predict, queue_size=64, inline=True) as batcher:
        pipeline = EmotionPipeline(detector, batcher, threads=2, **LIMITS)
        results = await asyncio.gather(*(pipeline.analyze(astronaut_jpeg) for _ in range(6)))
        pipeline.close()

    assert all(len(result.faces) == 1 and result.timings_ms["classify"] > 0 for result in results)
    assert classified_in and all(name.startswith("attune-perception") for name in classified_in)
    assert batcher.stats.faces == 6


@pytest.mark.parametrize("inline", [True, False], ids=["inline batcher", "batch worker"])
async def test_without_perception_threads_the_event_loop_prepares_stream_frames_itself(
    detector, classifier, astronaut_jpeg, inline
):
    import threading

    prepared_in: set[str] = set()

    class Recording:
        def detect(self, gray):
            prepared_in.add(threading.current_thread().name)
            return detector.detect(gray)

    with MicroBatcher(classifier.predict, queue_size=64, inline=inline) as batcher:
        pipeline = EmotionPipeline(Recording(), batcher, threads=0, **LIMITS)
        result = await pipeline.analyze(astronaut_jpeg, MoodTracker(), track=FaceTrack(phase=0))
        with pytest.raises(ImageRejected):
            await pipeline.analyze(b"not an image")
        pipeline.close()

    assert prepared_in == {threading.current_thread().name}
    assert len(result.faces) == 1 and result.mood is not None
    assert set(result.timings_ms) == set(STAGES) and result.timings_ms["classify"] > 0
    assert batcher.stats.faces == 1


async def test_without_perception_threads_frames_that_arrive_together_take_turns_with_the_loop(
    detector, classifier, astronaut_jpeg
):
    import asyncio

    events: list[str] = []

    class Recording:
        def detect(self, gray):
            events.append("analyse")
            return detector.detect(gray)

    async def visitor(pipeline, number):
        await pipeline.analyze(astronaut_jpeg)
        # Twisted writes an answer when the event loop next polls: as a callback of its next turn.
        asyncio.get_running_loop().call_soon(events.append, f"sent {number}")

    with MicroBatcher(classifier.predict, queue_size=64, inline=True) as batcher:
        pipeline = EmotionPipeline(Recording(), batcher, threads=0, **LIMITS)
        await asyncio.gather(*(visitor(pipeline, number) for number in range(3)))
        pipeline.close()

    # Each answer goes out before the next frame is analysed, not all of them after the last one.
    assert events == ["analyse", "sent 0", "analyse", "sent 1", "analyse", "sent 2"]


async def test_without_perception_threads_a_large_frame_is_still_prepared_off_the_event_loop(
    detector, classifier, astronaut_gray, astronaut_jpeg
):
    import threading

    from emotions.pipeline import LOOP_MAX_PIXELS
    from tests.emotions.conftest import encode

    prepared_in: list[str] = []

    class Recording:
        def detect(self, gray):
            prepared_in.append(threading.current_thread().name)
            return detector.detect(gray)

    large = encode(cv2.resize(astronaut_gray, (1600, 1200)), ".jpg")
    assert 640 * 480 <= LOOP_MAX_PIXELS < 1600 * 1200
    with MicroBatcher(classifier.predict, queue_size=64, inline=True) as batcher:
        pipeline = EmotionPipeline(Recording(), batcher, threads=0, **LIMITS)
        small_result = await pipeline.analyze(astronaut_jpeg)
        large_result = await pipeline.analyze(large)
        pipeline.close()

    # A full scan of a large frame would hold every other visitor's frames up: one thread takes those.
    assert prepared_in[0] == threading.current_thread().name
    assert prepared_in[1].startswith("attune-perception-large")
    assert len(small_result.faces) == 1 and len(large_result.faces) == 1


def test_it_classifies_the_faces_of_several_images_in_one_batch(
    pipeline, classifier, astronaut_jpeg, noise_jpeg
):
    results = pipeline.analyze_many_sync([astronaut_jpeg, noise_jpeg, b"not an image", astronaut_jpeg])

    assert classifier.batch_sizes == [2]
    assert len(results[0].faces) == 1 and results[1].faces == []
    assert isinstance(results[2], ImageRejected) and results[2].code == "unsupported_format"
    assert results[3].faces[0].probabilities == results[0].faces[0].probabilities
    assert set(results[0].timings_ms) == set(STAGES)


def test_its_results_are_json_ready(pipeline, astronaut_jpeg):
    tracker = MoodTracker()

    result = pipeline.analyze_sync(astronaut_jpeg, tracker).as_dict()

    decoded = json.loads(json.dumps(result))
    assert decoded["faces"][0]["box"] == list(result["faces"][0]["box"])
    assert set(decoded) == {
        "faces",
        "width",
        "height",
        "model_version",
        "timings_ms",
        "mood",
        "confidence",
        "mood_changed",
    }
    assert decoded["mood"] in (*EMOTIONS, "uncertain")
    assert decoded["faces"][0]["confidence"] == max(decoded["faces"][0]["probabilities"].values())


async def test_it_follows_a_streams_faces_from_frame_to_frame(pipeline, astronaut_jpeg):
    track = FaceTrack(phase=0)

    results = [await pipeline.analyze(astronaut_jpeg, MoodTracker(), track=track) for _ in range(3)]

    assert track.full_scans == 1
    assert all(len(result.faces) == 1 for result in results)


# --- Keypoints and alignment (BlazeFace) ---------------------------------------------------------


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture
def blaze_pipeline(blazeface, classifier):
    batcher = MicroBatcher(classifier, max_batch=32, max_wait_ms=2, queue_size=16)
    yield EmotionPipeline(blazeface, batcher, classifier=classifier, **LIMITS)
    batcher.close()


def test_it_reports_each_faces_keypoints_in_frame_pixels(blaze_pipeline, astronaut_jpeg):
    face = blaze_pipeline.analyze_sync(astronaut_jpeg).faces[0].as_dict()

    assert set(face) == {"box", "keypoints", "probabilities", "dominant", "confidence"}
    assert set(face["keypoints"]) == set(KEYPOINTS)
    x, y, w, h = face["box"]
    for name in ("right_eye", "left_eye", "nose_tip", "mouth"):
        px, py = face["keypoints"][name]
        assert x <= px <= x + w and y <= py <= y + h
    assert json.loads(json.dumps(face)) == face


def test_it_reports_no_keypoints_from_a_detector_without_them(pipeline, astronaut_jpeg):
    face = pipeline.analyze_sync(astronaut_jpeg).faces[0].as_dict()

    assert face["keypoints"] is None


def test_it_classifies_the_aligned_face_when_the_detector_gives_eyes(
    blaze_pipeline, blazeface, astronaut_jpeg
):
    from emotions.decoder import decode_image

    gray = decode_image(astronaut_jpeg, **LIMITS).gray
    face = blazeface.detect(gray)[0]

    result = blaze_pipeline.analyze_sync(astronaut_jpeg)

    expected = FakeClassifier().predict(to_model_input(align_face(gray, face.eyes, max(face.box[2:]))[None]))[
        0
    ]
    np.testing.assert_allclose(
        [result.faces[0].probabilities[label] for label in EMOTIONS], expected, rtol=1e-5
    )


def test_the_rest_api_serializer_accepts_what_the_pipeline_reports(blaze_pipeline, pipeline, astronaut_jpeg):
    from emotions.apis import FaceSerializer

    for engine in (blaze_pipeline, pipeline):
        face = engine.analyze_sync(astronaut_jpeg).faces[0].as_dict()
        serializer = FaceSerializer(data=face)

        assert serializer.is_valid(), serializer.errors
        assert set(FaceSerializer().fields) == set(face)


async def test_it_follows_a_streams_faces_with_blazeface(blaze_pipeline, astronaut_jpeg):
    track = FaceTrack(phase=0)

    results = [await blaze_pipeline.analyze(astronaut_jpeg, MoodTracker(), track=track) for _ in range(3)]

    assert (track.full_scans, track.quick_scans) == (0, 1)  # the first frame's coarse look found it
    assert all(len(result.faces) == 1 and result.faces[0].keypoints for result in results)


# --- A stream's faces seen from one side per frame -------------------------------------------------


class OneViewClassifier(FakeClassifier):
    """The fake classifier with a one-view answer, recording which side each call asked for."""

    def __init__(self) -> None:
        super().__init__(version="views")
        self.sides: list[bool | None] = []

    def predict(self, faces: np.ndarray) -> np.ndarray:
        self.sides.append(None)
        return super().predict(faces)

    def predict_view(self, faces: np.ndarray, *, mirrored: bool) -> np.ndarray:
        self.sides.append(mirrored)
        return super().predict(faces[:, :, ::-1, :] if mirrored else faces)


@pytest.mark.parametrize("inline", [True, False])
def test_a_stream_shows_the_classifier_its_faces_and_their_mirror_images_in_turn(
    detector, astronaut_jpeg, inline
):
    classifier = OneViewClassifier()
    with MicroBatcher(classifier, inline=inline) as batcher:
        pipeline = EmotionPipeline(detector, batcher, classifier=classifier, **LIMITS)
        stream = {"tracker": MoodTracker(), "track": FaceTrack(phase=0)}
        results = [pipeline.analyze_sync(astronaut_jpeg, **stream) for _ in range(4)]
        alone = pipeline.analyze_sync(astronaut_jpeg)

    if inline:  # where faces are classified as they are cut out (LiteRT): one side per frame
        assert classifier.sides == [False, True, False, True, None]
    else:  # batched faces of many streams are classified whole
        assert classifier.sides == [None] * 5
    assert all(len(result.faces) == 1 for result in [*results, alone])


def test_with_alternate_views_off_every_stream_frame_gets_both_views(detector, astronaut_jpeg):
    classifier = OneViewClassifier()
    with MicroBatcher(classifier, inline=True) as batcher:
        pipeline = EmotionPipeline(detector, batcher, classifier=classifier, alternate_views=False, **LIMITS)
        stream = {"tracker": MoodTracker(), "track": FaceTrack(phase=0)}
        for _ in range(3):
            pipeline.analyze_sync(astronaut_jpeg, **stream)

    assert classifier.sides == [None, None, None]


def test_a_classifier_without_a_one_view_answer_classifies_every_frame_whole(detector, astronaut_jpeg):
    classifier = FakeClassifier(version="whole")
    with MicroBatcher(classifier, inline=True) as batcher:
        pipeline = EmotionPipeline(detector, batcher, classifier=classifier, **LIMITS)
        stream = {"tracker": MoodTracker(), "track": FaceTrack(phase=0)}
        result = [pipeline.analyze_sync(astronaut_jpeg, **stream) for _ in range(2)][1]

    gray = decode_image(astronaut_jpeg, **LIMITS).gray
    face = faces_to_model_input(gray, [result.faces[0].box])
    answer = [result.faces[0].probabilities[label] for label in EMOTIONS]
    np.testing.assert_allclose(answer, FakeClassifier().predict(face)[0], rtol=1e-5)


def test_the_inline_fake_backend_is_classified_in_the_callers_thread_as_litert_is(settings, monkeypatch):
    """The live bench's ``fake-inline`` backend: a frame's cost with a classifier that costs nothing."""
    import threading

    from emotions.fake import InlineFakeClassifier
    from emotions.services import emotion_engine

    settings.EMOTIONS_BACKEND = "emotions.fake.InlineFakeClassifier"
    engine = emotion_engine()
    backend = engine.classifier.backend
    classified_in: list[str] = []
    predict = backend.predict

    def recording(faces):
        classified_in.append(threading.current_thread().name)
        return predict(faces)

    monkeypatch.setattr(backend, "predict", recording)
    faces = np.zeros((2, 48, 48, 1), dtype=np.float32)
    faces[0, 14:20] = 1.0  # bright in the third band of rows of seven: EMOTIONS[2]

    probabilities = engine.batcher.classify_sync(faces, timeout=30)

    assert isinstance(backend, InlineFakeClassifier) and engine.batcher.inline
    assert EMOTIONS[int(np.argmax(probabilities[0]))] == EMOTIONS[2]
    assert classified_in == [threading.current_thread().name]
