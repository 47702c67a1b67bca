"""Exceptions and warnings of causalmim."""

__all__ = ["TrainingDivergedError", "UnstableTrainingWarning"]


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss or non-finite predictions.

    A ValueError, as scikit-learn's own estimators raise when their optimization overflows:
    the fix is a different parameter (usually a smaller ``learning_rate``) or cleaner data.
    """


class UnstableTrainingWarning(UserWarning):
    """The training loss grew by orders of magnitude without becoming non-finite."""
