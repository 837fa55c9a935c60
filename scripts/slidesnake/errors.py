"""The errors slidesnake raises for bad inputs: one root, one class per kind of input.

Every message names what to fix: the slide (sheet row) and file, the annotation
file, the dataset, or the config key. The rule adapter (:func:`slidesnake.rules.run`)
logs these as one line without a traceback; any other exception is a bug and is
logged with its traceback.
"""

from __future__ import annotations

from pathlib import Path


class SlidesnakeError(ValueError):
    """Root of every error about a study's inputs or config."""


class StudyError(SlidesnakeError):
    """A sheet or config that does not describe a usable study."""


class SlideError(SlidesnakeError):
    """A slide that cannot be used, with the slide id and file in the message.

    Parameters
    ----------
    slide_id : str
        The sheet's id of the slide.
    path : str or Path
        The file at fault (the slide, or one of its inputs).
    problem : str
        What is wrong and which sheet column or config key fixes it.
    """

    def __init__(self, slide_id: str, path: str | Path, problem: str) -> None:
        super().__init__(f"slide {slide_id!r} ({path}): {problem}")
        self.slide_id = slide_id
        self.path = str(path)
        self.problem = problem

    def __reduce__(self) -> tuple:  # keep the three arguments across processes (dask, pickling)
        return (type(self), (self.slide_id, self.path, self.problem))


class AnnotationError(SlideError):
    """An annotation file of a slide that cannot be read or does not fit the dataset's classes."""


class PatchError(SlidesnakeError):
    """A patch folder, labels CSV or image that cannot be used, named in the message."""


class SplitError(SlidesnakeError):
    """A dataset that cannot be split as the config asks."""


class ModelError(SlidesnakeError):
    """Model settings that cannot be built or trained (backbone, weights, classes)."""


def listing(where: str, problems: list[str], cap: int = 20) -> str:
    """One message: ``where``, then one line per problem (the first ``cap`` and a count of the rest)."""
    shown = problems[:cap]
    if len(problems) > cap:
        shown.append(f"... and {len(problems) - cap} more problem(s)")
    return f"{where}:\n  - " + "\n  - ".join(shown)


class ClusterError(SlidesnakeError):
    """A cluster the workflow cannot run on as configured (e.g. SLURM without accounting and sacct)."""


class StainError(SlidesnakeError):
    """A stain normalization target that cannot be fitted (e.g. reference images without tissue)."""


class TableError(SlidesnakeError):
    """A stored table under ``results/`` that is not what its owner declares (left by another version)."""
