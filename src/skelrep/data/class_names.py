"""Class names for figures: what label ``k`` of a dataset file is called.

- A user's dataset carries its names (``labels.csv`` with names: the ``class_names`` attribute
  of its processed file).
- The synthetic suite names its own classes (:data:`skelrep.data.synthetic.actions.CLASSES`:
  motion atoms and variant, e.g. ``R_wave:rep``; PKU-MMD labels map onto those motions).
- Official NTU RGB+D data: the dataset's action names A001-A120 (:data:`NTU_ACTIONS`, from the
  NTU RGB+D 120 action list; NTU-60 uses the first 60).
- Official PKU-MMD data: the id order of its ``Actions.xlsx`` is not verified here (the spec's
  data.md 8.2), so its classes are called by the 1-based ids of its label files (``label 7``).

Names never enter a metric; they label figures and ``predictions.csv``
(:func:`skelrep.evaluation.feature_file.label_names`).
"""

from __future__ import annotations

from pathlib import Path

from ..catalog import DATASETS

NTU_ACTIONS = (
    # A001-A060: NTU RGB+D 60
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up", "clapping", "reading", "writing", "tear up paper", "wear jacket",
    "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses", "take off glasses",
    "put on a hat/cap", "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "reach into pocket", "hopping", "jump up", "make a phone call", "playing with phone/tablet",
    "typing on a keyboard", "pointing to something", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front", "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache)", "touch back (backache)", "touch neck (neckache)", "nausea or vomiting",
    "use a fan/feeling warm", "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # A061-A120: the NTU RGB+D 120 extension
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quiet)", "flick hair", "thumb up", "thumb down", "make ok sign",
    "make victory sign", "staple book", "counting money", "cutting nails", "cutting paper (scissors)",
    "snapping fingers", "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper",
    "ball up paper", "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag",
    "take off bag", "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms",
    "arm circles", "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person", "follow other person",
    "whisper in other person's ear", "exchange things with other person", "support somebody with hand",
    "rock-paper-scissors",
)


def builtin_class_names(dataset: str, source: str, num_classes: int) -> list[str] | None:
    """Names of labels ``0..num_classes-1`` of a built-in dataset from ``source`` (synthetic or
    official; official PKU-MMD: its label ids); None for any other dataset."""
    info = DATASETS.get(dataset)
    if info is None:
        return None
    if source == "synthetic":
        from .synthetic.actions import CLASSES, pku_to_ntu_class

        if info.format == "ntu":
            return [CLASSES[label + 1].name for label in range(num_classes)]
        return [CLASSES[pku_to_ntu_class(label + 1)].name for label in range(num_classes)]
    if source == "official" and info.format == "ntu":
        return list(NTU_ACTIONS[:num_classes])
    if source == "official":
        return [f"label {k + 1}" for k in range(num_classes)]
    return None


def dataset_class_names(path: str | Path, source: str | None) -> list[str] | None:
    """The class names of a processed dataset file: its own ``class_names`` (a user's dataset),
    else the built-in dataset's (:func:`builtin_class_names`); None when unknown."""
    from .hdf5 import class_names, read_attrs

    own = class_names(path)
    if own:
        return own
    attrs = read_attrs(path)
    dataset = str(attrs.get("dataset"))
    if dataset not in DATASETS:
        return None
    return builtin_class_names(dataset, source or "", int(attrs.get("num_classes", DATASETS[dataset].num_classes)))

