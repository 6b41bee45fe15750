"""Exception types that carry two built-in bases, so both MindSpore's and torch's ``except`` clauses work.

Every class here subclasses built-in exceptions only; no project-specific root class.
"""

from __future__ import annotations

__all__ = [
    "DuplicateParameterError",
    "LearningRateEntryError",
    "LearningRateTableExhaustedError",
    "NestedLearningRateError",
    "NotAParameterError",
    "OrderParamsStringError",
    "PerGroupArgumentError",
    "UnknownGroupKeyError",
    "UnsupportedLrKindError",
]


class LearningRateTableExhaustedError(IndexError, RuntimeError):
    """A dynamic learning-rate table has no entry for the current ``global_step``.

    MindSpore raises ``RuntimeError`` (from its ``Gather`` kernel); Python code expects ``IndexError``
    for an index past the end. This class is both.
    """


class DuplicateParameterError(ValueError, RuntimeError):
    """A parameter appears twice (in one group, in two groups, or as two views of one storage).

    MindSpore raises ``RuntimeError`` for a parameter set twice; a bad argument is a ``ValueError``.
    """


class NotAParameterError(TypeError, AttributeError, ValueError):
    """An ``order_params`` entry that is not a parameter (a name, a plain tensor).

    MindSpore raises ``AttributeError`` (it reads the entry's ``.name``), or ``ValueError`` when
    the list is also too long (it checks the length first); a wrong type is a ``TypeError``. This
    class is all three.
    """


class OrderParamsStringError(TypeError, ValueError):
    """``order_params`` given as a string.

    MindSpore iterates its characters and fails its length check (``ValueError``); a string where
    a list belongs is a ``TypeError``. This class is both.
    """


class UnknownGroupKeyError(KeyError):
    """A parameter-group dict has a key the optimizer does not know.

    ``KeyError`` is what MindSpore raises. Its ``str`` normally quotes the message; this one doesn't.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PerGroupArgumentError(UnknownGroupKeyError, ValueError):
    """A group dict sets an optimizer argument (``momentum``, ``learning_rate``, ...) to a value
    other than the optimizer's.

    MindSpore knows five group keys and raises ``KeyError`` for any other; msoptim accepts an
    optimizer argument repeated with the optimizer's own value (torch's wrappers write them), and
    a different value is a ``ValueError``. This class is both.
    """


class LearningRateEntryError(TypeError, ValueError):
    """An entry of a learning-rate list that is not a number (``None``, a string, a bool).

    MindSpore takes such a list as a dynamic lr at construction (FTRL then refuses every dynamic
    lr with ``ValueError``); msoptim refuses the entry, a wrong type: a ``TypeError``. This class
    is both.
    """


class NestedLearningRateError(TypeError, ValueError):
    """A nested list given as a learning rate.

    As the optimizer's ``learning_rate``, MindSpore accepts it at construction and fails at the
    first step with ``ValueError`` ("The object is not callable") or, in some optimizers,
    ``TypeError``; msoptim refuses it there too. As a group's ``'lr'``, MindSpore fails at
    construction with ``TypeError``, after every other check of the groups (see
    :mod:`msoptim.groups`). This class is both.
    """


class UnsupportedLrKindError(TypeError, AttributeError):
    """An operation that needs a static learning rate met a dynamic or per-group one.

    MindSpore's ``LearningRateScheduler`` fails here with ``AttributeError``; ours says why.
    """
