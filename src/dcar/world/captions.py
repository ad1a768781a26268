"""Captions built from a sample's structure.

World v1: "This is a {name}. {attribute sentence}" (one of 4 templates naming every attribute),
for pretraining and downstream alike. World v2: short, plain alt-text for pretraining
(:func:`alt_text`), and for the downstream catalogs captions written like FDRD's MLLM captions
(:func:`mllm_caption`): "This is a {name}." then 2-4 varied sentences on appearance and setting,
some of them not grounded in the image, in a per-domain style.
"""

from __future__ import annotations

import numpy as np

from dcar.world.domains import get_domain
from dcar.world.sample import N_TEMPLATES, Sample
from dcar.world.vocab import META_BY_NAME

_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
_PATTERN_NOUN = {"plain": "plain", "striped": "striped", "dotted": "dotted"}
_PATTERN_PHRASE = {"plain": "with no pattern", "striped": "with stripes", "dotted": "with dots"}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def attribute_sentence(s: Sample) -> str:
    """One sentence naming every attribute (colour, size, position, background, count, pattern)."""
    meta = META_BY_NAME[s.meta]
    many = s.count > 1
    noun = meta.plural if many else meta.name
    count = _COUNT_WORDS[s.count]
    be = "are" if many else "is"
    if s.template == 0:
        lead = count.capitalize() if many else "A"
        return (f"{lead} {s.size} {s.colour} {s.pattern} {noun} {be} at the {s.position} "
                f"on a {s.background} background.")
    if s.template == 1:
        return (f"The picture shows {count} {s.colour} {noun} with a {_PATTERN_NOUN[s.pattern]} "
                f"surface, {s.size}, at the {s.position}, against a {s.background} background.")
    if s.template == 2:
        sit = "sit" if many else "sits"
        its = "their" if many else "its"
        return (f"On a {s.background} background, {count} {s.size} {noun} in {s.colour} {sit} "
                f"at the {s.position}; {its} surface is {s.pattern}.")
    if s.template == 3:
        return (f"{count.capitalize()} {s.colour} {noun} {be} shown {s.size} at the {s.position}, "
                f"{_PATTERN_PHRASE[s.pattern]}, over a {s.background} background.")
    raise ValueError(f"template {s.template} out of range 0..{N_TEMPLATES - 1}")


def name_sentence(name: str) -> str:
    """The caption's first sentence, "This is a {name}." (also a zero-shot class prompt)."""
    return f"This is {_article(name)} {name}."


def caption(s: Sample) -> str:
    """The sample's caption; its first sentence (v1, v2 downstream) uses ``s.named`` (see :class:`Sample`)."""
    style = get_domain(s.domain).caption_style
    if style == "fdrd":
        return f"{name_sentence(s.named)} {attribute_sentence(s)}"
    if style == "alt":
        return alt_text(s)
    return mllm_caption(s, style)


# ------------------------------------------------------------------------------------- world v2
# How a trait value reads in text (shared by alt-text and catalog captions, as real web text and
# MLLM descriptions share words like "five petals").
TRAIT_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    # No phrase reuses an attribute word (a colour, small/large, one/two, plain/striped/dotted), so
    # text never says two things about one image with the same word.
    "flower": {"petals": ("five petals", "six petals"), "ring": ("no ring", "an inner ring"),
               "tips": ("round petal tips", "pointed petals"), "centre": ("a tiny centre", "a broad centre")},
    "mushroom": {"cap": ("a dome cap", "a cone cap"), "annulus": ("a bare stem", "a ringed stem"),
                 "base": ("a straight base", "a bulbous base"), "spots": ("an unspotted cap", "a spotted cap")},
    "fish": {"tail": ("a round tail", "a forked tail"), "dorsal": ("no dorsal fin", "a dorsal fin"),
             "gill": ("no gill bar", "a gill bar"), "stripe": ("no lateral line", "a lateral line")},
    "beetle": {"horn": ("no horn", "a horn"), "seam": ("no seam", "a seam down the back"),
               "antennae": ("straight antennae", "clubbed antennae"),
               "spots": ("clear wing cases", "spotted wing cases")},
    "airplane": {"wings": ("straight wings", "swept wings"), "tail": ("a flat tail", "a vee tail"),
                 "engines": ("twin engines", "four engines"), "cockpit": ("no canopy", "a glazed canopy")},
    "crest": {"chevron": ("an upward chevron", "a downward chevron"), "mark": ("a round mark", "a bar mark"),
              "border": ("a single border", "a double border"), "crown": ("no crown", "a crown")},
}

BACKGROUND_WORDS = {"white": "a plain white backdrop", "dark": "a dark backdrop", "grass": "green grass",
                    "sand": "pale sand", "sky": "a blue sky", "moss": "soft green moss", "soil": "dark soil",
                    "water": "rippling water", "dusk": "an evening sky", "paper": "aged paper"}
_PATTERN_WORDS = {"plain": "plain", "striped": "striped", "dotted": "dotted"}


def _trait_phrases(s: Sample, rng: np.random.Generator, k: int) -> list[str]:
    """``k`` of the sample's trait values in words, in random order."""
    meta = META_BY_NAME[s.meta].name
    traits = s.traits
    order = rng.permutation(len(traits))[:k]
    names = list(traits)
    words = TRAIT_WORDS[meta]
    out = []
    for j in order:
        trait = names[j]
        values = _trait_values(s.meta, trait)
        out.append(words[trait][values.index(traits[trait])])
    return out


def _trait_values(meta: str, trait: str) -> tuple[str, str]:
    from dcar.world.vocab import META_BY_NAME_V2

    return dict(META_BY_NAME_V2[meta].traits)[trait]


def _noun(s: Sample) -> str:
    meta = META_BY_NAME[s.meta]
    return meta.plural if s.count > 1 else meta.name


def alt_text(s: Sample) -> str:
    """Pretraining alt-text: short and plain, mentions the name only when ``s.named`` is one."""
    rng = np.random.default_rng([s.nuisance, 5])
    d = get_domain(s.domain)
    named = s.named != s.meta
    words = []
    if s.count > 1:
        words.append(_COUNT_WORDS[s.count])
    if rng.random() < 0.3:
        words.append(s.size)
    if rng.random() < 0.75:
        words.append(s.colour)
    if s.pattern != "plain" and rng.random() < 0.5:
        words.append(_PATTERN_WORDS[s.pattern])
    head = " ".join(words + [s.named if named else _noun(s)])
    if named and rng.random() < 0.4:
        head += f" {_noun(s)}"
    parts = [head]
    if rng.random() < d.trait_prob:
        parts.append("with " + " and ".join(_trait_phrases(s, rng, 1 + int(rng.integers(3)))))
    if rng.random() < 0.5:
        parts.append(f"on {BACKGROUND_WORDS[s.background]}")
    if rng.random() < 0.25:
        parts.append(f"at the {s.position}")
    prefix = ("", "", "", "a photo of ", "picture of ", "stock image: ", "close-up of ")[int(rng.integers(7))]
    text = prefix + " ".join(parts)
    # drawn after everything above, so the short alt-texts are the same with or without the tail
    if rng.random() < d.long_prob:
        text += _web_tail(s, rng)
    return text


# Page text that follows some web alt-texts: keywords and specs, partly grounded, partly filler.
_TAIL_FILLER = ("high resolution", "royalty free", "hd wallpaper", "free download", "stock photography",
                "studio shot", "close up", "detailed view", "isolated object", "editorial use only",
                "best price", "new arrival", "collection item", "image number 4821", "all rights reserved",
                "shot on a sunny day", "beautiful background", "top quality", "fine art print", "museum grade")


def _web_tail(s: Sample, rng: np.random.Generator) -> str:
    """10-55 more tokens: the traits, attributes and setting as tags, mixed with page filler."""
    meta = META_BY_NAME[s.meta].name
    tags = [f"colour: {s.colour}", f"pattern: {_PATTERN_WORDS[s.pattern]}", f"size: {s.size}", meta,
            f"background: {BACKGROUND_WORDS[s.background]}", f"{_COUNT_WORDS[s.count]} {_noun(s)}",
            *_trait_phrases(s, rng, 1 + int(rng.integers(len(s.traits))))]
    if s.named != s.meta and rng.random() < 0.5:
        tags.append(s.named)
    n_fill = int(rng.integers(2, 9))
    filler = [_TAIL_FILLER[i] for i in rng.choice(len(_TAIL_FILLER), n_fill, replace=False)]
    items = tags + filler
    keep = rng.permutation(len(items))[: int(rng.integers(3, len(items) + 1))]
    sep = (" | ", " - ", ", ")[int(rng.integers(3))]
    return sep + ", ".join(items[i] for i in keep)


# Per catalog style: appearance sentences ({a} = "a red flower" / "two red flowers"), and
# ungrounded filler (mood, photography) that the image cannot confirm.
_APPEARANCE = {
    "nature": ("The image captures {a} with a {pattern} surface.",
               "{A}, {pattern}, stand{s} out vividly.", "The photo shows {a} with a {pattern} texture.",
               "Here we see {a}, {pattern} in appearance."),
    "aquarium": ("In this shot, {a} with a {pattern} body swim{s} by.", "The picture features {a}, {pattern} all over.",
                 "{A} with a {pattern} body {be} seen swimming.", "Here {a}, {pattern}, drift{s} by."),
    "catalog": ("The catalog photo presents {a} in a {pattern} finish.", "Shown here {be} {a}, {pattern}.",
                "This entry depicts {a} with a {pattern} livery.", "The {noun} {be} {colour}, in a {pattern} finish."),
    "archive": ("The scanned plate shows {a}, drawn {pattern}.", "An old drawing of {a}, {pattern}.",
                "The print depicts {a}, its fill {pattern}.", "{A}, {pattern}, {be} drawn here."),
}
_TRAIT_SENTENCES = ("{T} can be seen.", "One can make out {t}.", "Notably, it has {t}.", "It shows {t}.")
_SETTING = ("It sits at the {position}, against {bg}.", "Behind it, at the {position}, is {bg}.",
            "It is at the {position}, on {bg}.")
_FILLER = {
    "nature": ("The soft natural light gives the scene a calm mood.",
               "The background is blurred, suggesting an outdoor setting.",
               "It is a lovely example of nature's delicate beauty.", "The atmosphere feels fresh and serene."),
    "aquarium": ("The water looks cool and clear.", "Life beneath the surface looks calm.",
                 "The lighting is soft, as if filtered through water."),
    "catalog": ("The photograph is sharp and well lit.", "The composition is clean and simple.",
                "It looks like a carefully staged studio shot."),
    "archive": ("The print has an old, quiet charm.", "The paper shows signs of age.",
                "It recalls the work of an old illustrator."),
}


def mllm_caption(s: Sample, style: str) -> str:
    """A v2 catalog caption: "This is a {name}." + 2-4 sentences (appearance, maybe a trait,
    maybe the setting, maybe ungrounded filler), wording drawn per sample."""
    rng = np.random.default_rng([s.nuisance, 5])
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    noun = _noun(s)
    a = f"{_COUNT_WORDS[s.count]} {s.colour} {noun}" if s.count > 1 else f"{_article(s.colour)} {s.colour} {noun}"
    fmt = dict(a=a, A=a[:1].upper() + a[1:], s="" if s.count > 1 else "s", be="are" if s.count > 1 else "is",
               colour=s.colour, noun=noun, pattern=_PATTERN_WORDS[s.pattern], position=s.position,
               bg=BACKGROUND_WORDS[s.background])
    sentences = [pick(_APPEARANCE[style]).format(**fmt)]
    extra = []
    if rng.random() < 0.5:
        t = _trait_phrases(s, rng, 1)[0]
        extra.append(pick(_TRAIT_SENTENCES).format(t=t, T=t[:1].upper() + t[1:]))
    if rng.random() < 0.8:
        extra.append(pick(_SETTING).format(**fmt))
    if rng.random() < 0.35 or not extra:
        extra.append(pick(_FILLER[style]))
    sentences += [extra[i] for i in rng.permutation(len(extra))] if rng.random() < 0.3 else extra
    return " ".join([name_sentence(s.named)] + sentences)
