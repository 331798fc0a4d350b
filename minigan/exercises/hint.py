"""``hint(name, tier)``: an exercise's hints, one tier at a time.

Tier 1 is the comment in the stub (the idea); tier 2 and after are in the exercise's record
(``minigan.exercises.hints``), each a step closer to the answer without giving it.
"""

from __future__ import annotations

from minigan.exercises.records import find


def hint(name: str, tier: int = 2) -> str:
    """The hint of tier ``tier`` (2 or more) for the exercise ``name``, with its heading."""
    exercise = find(name)
    tiers = len(exercise.hints) + 1
    if tier == 1:
        raise ValueError(f"hint 1 of {exercise.name} is the text above its function in "
                         f"{exercise.stub}; --tier takes 2 to {tiers}")
    if not 2 <= tier <= tiers:
        raise ValueError(f"{exercise.name} has hints of tiers 1 (in {exercise.stub}) to "
                         f"{tiers}, not {tier}")
    more = (f"\n(next: --hint {exercise.name} --tier {tier + 1})" if tier < tiers else
            "\n(that was the last hint: minigan's own version is the solution, in "
            f"{exercise.solutions.replace('.', '/')}.py)")
    return (f"Hint {tier} of {tiers} for {exercise.title} ({', '.join(exercise.functions)} in "
            f"{exercise.stub}):\n{exercise.hints[tier - 2]}{more}")
