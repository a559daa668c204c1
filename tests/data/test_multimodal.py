"""The multimodal dataset: real video files with a sound track made from the scene, captions that
name what is in each clip, and colour-motion pairs held out of training; and reading sound back.
"""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_one_line_error, call_signature_in_subprocess, vlm_tf

from vlm_tf.data import multimodal, read_frames, write_video
from vlm_tf.data.audio import read_audio
from vlm_tf.data.multimodal import (
    COLOURS,
    HELD_OUT_PAIRS,
    SAMPLE_RATE,
    soundtrack,
    write_multimodal_dataset,
)
from vlm_tf.inference import load_run
from vlm_tf.tasks.text_to_video import conditions

FRAMES, SIZE, FPS = 8, 32, 10.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("multimodal") / "data"
    manifest = write_multimodal_dataset(
        root, videos_per_class=3, heldout_per_pair=2, num_frames=FRAMES, size=SIZE, seed=4
    )
    return root, manifest


def _clips(root, split):
    return [
        (path, json.loads(path.with_suffix(".json").read_text()))
        for path in sorted((root / split).glob("*/*.mp4"))
    ]


def test_every_clip_has_its_frames_a_sound_track_and_captions_naming_its_attributes(dataset):
    root, manifest = dataset
    assert manifest["complete"] and manifest["splits"]["heldout"] == 2
    clips = [clip for split in ("train", "val", "test", "heldout") for clip in _clips(root, split)]
    assert len(clips) == 8 * 3 + len(HELD_OUT_PAIRS) * 2
    for path, meta in clips:
        attributes = meta["attributes"]
        assert path.parent.name == meta["label"] == attributes["motion"]
        assert read_frames(path).shape == (FRAMES, SIZE, SIZE, 3)
        sound = read_audio(path)
        assert sound.has_sound and sound.sample_rate == SAMPLE_RATE
        # The encoder's priming adds a few dozen milliseconds at the start.
        assert FRAMES / FPS <= sound.seconds <= FRAMES / FPS + 0.15
        assert np.abs(sound.samples).max() > 0.05
        assert len(set(meta["captions"])) == len(meta["captions"]) >= 3
        for caption in meta["captions"]:
            for name in ("colour", "shape", "size"):
                assert attributes[name] in caption, (caption, attributes)


def test_held_out_colour_motion_pairs_appear_only_in_the_heldout_split(dataset):
    root, _ = dataset
    held = {tuple(pair) for pair in HELD_OUT_PAIRS}
    for split in ("train", "val", "test"):
        for _, meta in _clips(root, split):
            assert (meta["attributes"]["colour"], meta["label"]) not in held
    heldout = {(meta["attributes"]["colour"], meta["label"]) for _, meta in _clips(root, "heldout")}
    assert heldout == held


def test_with_no_pair_held_out_every_colour_meets_every_motion_and_there_is_no_heldout_split(
    tmp_path,
):
    root = tmp_path / "judge"
    manifest = write_multimodal_dataset(
        root, videos_per_class=6, heldout_per_pair=0, num_frames=4, size=16, seed=4
    )
    assert "heldout" not in manifest["splits"] and manifest["held_out_pairs"] == []
    assert not (root / "heldout").exists()
    seen = {
        (meta["attributes"]["colour"], meta["label"])
        for split in ("train", "val", "test")
        for _, meta in _clips(root, split)
    }
    # 48 clips, 6 colours drawn freely: some held-out pair of the usual dataset shows up.
    assert seen & {tuple(pair) for pair in HELD_OUT_PAIRS}


def test_the_object_has_the_colour_its_captions_name(dataset):
    root, _ = dataset
    for path, meta in _clips(root, "train")[:6]:
        frame = read_frames(path)[FRAMES // 2].astype(float)
        x0, y0, x1, y1 = (round(v) for v in meta["boxes"][FRAMES // 2])
        inside = frame[y0:y1, x0:x1].reshape(-1, 3)
        named = np.asarray(COLOURS[meta["attributes"]["colour"]], float)
        # The object's pixels are the ones nearest the named colour; some are.
        nearest = np.linalg.norm(inside - named, axis=1).min()
        assert nearest < 60, (path.name, meta["attributes"]["colour"], nearest)


def _dominant_hz(samples):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spectrum) * SAMPLE_RATE / len(samples)


def test_the_pitch_follows_the_height_and_the_timbre_is_the_sound_attribute():
    rising = np.linspace(0.1, 0.9, FRAMES)
    sizes = np.full(FRAMES, 0.15)
    up = soundtrack("whistle", rising, sizes, FPS)
    quarter = len(up) // 4
    assert _dominant_hz(up[-quarter:]) > 1.5 * _dominant_hz(up[:quarter])
    down = soundtrack("whistle", rising[::-1], sizes, FPS)
    assert _dominant_hz(down[-quarter:]) < _dominant_hz(down[:quarter]) / 1.5

    level = np.full(FRAMES, 0.5)

    def third_harmonic_share(sound):
        spectrum = np.abs(np.fft.rfft(soundtrack(sound, level, sizes, FPS)))
        base = np.argmax(spectrum)
        return spectrum[3 * base - 2 : 3 * base + 3].max() / spectrum[base]

    assert third_harmonic_share("buzz") > 0.2 > third_harmonic_share("whistle")


def test_a_video_without_sound_reads_as_silence_of_its_length_with_a_flag(tmp_path):
    silent = tmp_path / "silent.mp4"
    write_video(silent, np.zeros((20, 32, 32, 3), np.uint8), fps=10.0)
    sound = read_audio(silent, sample_rate=8000)
    assert not sound.has_sound
    assert len(sound.samples) == 16000 and not sound.samples.any()
    assert len(read_audio(silent, seconds=0.5).samples) == SAMPLE_RATE // 2


def test_unreadable_sound_and_bad_make_data_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.mp4: no such file"):
        read_audio(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ValueError, match="broken.mp4: not a readable media file"):
        read_audio(broken)
    assert_one_line_error(
        vlm_tf("make-data", tmp_path / "d", "--task", "multimodal", "--heldout-per-pair", "-1"),
        "--heldout-per-pair",
    )


@pytest.fixture(scope="module")
def video_text_run(dataset, classify_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("video_text") / "run"
    # Its clips start from a classifier's backbone; --model and --size follow from it.
    done = vlm_tf(
        "train", dataset[0], "--task", "video_text", "--init", classify_run[0], "--out", run,
        "--epochs", 1, "--frames", FRAMES, "--partial-captions", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_composed_prompts_are_every_composition_each_naming_its_own_attributes():
    motions = ("move_left", "rotate_cw")
    compositions = list(multimodal.compositions(motions))
    per_motion = 2 * len(multimodal.SHAPES) * 2 * len(multimodal.COLOURS) * 4 * 3
    assert len(compositions) == 2 * per_motion
    assert len({tuple(sorted(a.items())) for a in compositions}) == len(compositions)
    # Held-out pairs are prompts too: the text side composes them.
    assert any(a["motion"] == "move_left" and a["colour"] == "red" for a in compositions)
    # The prompt (the captions' first phrasing) names exactly its composition's attributes.
    for attributes in compositions[:: len(compositions) // 97]:
        assert multimodal.attributes_in(multimodal.captions(attributes)[0]) == attributes


@pytest.mark.slow
def test_a_video_text_run_trains_on_captioned_clips_and_reports_retrieval(
    dataset, video_text_run, classify_run, tmp_path
):
    root, _ = dataset
    run = video_text_run
    # A backbone for other frames than --size asks is refused before anything is written.
    for task in ("video_text", "audio_visual"):
        out = tmp_path / task
        done = vlm_tf(
            "train", root, "--task", task, "--init", classify_run[0], "--size", 2 * SIZE,
            "--out", out,
        )  # fmt: skip
        assert_one_line_error(done, str(classify_run[0]), f"{SIZE}x{SIZE}", "--size")
        assert not out.exists()
    config = json.loads((run / "config.json").read_text())["run"]
    assert (config["model"], config["image_size"], config["partial_captions"]) == (
        "video_text",
        SIZE,
        True,
    )
    assert json.loads((run / "vocabulary.json").read_text())[:1] == ["a"]
    report = json.loads(vlm_tf("evaluate", run, root, "--json").stdout)
    for scores in (report, report["heldout"]):
        assert set(scores["text_to_video"]) == set(scores["video_to_text"]) == {"r1", "r5", "r10"}
        assert 0.0 <= scores["zero_shot_accuracy"] <= 1.0
        assert 0.0 <= scores["zero_shot_motion_prompts_accuracy"] <= 1.0
        by_name = scores["attribute_agreement_by_name"]
        assert set(by_name) == {"motion", "colour", "shape", "size", "speed", "background", "sound"}
        assert scores["attribute_agreement"] == pytest.approx(np.mean(list(by_name.values())))
    assert report["num_videos"] == 8 and report["heldout"]["num_videos"] == 16
    # Recall at 10 among 8 clips finds every one: the ranks are counted as they should be.
    assert report["text_to_video"]["r10"] == 1.0
    found = json.loads(
        vlm_tf(
            "retrieve", run, root / "test", "--text", "a small red star", "--top", 3, "--json"
        ).stdout
    )
    assert len(found) == 3 and all(os.path.isfile(item["path"]) for item in found)
    assert [item["similarity"] for item in found] == sorted(
        (item["similarity"] for item in found), reverse=True
    )
    video = str(sorted((root / "test").glob("*/*.mp4"))[0])
    prompts = ["something growing", "something moving left"]
    named = json.loads(vlm_tf("predict", run, video, "--prompts", *prompts, "--json").stdout)
    assert named[0]["label"] in prompts
    assert sum(named[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert_one_line_error(vlm_tf("predict", run, video, "--prompts", " "), "prompt needs words")
    assert_one_line_error(vlm_tf("retrieve", run, root, "--text", ""), "empty")
    # The SavedModel embeds clips and caption strings in plain TensorFlow, as the run does.
    saved = tmp_path / "saved_model"
    assert vlm_tf("export", run, "--out", saved).returncode == 0
    frames = read_frames(video)[None]
    np.save(tmp_path / "frames.npy", frames)
    serve = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "video = loaded.embed_video(frames=tf.constant(np.load(sys.argv[2])))['embedding']\n"
        "text = loaded.embed_text(text=tf.constant(sys.argv[3:]))['embedding']\n"
        "print(json.dumps((tf.matmul(text, video, transpose_b=True)[:, 0]).numpy().tolist()))"
    )
    served = subprocess.run(
        [sys.executable, "-c", serve, str(saved), str(tmp_path / "frames.npy"), *prompts],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    cosines = json.loads(served.stdout.strip().splitlines()[-1])
    # The same order of the prompts as the run's own zero-shot answer.
    assert prompts[int(np.argmax(cosines))] == named[0]["label"]
    # A folder without captions is named in one line.
    plain = tmp_path / "plain"
    (plain / "grow").mkdir(parents=True)
    write_video(plain / "grow" / "a.mp4", np.zeros((8, SIZE, SIZE, 3), np.uint8))
    assert_one_line_error(vlm_tf("evaluate", run, plain), "no video there has captions")


@pytest.mark.slow
def test_an_audio_visual_run_reports_each_modality_alone_and_serves_frames_with_sound(
    dataset, tmp_path
):
    root, _ = dataset
    run = tmp_path / "av"
    done = vlm_tf(
        "train", root, "--task", "audio_visual", "--label-attribute", "sound", "--out", run,
        "--epochs", 1, "--frames", FRAMES, "--size", SIZE, "--batch-size", 4, "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert (config["run"]["fusion"], config["run"]["label_attribute"]) == (
        "late",
        "sound",
    )
    train_clips = _clips(root, "train")
    labels = {f"{meta['label']}+{meta['attributes']['sound']}" for _, meta in train_clips}
    assert set(config["class_names"]) == labels
    heard = json.loads((run / "audio.json").read_text())
    assert heard["sample_rate"] == SAMPLE_RATE
    assert FRAMES / FPS <= heard["num_samples"] / SAMPLE_RATE <= FRAMES / FPS + 0.15
    # Scored on its own training folder: every label is one the run knows.
    report = json.loads(vlm_tf("evaluate", run, root / "train", "--json").stdout)
    assert report["num_videos"] == len(train_clips) and "skipped" not in report
    assert set(report["ablation"]) == {
        "video_only", "audio_only", "fused", "fused_without_audio", "fused_without_picture"
    }  # fmt: skip
    assert report["accuracy"] == report["ablation"]["fused"]
    # A video without a sound track is answered from its picture, with a word on stderr.
    video = train_clips[0][0]
    silent = tmp_path / "silent.mp4"
    write_video(silent, read_frames(video), fps=FPS)
    answered = vlm_tf("predict", run, silent, "--json")
    assert answered.returncode == 0 and "no sound track" in answered.stderr
    assert json.loads(answered.stdout)[0]["label"] in labels
    # The SavedModel takes uint8 frames and float32 samples, in plain TensorFlow, as the run does.
    predicted = json.loads(vlm_tf("predict", run, video, "--json").stdout)[0]["probabilities"]
    saved = tmp_path / "saved_model"
    assert vlm_tf("export", run, "--out", saved).returncode == 0
    sound = read_audio(video, seconds=heard["num_samples"] / SAMPLE_RATE).samples
    np.save(tmp_path / "frames.npy", read_frames(video)[None])
    np.save(tmp_path / "audio.npy", sound[None])
    serve = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "out = loaded.signatures['serving_default'](\n"
        "    frames=tf.constant(np.load(sys.argv[2])), audio=tf.constant(np.load(sys.argv[3])))\n"
        "print(json.dumps(out['probabilities'].numpy()[0].tolist()))"
    )
    served = subprocess.run(
        [sys.executable, "-c", serve, str(saved), tmp_path / "frames.npy", tmp_path / "audio.npy"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-3000:]
    probabilities = json.loads(served.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(probabilities, list(predicted.values()), atol=1e-4)
    # Bad input, each in one line: no sound anywhere, no attribute file, a dropout above 0.5.
    plain = tmp_path / "plain"
    for motion in ("grow", "shrink"):
        (plain / "train" / motion).mkdir(parents=True)
        write_video(plain / "train" / motion / "a.mp4", read_frames(video), fps=FPS)
    assert_one_line_error(
        vlm_tf("train", plain, "--task", "audio_visual", "--out", tmp_path / "r1", "--quiet"),
        "no video has a sound track",
    )
    assert_one_line_error(
        vlm_tf(
            "train",
            plain,
            "--task",
            "audio_visual",
            "--label-attribute",
            "sound",
            "--out",
            tmp_path / "r2",
            "--quiet",
        ),  # fmt: skip
        "a.json",
    )
    assert_one_line_error(
        vlm_tf(
            "train",
            root,
            "--task",
            "audio_visual",
            "--modality-dropout",
            0.7,
            "--out",
            tmp_path / "r3",
        ),
        "at most 0.5",
    )
    assert not any((tmp_path / name).exists() for name in ("r1", "r2", "r3"))


def test_with_sound_every_caption_is_paired_with_its_own_clips_sound(dataset):
    from vlm_tf.tasks import get_task_spec
    from vlm_tf.tasks.options import VideoTextOptions
    from vlm_tf.training.config import RunConfig

    root, _ = dataset
    config = RunConfig(
        model="video_text", num_frames=FRAMES, image_size=SIZE, batch_size=5, seed=0,
        options=VideoTextOptions(with_sound=True),
    )  # fmt: skip
    task = get_task_spec("video_text").task_class()("video_text", config)
    data = task.make_data(root / "train", root / "val", first_epoch=0)
    clips = _clips(root, "train")
    tracks = [
        read_audio(p, seconds=data.extras["num_samples"] / SAMPLE_RATE).samples for p, _ in clips
    ]
    words = ["", "[UNK]", *data.extras["vocabulary"]]

    def plain(text):
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())

    # The sound of each pair is the track of the clip whose captions hold the pair's caption.
    seen = 0
    for batch in data.train.take(data.steps_per_epoch):
        for audio, tokens in zip(np.asarray(batch["audio"]), np.asarray(batch["tokens"])):
            caption = " ".join(words[t] for t in tokens if t)
            owners = [
                i for i, (_, meta) in enumerate(clips) if caption in map(plain, meta["captions"])
            ]
            assert len(owners) == 1, caption
            assert np.allclose(tracks[owners[0]], audio, atol=1e-6), caption
            seen += 1
    assert seen >= len(clips) * 3 - 5


def _check_reranking(gen, video_text_run, asked, tmp_path):
    """`generate --rerank 3` keeps, of the three candidates of each prompt (noise streams
    (seed, 0, j)), the one the run's video_text run embeds nearest the prompt; a text run that is
    gone is a one-line error naming it.
    """
    from vlm_tf.tasks.text_side import embed_texts, load_guide, read_vocabulary
    from vlm_tf.tasks.text_to_video import generate_from_prompts

    done = vlm_tf("generate", gen, "--prompt", *asked, "--rerank", 3, "--out", tmp_path / "r3")
    assert done.returncode == 0, done.stderr[-3000:]
    run, guide = load_run(gen), load_guide(video_text_run)
    candidates = np.stack(
        [generate_from_prompts(run, asked, seed=[0, 0, j]) for j in range(3)], axis=1
    ).astype(np.float32)
    video = np.stack([np.asarray(guide.embed_frames_of_any_size(c)) for c in candidates])
    text = embed_texts(guide.text_encoder, read_vocabulary(video_text_run), asked)
    best = np.einsum("nkd,nd->nk", video, text).argmax(axis=1)
    for prompt, folder in enumerate(("move_left", "grow")):
        written = next((tmp_path / "r3" / folder).glob("*.mp4"))
        assert json.loads(written.with_suffix(".json").read_text())["candidates"] == 3
        # The file is lossy: the clip kept is the candidate it lies nearest.
        distances = np.abs(candidates[prompt] - read_frames(written)).mean(axis=(1, 2, 3, 4))
        assert distances.argmin() == best[prompt], (distances, best)
    moved = tmp_path / "gen_moved"
    moved.mkdir()
    for part in gen.iterdir():
        if part.is_file():
            (moved / part.name).write_bytes(part.read_bytes())
    prompting = json.loads((moved / "prompting.json").read_text())
    prompting["text_run"] = str(tmp_path / "gone")
    (moved / "prompting.json").write_text(json.dumps(prompting))
    assert_one_line_error(
        vlm_tf("generate", moved, "--prompt", asked[0], "--rerank", 2, "--out", tmp_path / "e4"),
        str(tmp_path / "gone"),
        "--rerank",
    )
    assert_one_line_error(
        vlm_tf("generate", gen, "--prompt", asked[0], "--rerank", 0, "--out", tmp_path / "e5"),
        "--rerank",
    )


@pytest.mark.slow
def test_clips_generated_from_prompts_are_judged_by_an_attributes_run(
    dataset, video_text_run, tmp_path
):
    root, _ = dataset
    assert_one_line_error(
        vlm_tf("train", root, "--task", "text_to_video", "--out", tmp_path / "no"), "--text-run"
    )
    gen = tmp_path / "gen"
    done = vlm_tf(
        "train", root, "--task", "text_to_video", "--text-run", video_text_run, "--out", gen,
        "--epochs", 1, "--frames", FRAMES, "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # The run carries its text encoder: it turns a new prompt into a clip by itself.
    for name in ("text_encoder.keras", "vocabulary.json", "prompting.json", "discriminator.keras"):
        assert (gen / name).is_file(), name
    # Its copy of the text encoder embeds captions, but only a video_text run can guide a GAN.
    assert_one_line_error(
        vlm_tf(
            "train", root, "--task", "text_to_video", "--text-run", gen, "--guidance", 1,
            "--out", tmp_path / "g2", "--epochs", 1, "--frames", FRAMES,
        ),
        "--guidance",
    )  # fmt: skip
    assert_one_line_error(
        vlm_tf(
            "train", root, "--task", "text_to_video", "--model", "text_diffusion", "--text-run",
            video_text_run, "--guidance", 1, "--out", tmp_path / "g3", "--epochs", 1,
        ),
        "--guidance", "classifier-free",
    )  # fmt: skip
    asked = ["a red star moving left", "a small blue bar that grows"]
    for out in ("one", "again"):
        done = vlm_tf(
            "generate", gen, "--prompt", *asked, "--per-prompt", 2, "--out", tmp_path / out
        )
        assert done.returncode == 0, done.stderr[-3000:]
    written = sorted((tmp_path / "one").glob("*/*.mp4"))
    assert [p.parent.name for p in written] == ["grow", "grow", "move_left", "move_left"]
    meta = json.loads(written[2].with_suffix(".json").read_text())
    assert meta["captions"] == [asked[0]]
    assert meta["attributes"] == {"colour": "red", "shape": "star", "motion": "move_left"}
    first, second = read_frames(written[2]), read_frames(written[3])
    assert first.shape == (FRAMES, SIZE, SIZE, 3) and not np.array_equal(first, second)
    # The same seed draws the same clips.
    np.testing.assert_array_equal(
        first, read_frames(tmp_path / "again" / "move_left" / written[2].name)
    )
    # Truncated to nothing, the noise is the same for every seed: so are the clips.
    for seed in (0, 1):
        done = vlm_tf(
            "generate", gen, "--prompt", asked[0], "--truncation", 0, "--seed", seed,
            "--out", tmp_path / f"t{seed}",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_array_equal(
        *(read_frames(next((tmp_path / f"t{seed}").glob("*/*.mp4"))) for seed in (0, 1))
    )
    assert_one_line_error(
        vlm_tf("generate", gen, "--prompt", asked[0], "--truncation", -1, "--out", tmp_path / "e0"),
        "--truncation",
    )
    _check_reranking(gen, video_text_run, asked, tmp_path)
    assert_one_line_error(
        vlm_tf("generate", gen, "--prompt", " ", "--out", tmp_path / "e1"), "words"
    )
    assert_one_line_error(vlm_tf("generate", gen, "--out", tmp_path / "e2"), "--prompt")
    assert_one_line_error(
        vlm_tf(
            "generate",
            gen,
            "--prompt",
            asked[0],
            "--first-frame",
            written[0],
            "--out",
            tmp_path / "e3",
        ),
        "text_diffusion",
    )
    assert_one_line_error(vlm_tf("generate", gen, "--prompt", asked[0], "--out", tmp_path / "one"))
    # Exported, words become a clip in plain TensorFlow: the archive holds the run's tokenizer,
    # text encoder and whitening; the same noise drawn here gives the same clip.
    assert vlm_tf("export", gen, "--out", tmp_path / "gen_saved").returncode == 0
    served = call_signature_in_subprocess(
        str(tmp_path / "gen_saved"), prompt=np.array(asked), seed=np.int32(3)
    )["frames"]
    run = load_run(gen)
    noise = tf.random.stateless_normal([2, run.model.input_shape[0][-1]], seed=[3, 0])
    expected = np.asarray(run.model([noise, tf.constant(conditions(run, asked))]))
    assert served.dtype == np.uint8 and served.shape == (2, FRAMES, SIZE, SIZE, 3)
    assert np.abs(served - expected.clip(0, 255)).max() <= 0.51

    judge = tmp_path / "judge"
    done = vlm_tf(
        "train", root, "--task", "attributes", "--out", judge, "--epochs", 1, "--frames", FRAMES,
        "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(vlm_tf("evaluate", judge, root / "test", "--json").stdout)
    # The sound is not in the picture: no head for it.
    assert set(report["by_attribute"]) == {
        "motion",
        "colour",
        "shape",
        "size",
        "speed",
        "background",
    }

    prompted = tmp_path / "prompted"
    done = vlm_tf("generate", gen, "--prompts-from", root, "--out", prompted)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((prompted / "test").glob("*/*.mp4"))) == 8
    assert len(list((prompted / "heldout").glob("*/*.mp4"))) == 16
    done = vlm_tf("score-generated", judge, prompted, "--real", root, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout)
    for figures, count in ((scores, 8), (scores["heldout"], 16)):
        assert figures["num_videos"] == count
        assert 0.0 <= figures["prompt_rank_r1"] <= 1.0 and figures["frechet_distance"] >= 0.0
    # The motion accuracy is the judge's own answers against the prompts' motions.
    videos = sorted(str(p) for p in (prompted / "heldout").glob("*/*.mp4"))
    named = json.loads(vlm_tf("predict", judge, *videos, "--json").stdout)
    motions = json.loads((judge / "attributes.json").read_text())["motion"]
    seen = [
        next(t["label"][7:] for t in n["top"] if t["label"].startswith("motion=")) for n in named
    ]
    assert all(m in motions for m in seen)
    wanted = [os.path.basename(os.path.dirname(v)) for v in videos]
    assert scores["heldout"]["motion_accuracy"] == pytest.approx(
        np.mean([s == w for s, w in zip(seen, wanted)])
    )
    assert_one_line_error(
        vlm_tf("score-generated", judge, prompted, "--real", root / "test"), "heldout"
    )

    # The diffusion model takes a first frame: its clip starts from the picture given.
    diffusion = tmp_path / "diffusion"
    done = vlm_tf(
        "train", root, "--task", "text_to_video", "--model", "text_diffusion", "--text-run",
        video_text_run, "--out", diffusion, "--epochs", 1, "--frames", FRAMES, "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    picture = np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8)
    picture[:, :SIZE] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "first.png"), picture[..., ::-1])
    done = vlm_tf(
        "generate", diffusion, "--prompt", asked[0], "--first-frame", tmp_path / "first.png",
        "--out", tmp_path / "started",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    frames = read_frames(next((tmp_path / "started" / "move_left").glob("*.mp4"))).astype(int)
    assert frames.shape == (FRAMES, SIZE, SIZE, 3)
    left, right = frames[0, :, : SIZE // 2 - 2], frames[0, :, SIZE // 2 + 2 :]
    # Red on the left half, black on the right, through the video codec's loss.
    assert left[..., 0].mean() > 200 > 50 > right.mean(), (left[..., 0].mean(), right.mean())
    assert_one_line_error(
        vlm_tf(
            "generate", diffusion, "--prompt", asked[0], "--first-frame", tmp_path / "none.png",
            "--out", tmp_path / "e4",
        ),
        "none.png",
    )  # fmt: skip
    # Exported, the sampler runs in the graph; started from a picture, the picture is frame 0.
    assert vlm_tf("export", diffusion, "--out", tmp_path / "diffusion_saved").returncode == 0
    first = picture[::2, ::2][None].repeat(2, axis=0)
    served = call_signature_in_subprocess(
        str(tmp_path / "diffusion_saved"),
        "from_first_frame",
        prompt=np.array(asked),
        first_frame=first,
        seed=np.int32(0),
    )["frames"]
    assert served.shape == (2, FRAMES, SIZE, SIZE, 3)
    np.testing.assert_array_equal(served[:, 0], first)
