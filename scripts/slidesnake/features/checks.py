"""Whether an encoder can embed a study's tiles: its files and digests, field of view, licence, ONNX input.

See :mod:`slidesnake.features.encoders` for the config; :func:`check_encoder` needs no TensorFlow (only
onnxruntime, for ONNX files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from ..checksums import file_sha256
from ..errors import StudyError, listing
from .encoders import EncoderSpec, LicencePolicy

#: Largest relative difference between the encoder's and the tiles' field of view that counts as equal.
FOV_TOLERANCE = 0.02
#: Licences (lower case) that forbid commercial use besides those with an ``NC`` part (``CC-BY-NC-*``).
NON_COMMERCIAL = frozenset({"non-commercial", "noncommercial", "research-only", "academic-only"})
#: Licences (lower case) that say nothing usable about commercial use.
UNKNOWN_LICENCES = frozenset({"", "unknown", "other", "proprietary"})


def licence_kind(licence: str) -> Literal["commercial", "non-commercial", "unknown"]:
    """Whether a licence allows commercial use, as far as its name tells.

    Non-commercial: a name with an ``NC`` part (``CC-BY-NC-4.0``, ``CC-BY-NC-ND-4.0``, ``CC BY-NC-SA``) or
    one of :data:`NON_COMMERCIAL`. Unknown: one of :data:`UNKNOWN_LICENCES` (``unknown``, ``other``,
    ``proprietary``, empty). Anything else (``Apache-2.0``, ``MIT``, ``CC-BY-4.0``...) counts as commercial.

    Parameters
    ----------
    licence : str
        The licence name from the config.

    Returns
    -------
    {'commercial', 'non-commercial', 'unknown'}
        The kind.
    """
    text = licence.strip().lower()
    if text in UNKNOWN_LICENCES:
        return "unknown"
    if text in NON_COMMERCIAL or "NC" in re.split(r"[-_ ./]+", licence.upper()):
        return "non-commercial"
    return "commercial"


def check_encoder(
    spec: EncoderSpec,
    *,
    tile_mpp: float | None = None,
    tile_size: int | None = None,
    licence_policy: LicencePolicy,
    base_dir: Path,
) -> list[str]:
    """The problems that keep an encoder from embedding a study's tiles, one line each.

    Checks that every local file exists and has its configured SHA-256 (each file is read once per
    process while its size and modification time stay the same); that the encoder's field of view
    matches the tiles' within :data:`FOV_TOLERANCE` (resizing is accepted only then); the licence under
    ``licence_policy: commercial`` (:func:`licence_kind`); and that an ONNX model's input is
    (N, H, W, 3) or (N, 3, H, W) as ``layout`` declares, with ``input_size`` pixels where H and W are fixed.

    Parameters
    ----------
    spec : EncoderSpec
        The encoder.
    tile_mpp, tile_size : float and int, optional
        Microns per pixel and side in pixels of the tiles (None: the field of view is not checked,
        see :func:`field_of_view_problems`).
    licence_policy : {'any', 'commercial'}
        ``commercial`` refuses non-commercial and unknown licences.
    base_dir : Path
        Folder that relative paths are relative to.

    Returns
    -------
    list of str
        One line per problem, each naming the encoder and the config key (``encoders: <name>: <key>``).
    """
    if licence_policy not in get_args(LicencePolicy):
        msg = f"config 'licence_policy': {licence_policy!r} is not one of {list(get_args(LicencePolicy))}"
        raise StudyError(msg)
    head = f"encoders: {spec.name}"
    problems = []
    verified = {}
    for key, written in spec.local_files().items():
        path = resolve(written, base_dir)
        if not path.is_file():
            problems.append(f"{head}: {key}: file not found: {path}")
            continue
        actual, expected = file_digest(path), spec.sha256[written]
        if actual != expected:
            problems.append(f"{head}: sha256: {path} has sha256 {actual}, the config says {expected}")
            continue
        verified[key] = path

    if tile_mpp is not None and tile_size is not None:
        problems += field_of_view_problems(spec, tile_mpp=tile_mpp, tile_size=tile_size)

    if licence_policy == "commercial":
        kind = licence_kind(spec.licence)
        if kind == "non-commercial":
            problems.append(
                f"{head}: licence: {spec.licence!r} does not allow commercial use "
                "(licence_policy: commercial)"
            )
        elif kind == "unknown":
            problems.append(
                f"{head}: licence: {spec.licence!r} says nothing about commercial use and licence_policy is "
                "commercial: check the model card and set licence"
            )

    if spec.source == "onnx" and "file" in verified:
        try:
            session = onnx_session(verified["file"], threads=1, gpu=False)
        except Exception as error:  # onnxruntime raises its own, unexported exception types
            problems.append(
                f"{head}: file: {verified['file']} cannot be opened by onnxruntime: {one_line(error)}"
            )
        else:
            problems.extend(f"{head}: {problem}" for problem in onnx_input_problems(spec, session))
    return problems


def field_of_view_problems(
    spec: EncoderSpec, *, tile_mpp: float, tile_size: int, homes: Sequence[str] = ()
) -> list[str]:
    """Whether the encoder sees what the tiles (of ``homes``, for the message) show: the same field of
    view within :data:`FOV_TOLERANCE`.
    """
    tiles_um = tile_size * tile_mpp
    if abs(spec.field_of_view_um - tiles_um) <= FOV_TOLERANCE * tiles_um:
        return []
    of = f" (slides of {', '.join(map(repr, homes))})" if homes else ""
    return [
        f"encoders: {spec.name}: input_size {spec.input_size} at mpp {spec.mpp:g} covers "
        f"{spec.field_of_view_um:g} um; the tiles cover {tiles_um:g} um "
        f"(tile_size {tile_size} at {tile_mpp:g} um/px){of}"
    ]


def check_study_encoders(
    specs: Mapping[str, EncoderSpec],
    *,
    geometries: Mapping[str, tuple[int, float]],
    datasets: Sequence[str],
    licence_policy: LicencePolicy,
    base_dir: Path,
) -> None:
    """Check every encoder of a study against every tile geometry it will embed, before any job.

    Parameters
    ----------
    specs : mapping
        Encoder name -> spec (config ``encoders``).
    geometries : mapping
        Dataset or cohort -> (tile size in pixels, microns per pixel) of its slides' tiles.
    datasets : sequence of str
        The study's datasets (an encoder of source ``dataset`` must name one).
    licence_policy : {'any', 'commercial'}
        Config ``licence_policy``.
    base_dir : Path
        The study folder (relative paths).

    Raises
    ------
    StudyError
        Listing every problem, one line each naming the encoder and key (and the home whose tiles
        do not fit).
    """
    problems: dict[str, None] = {}
    homes_at: dict[tuple[int, float], list[str]] = {}  # each tile geometry and the homes tiled at it
    for home, geometry in geometries.items():
        homes_at.setdefault(geometry, []).append(home)
    for name, spec in specs.items():
        if spec.source == "dataset" and spec.dataset not in datasets:
            wrong = (
                f"encoders: {name}: dataset: {spec.dataset!r} is not a dataset of the study {list(datasets)}"
            )
            problems[wrong] = None
        # files, digests, licence and the ONNX input once per encoder; the field of view per geometry
        problems.update(dict.fromkeys(check_encoder(spec, licence_policy=licence_policy, base_dir=base_dir)))
        for (tile_size, tile_mpp), homes in homes_at.items():
            found = field_of_view_problems(spec, tile_mpp=tile_mpp, tile_size=tile_size, homes=homes)
            problems.update(dict.fromkeys(found))
    if problems:
        raise StudyError(listing("config 'encoders'", list(problems)))


def one_line(error: BaseException) -> str:
    """An exception as one line of at most 300 characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def resolve(path: str, base_dir: Path) -> Path:
    """A config path: as it is when absolute (``~`` expanded), else under ``base_dir``."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(base_dir) / candidate


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read once per process while its size and modification time stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


def shape_text(shape: Any) -> str:
    """A tensor shape as ``(N, 3, 224, 224)``, unknown dimensions as ``?``."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def onnx_session(path: Path, *, threads: int, gpu: bool) -> Any:
    """An onnxruntime session on ``threads`` CPU threads; with ``gpu``, CUDA first where available."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    available = ort.get_available_providers()
    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider") if gpu else ("CPUExecutionProvider",)
    providers = [provider for provider in wanted if provider in available]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def onnx_input_problems(spec: EncoderSpec, session: Any) -> list[str]:
    """What is wrong with an ONNX model's input for ``layout`` and ``input_size``, each ``<key>: ...``."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return [
            f"file: the ONNX model takes {len(inputs)} inputs ({[i.name for i in inputs]}), not one image"
        ]
    shape, kind = list(inputs[0].shape), inputs[0].type
    problems = []
    if kind not in ("tensor(float)", "tensor(float16)"):
        problems.append(f"file: the ONNX model's input is {kind}, not a float tensor")
    expected = {"nhwc": "(N, H, W, 3)", "nchw": "(N, 3, H, W)"}
    if len(shape) != 4:
        return [
            *problems,
            f"layout: the ONNX model's input {shape_text(shape)} is not {expected[spec.layout]}",
        ]
    channel, other = (3, 1) if spec.layout == "nhwc" else (1, 3)
    fixed_other = shape[other] == 3 and shape[channel] != 3
    if (isinstance(shape[channel], int) and shape[channel] != 3) or fixed_other:
        flip = "nchw" if spec.layout == "nhwc" else "nhwc"
        hint = f" (it looks {flip}: set layout: {flip})" if shape[other] == 3 else ""
        problems.append(
            f"layout: declared {spec.layout} {expected[spec.layout]} but the ONNX model's input is "
            f"{shape_text(shape)}{hint}"
        )
        return problems
    spatial = (1, 2) if spec.layout == "nhwc" else (2, 3)
    fixed = [shape[axis] for axis in spatial if isinstance(shape[axis], int)]
    if any(side != spec.input_size for side in fixed):
        problems.append(
            f"input_size: {spec.input_size} but the ONNX model's input {shape_text(shape)} "
            f"has fixed sides {fixed}"
        )
    return problems
